"""Reproducers: a self-contained Python snippet per finding that replays it.

The snippet rebuilds the exact shrunk example (arrays as base64 ``.npy``, Python floats
via ``float.fromhex``; never pickle), the same cotangents, calls the PyTorch backward and
``jax.vjp`` of the twin, and prints both gradients and their difference. It needs
torch, jax and numpy, and the two functions: imported from their module, or looked
up in ``oracle.registry()`` for registered pairs.
"""

from __future__ import annotations

import base64
import inspect
import io
import os
import re
import sys
import sysconfig
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..inputs.specs import ChoiceSpec, IntegersSpec, TensorSpec
from ..pair.compiling import SMALL_PROGRAM, options_for

__all__ = [
    "example_dict",
    "reproducer",
    "function_source",
    "module_root",
    "encode_array",
    "decode_array",
]


def encode_array(a: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)  # (ascontiguousarray would make 0-d arrays 1-d)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_array(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def _kind(spec: Any) -> str:
    if isinstance(spec, (TensorSpec, ChoiceSpec)):
        return "diff" if spec.grad else "float"
    if isinstance(spec, IntegersSpec):
        return "int"
    return "value"


def example_dict(ex: Any, specs: Sequence[Any]) -> dict[str, Any]:
    """The shrunk example as plain data: dims, argument values, cotangent seed."""
    args = [np.array(v) if isinstance(v, np.ndarray) else v for v in ex.values]
    return {
        "dims": dict(ex.dims),
        "args": args,
        "kinds": [_kind(s) for s in specs],
        "cotangent_seed": ex.cotangent_seed,
    }


def function_source(fn: Callable, var: str) -> str | None:
    """Python lines that bind ``var`` to ``fn``: by import, or for a lambda or a function
    that cannot be imported (local, or in ``__main__``), by its own source (see
    :func:`_own_source`); None if neither can be done."""
    return _imported_source(fn, var) or _own_source(fn, var)


def _imported_source(fn: Callable, var: str) -> str | None:
    obj, attr = fn, ""
    if inspect.ismethod(fn) and isinstance(fn.__self__, type):  # MyFunction.apply
        obj, attr = fn.__self__, "." + fn.__name__
    mod = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None)
    if not mod or not qual or "<" in qual or mod == "__main__":
        return None
    if not _resolves(mod, qual, obj):
        # a builtin whose qualname is not its import path (torch.sin is
        # `_VariableFunctionsClass.sin` in module torch): import it by its name
        name = getattr(obj, "__name__", None)
        if name and _resolves(mod, name, obj):
            qual = name
        else:
            return None
    top = qual.split(".")[0]
    return f"from {mod} import {top}\n{var} = {qual}{attr}"


def _own_source(fn: Callable, var: str) -> str | None:
    """``fn``'s own source, with imports for the modules it uses from its globals: for a
    lambda (the README's twins) or a function defined in ``__main__`` or inside another.
    None when that would not rebuild it: a closure, a global that is not a module or an
    importable function, a source file that is gone, two lambdas on one line alike."""
    code = getattr(fn, "__code__", None)
    if code is None or getattr(fn, "__closure__", None) or inspect.ismethod(fn):
        return None
    segment = _segment(fn, code)
    if segment is None:
        return None
    imports = _global_imports(fn, code)
    if imports is None:
        return None
    if fn.__name__ == "<lambda>":
        binding = f"{var} = {segment}"
    else:
        binding = f"{segment}\n\n\n{var} = {fn.__name__}" if fn.__name__ != var else segment
    return "\n".join([*imports, binding])


def _segment(fn: Callable, code: Any) -> str | None:
    """The exact source text of the lambda or def that made ``fn``."""
    import ast
    import linecache
    import textwrap

    lines = linecache.getlines(code.co_filename)
    if not lines:
        return None
    source = "".join(lines)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lam = fn.__name__ == "<lambda>"
    found = []
    for node in ast.walk(tree):
        if lam and isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno:
            found.append(node)
        elif (
            not lam
            and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == fn.__name__
            and code.co_firstlineno in (node.lineno, *(d.lineno for d in node.decorator_list))
        ):
            found.append(node)
    texts = [ast.get_source_segment(source, n) for n in found]
    if lam:  # several lambdas on one line: the one whose code is fn's
        texts = [t for t in texts if t and _same_code(t, code)]
    if len(texts) != 1 or not texts[0]:
        return None
    if not lam and found[0].decorator_list:
        return None  # a decorator may change what the name means
    return textwrap.dedent(texts[0]) if not lam else texts[0]


def _same_code(text: str, code: Any) -> bool:
    try:
        compiled = compile(f"({text})", "<replay>", "eval")
    except SyntaxError:
        return False
    # (not co_code: the same lambda compiled alone differs in its bytecode's details)
    return any(_shape_of(c) == _shape_of(code) for c in compiled.co_consts if hasattr(c, "co_code"))


def _shape_of(code: Any) -> tuple:
    """What tells two lambdas on one line apart: arguments, names, constants."""
    consts = tuple(repr(c) for c in code.co_consts if not hasattr(c, "co_code"))
    return code.co_argcount, code.co_varnames, code.co_names, consts


def _code_names(code: Any) -> set[str]:
    """Every global (or attribute) name ``code`` and the code nested in it use."""
    names = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            names |= _code_names(c)
    return names


def _global_imports(fn: Callable, code: Any) -> list[str] | None:
    """Import lines for the globals ``fn`` uses; None if one cannot be imported."""
    import builtins
    import types

    lines = []
    glob = getattr(fn, "__globals__", {})
    for name in sorted(_code_names(code)):
        if name not in glob:
            continue  # an attribute name, or a builtin
        value = glob[name]
        if value is fn:
            continue  # a recursive function: defined by its own source
        if isinstance(value, types.ModuleType):
            module = value.__name__
            lines.append(f"import {module}" if module == name else f"import {module} as {name}")
            continue
        src = _imported_source(value, name) if callable(value) else None
        if src is None:
            if hasattr(builtins, name) and getattr(builtins, name) is value:
                continue
            return None
        lines.extend(src.splitlines())
    return lines


def _resolves(mod: str, qual: str, obj: Any) -> bool:
    """Whether ``from mod import ...`` then ``qual`` gives back ``obj``."""
    module = sys.modules.get(mod)
    if module is None:
        return True  # not imported here: trust the names
    found: Any = module
    for part in qual.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj


def module_root(module: str) -> str | None:
    """The directory ``module`` was imported from: the ``sys.path`` entry under which
    ``import module`` finds it again (None for built-in or unloaded modules)."""
    mod = sys.modules.get(module)
    origin = getattr(getattr(mod, "__spec__", None), "origin", None) or getattr(
        mod, "__file__", None
    )
    if not origin or not os.path.isfile(origin):
        return None
    root = os.path.dirname(os.path.abspath(origin))
    # a package's __init__ sits one level deeper; each dot in the name is one more
    levels = module.count(".") + (os.path.basename(origin).startswith("__init__."))
    for _ in range(levels):
        root = os.path.dirname(root)
    return root


def _imported_modules(fn_refs: dict[str, Any]) -> list[str]:
    if fn_refs.get("registry"):
        return [fn_refs["module"]]
    sources = [fn_refs.get(var) for var in ("torch_fn", "jax_fn")]
    # every import line: a copied function's source imports the modules it uses too
    pattern = re.compile(r"^(?:from (\S+) import|import (\S+))", re.MULTILINE)
    found = [m for src in sources if isinstance(src, str) for m in pattern.finditer(src)]
    return list(dict.fromkeys(m.group(1) or m.group(2) for m in found))


def _installed_dirs() -> set[str]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k) for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return {os.path.abspath(d) for d in dirs if d}


def _import_guard(fn_refs: dict[str, Any]) -> str:
    """Lines that put the user's module directories on ``sys.path``, so the script runs
    from any directory, and turn a failed import into what to do about it."""
    installed = _installed_dirs()
    roots: dict[str, str] = {}  # module -> the directory it was imported from
    for module in _imported_modules(fn_refs):
        root = module_root(module)
        if root and root not in installed:  # installed packages import from anywhere
            roots[module] = root
    names = ", ".join(roots) or "the functions' modules"
    where = " or ".join(dict.fromkeys(roots.values()))
    looked = f"this script looked for it in {where}; " if where else ""
    return (
        "# the directories the functions were imported from when this was written\n"
        f"for _root in {list(dict.fromkeys(roots.values()))!r}:\n"
        "    if _root not in sys.path:\n"
        "        sys.path.insert(0, _root)\n"
        "\n\n"
        "def _cannot_import(exc):\n"
        "    raise SystemExit(\n"
        f"        f\"cannot import {{exc.name or 'a module'}} ({{exc}}), needed for {names}: \"\n"
        f'        "{looked}run it with the Python environment the oracle ran in (torch, jax "\n'
        f'        "and gradient-oracle installed) and put the directory that now holds "\n'
        f'        "{names} on PYTHONPATH"\n'
        "    )\n"
        "\n\n" + (_triton_preamble() + "\n\n" if _triton_preamble() else "") + "try:\n"
    )


def _triton_preamble() -> str:
    """Triton's interpreter set up again in the snippet, when the oracle ran kernels in
    it (without it, a replayed kernel wants CUDA tensors)."""
    from ..pair.triton import reproducer_preamble

    return reproducer_preamble()


def _literal(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f'_array("{encode_array(v)}")'
    if isinstance(v, float):
        return f"float.fromhex({v.hex()!r})"
    if v is None or isinstance(v, (bool, int, str)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_literal(x) for x in v)
        return f"({inner},)" if isinstance(v, tuple) else f"[{inner}]"
    return repr(v)


_AUTO_TWIN = (
    'from oracle.pair.auto_twin import auto_twin\njax_fn = auto_twin(torch_fn)  # jax_fn="auto"'
)


_UNDEFINED_CHECK = """for _var, _fn in (("torch_fn", torch_fn), ("jax_fn", jax_fn)):
    if _fn is None:
        raise SystemExit(f"{_var} is not defined: the oracle could not import it or copy its "
                         "source (a closure, or it uses a global that is not a module); define "
                         f"it at the line '{_var} = None' of this script")"""


def _bindings(fn_refs: dict[str, Any]) -> str:
    auto = "\n" + _AUTO_TWIN if fn_refs.get("auto") else ""
    if fn_refs.get("registry"):
        module = fn_refs["module"]
        imports = f"import oracle\nimport {module}  # registers the pair\n"
        binding = (
            f"_pair = oracle.registry()[{fn_refs['registry']!r}]\n"
            "torch_fn, jax_fn = _pair.torch_fn, _pair.jax_fn" + auto
        )
    else:
        lines, undefined = [], []
        for var in ("torch_fn", "jax_fn"):
            src = fn_refs.get(var)
            if var == "jax_fn" and fn_refs.get("auto"):
                continue  # built from torch_fn below
            if src is None:
                undefined.append(
                    f"{var} = None  # could not be imported (a lambda or local function): define it here"
                )
            else:
                lines.append(src)
        # said before the first call, not as a TypeError inside jax.jit
        check = "\n" + _UNDEFINED_CHECK if undefined else ""
        if not lines:
            return "\n".join(undefined) + auto + check
        imports, binding = "\n".join(lines) + "\n", "\n".join(undefined) + auto + check
    body = "".join("    " + line + "\n" for line in imports.splitlines())
    guarded = (
        _import_guard(fn_refs) + body + "except ImportError as exc:\n    _cannot_import(exc)\n"
    )
    return guarded + binding.lstrip("\n")


_BODY = """
def _array(b64):
    return np.load(io.BytesIO(base64.b64decode(b64)), allow_pickle=False)


DTYPE = {dtype!r}
DEVICE = {device!r}
ARGS = [{args}]
KINDS = {kinds!r}  # diff: differentiated float tensor; float/int: other tensors; value: as-is
COTANGENTS = [{cots}]  # one per output, None for non-floating ones

LOW = DTYPE.removeprefix("autocast-")  # the dtype the twin runs in
AUTOCAST = DTYPE.startswith("autocast-")  # float32 inputs, torch under torch.autocast
tdtype = torch.float32 if AUTOCAST else getattr(torch, DTYPE)
{build}targs = []
for a, kind in zip(ARGS, KINDS):
    if kind in ("diff", "float"):
        targs.append(torch.tensor(a, dtype=tdtype, device=DEVICE, requires_grad=kind == "diff"))
    elif kind == "int":
        targs.append(torch.tensor(a, dtype=torch.int64, device=DEVICE))
    else:
        targs.append(a)
diff_idx = [i for i, k in enumerate(KINDS) if k == "diff"]


def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _leaves(o)]
    return [out]


with torch.autocast(DEVICE, dtype=getattr(torch, LOW), enabled=AUTOCAST):
    tout = _leaves(torch_fn(*targs))
pairs = [(o, torch.as_tensor(c, dtype=o.dtype, device=DEVICE))
         for o, c in zip(tout, COTANGENTS) if c is not None and getattr(o, "requires_grad", False)]
if pairs:
    tgrads = torch.autograd.grad([p[0] for p in pairs], [targs[i] for i in diff_idx],
                                 [p[1] for p in pairs], allow_unused=True)
else:
    tgrads = [None] * len(diff_idx)  # no output carries a gradient: the graph is cut

with jax.enable_x64(DTYPE == "float64"), jax.default_matmul_precision("highest"):
    jdev = jax.devices("gpu" if DEVICE == "cuda" else "cpu")[0]
    jargs = []
    for a, kind in zip(ARGS, KINDS):
        if kind in ("diff", "float"):
            jargs.append(jax.device_put(
                np.asarray(a, dtype=DTYPE) if LOW == DTYPE and LOW in ("float32", "float64")
                else jnp.asarray(np.asarray(a, dtype="float64"), dtype=LOW), jdev))
        elif kind == "int":
            jargs.append(jax.device_put(np.asarray(a, dtype="int64" if DTYPE == "float64" else "int32"), jdev))
        else:
            jargs.append(a)

    # compiled, as the oracle ran it (XLA may compile a twin to a slightly different
    # result than running it op by op); arrays are arguments of the program, other
    # values are baked in
    arr_idx = [i for i, k in enumerate(KINDS) if k != "value"]

    def run(arrs):
        def f(*d):
            a = list(jargs)
            for i, x in zip(arr_idx, arrs):
                a[i] = x
            for i, x in zip(diff_idx, d):
                a[i] = x
            return jax_fn(*a)

        jout, pull = jax.vjp(f, *[arrs[arr_idx.index(i)] for i in diff_idx])
        jleaves, tree = jax.tree_util.tree_flatten(jout)
        cts = [np.zeros(l.shape, jax.dtypes.float0) if c is None else jnp.asarray(c, dtype=l.dtype)
               for c, l in zip(COTANGENTS, jleaves)]
        return jleaves, pull(jax.tree_util.tree_unflatten(tree, cts))

    # the oracle compiles small programs for compile time (oracle.pair.compiling): so does this
    small = sum(np.size(jargs[i]) for i in arr_idx) < {small}
    options = {small_options!r} if small else {{}}
    jleaves, jgrads = jax.jit(run, compiler_options=options)([jargs[i] for i in arr_idx])
    jgrads = [np.asarray(g, dtype="float32" if g.dtype == jnp.bfloat16 else g.dtype) for g in jgrads]

np.set_printoptions(precision=8, linewidth=100)
for n, (o, l) in enumerate(zip(tout, jleaves)):
    if isinstance(o, torch.Tensor):
        o = o.detach().cpu()
        o = np.asarray(o.float() if o.dtype == torch.bfloat16 else o)
    else:
        o = np.asarray(o)
    print(f"output {{n}}: max |torch - twin| =", np.max(np.abs(o.astype("float64") - np.asarray(l, "float64")), initial=0.0))
for i, tg, jg in zip(diff_idx, tgrads, jgrads):
    print(f"gradient of argument {{i}}")
    if tg is None:
        print("  torch: None (no gradient reaches this input)")
        print("  twin: ", jg)
        continue
    tg = tg.detach().cpu()
    tg = (tg.float() if tg.dtype == torch.bfloat16 else tg).numpy()
    print("  torch:     ", tg)
    print("  twin:      ", jg)
    print("  difference:", tg - jg)
    print("  max |difference|:", np.max(np.abs(tg.astype("float64") - jg.astype("float64")), initial=0.0))
"""


def reproducer(
    finding: Any,
    info: dict[str, Any],
    fn_refs: dict[str, Any],
    specs: Sequence[Any],
    cotangents: Sequence[np.ndarray | None],
) -> str:
    head = (
        f"# oracle reproducer: {finding.name or 'pair'}: {finding.check}"
        + (f" of argument {finding.argument}" if finding.argument is not None else "")
        + f" ({finding.dtype}, {finding.device}), blame={finding.blame}, diagnosis={finding.diagnosis}\n"
        + "".join(f"# {line}\n" for line in finding.detail.splitlines())
        + "import base64\nimport io\nimport sys\n\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\nimport torch\n\n"
    )
    body = _BODY.format(
        dtype=finding.dtype,
        device=finding.device,
        args=", ".join(_literal(a) for a in info["args"]),
        kinds=info["kinds"],
        cots=", ".join(_literal(c) for c in cotangents),
        small=SMALL_PROGRAM,
        small_options=options_for(
            True, finding.device, low_dtype=finding.dtype in ("bfloat16", "float16")
        ),
        build="torch_fn = torch_fn(dtype=tdtype, device=DEVICE)  # a factory: build it\n"
        if fn_refs.get("factory")
        else "",
    )
    return head + _bindings(fn_refs) + "\n" + body
