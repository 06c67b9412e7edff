r"""Triton kernels without a GPU: the interpreter switch and its compatibility layer.

Triton's interpreter runs ``@triton.jit`` kernels on the CPU, one program at a time, with
numpy: a Triton-backed ``torch.autograd.Function`` then runs forward and backward on CPU
tensors and :func:`oracle.verify` checks it like any other Function. Triton reads
``TRITON_INTERPRET`` when a kernel is decorated, so the variable must be set before the
module that defines the kernels is imported; :func:`use_interpreter` sets it, and refuses
(with the fix) when triton is already imported without it.

The interpreter has gaps that stop kernels written for the GPU. The compatibility layer
closes three, each in a few lines against the interpreter's internals:

* ``float_args``: a Python ``float`` kernel argument stays a Python float, where compiled
  Triton passes an fp32 scalar, so ``eps.to(tl.float32)`` raises ``AttributeError``
  (and ``x_fp16 * eps`` stays fp16 where compiled Triton promotes it to fp32). The layer
  passes an fp32 scalar, as compiled Triton does.
* ``libdevice``: ``triton.language.extra.libdevice``'s functions (``tanh``, ``rsqrt``,
  ``erf``...) are empty stubs that return ``None``, and the CUDA/HIP ones raise
  ``NotImplementedError``. The layer runs the float ones with numpy, in the dtype of
  their argument, for the length of each kernel launch.
* ``autotune``: ``@triton.autotune`` asks the GPU driver for a benchmarker and raises
  "0 active drivers". The layer runs each config once (so every config is exercised, and
  ``reset_to_zero``/``restore_value`` hooks matter as they do on the GPU) and picks the
  first: timings on the interpreter say nothing about the GPU, and a fixed choice keeps
  the results the same from call to call.

The layer relies on private names of ``triton.runtime.interpreter`` and
``triton.runtime.autotuner``, so it is version-gated: it is installed for the releases
in :data:`TESTED_VERSIONS` and, for any other, left off with a
:class:`TritonCompatWarning` naming them (``patches=True`` forces it on).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "ENV",
    "MODES",
    "TESTED_VERSIONS",
    "TritonCompatWarning",
    "compat_patches",
    "installed_version",
    "interpreting",
    "patches_installed",
    "prepare",
    "remove_patches",
    "reproducer_preamble",
    "use_interpreter",
]

#: the variable Triton reads when a kernel is decorated (``triton.knobs.runtime.interpret``)
ENV = "TRITON_INTERPRET"

#: releases the compatibility layer was run against (tests/kernels, each gap reproduced
#: and closed); the private names it patches move between releases
TESTED_VERSIONS = ("3.6.0", "3.7.1", "3.8.0", "3.9.0")

#: values of ``verify(..., triton=...)``, the CLI's ``--triton`` and ``--oracle-triton``
MODES = ("interpret", "compiled", "auto")

_INSTALL = "pip install 'gradient-oracle[triton]'"


class TritonCompatWarning(UserWarning):
    """The installed triton is not a release the compatibility layer was tested on."""


def installed_version() -> str | None:
    """The installed triton's version, read without importing it; ``None`` if absent."""
    try:
        return importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        return None


def _env_on() -> bool:
    # the values triton's knobs read as true (triton/knobs.py, getenv_bool)
    return os.environ.get(ENV, "0").strip().lower() in ("1", "true", "on", "yes")


def interpreting() -> bool:
    """Whether kernels decorated from now on run in Triton's interpreter."""
    if "triton" in sys.modules:
        try:
            from triton import knobs
        except ImportError:  # before triton 3.4 the variable was read directly
            return _env_on()
        return bool(knobs.runtime.interpret)
    return _env_on()


def use_interpreter(*, patches: bool | None = None) -> bool:
    """Run Triton kernels in Triton's interpreter, on the CPU; returns whether the
    compatibility layer is on.

    Call it before triton is imported (before the module that defines the kernels):
    it sets ``TRITON_INTERPRET=1``. ``patches``: ``None`` installs the compatibility layer
    on the releases in :data:`TESTED_VERSIONS` and warns, leaving it off, on others;
    ``True`` installs it on any release; ``False`` leaves it off.
    """
    if installed_version() is None:
        raise ModuleNotFoundError(f"Triton's interpreter needs triton: {_INSTALL}")
    if "triton" not in sys.modules:
        os.environ[ENV] = "1"
    elif not interpreting():
        raise RuntimeError(
            f"triton was imported before {ENV}=1 was set, so its kernels are compiled for a "
            f"GPU; set the variable before anything imports triton (torch._dynamo and "
            f"torch.compile do): `{ENV}=1 python ...`, `python -m oracle --triton interpret`, "
            f"`pytest --oracle-triton interpret`, or call oracle.pair.triton.use_interpreter() "
            f"first"
        )
    if patches is None:
        patches = _gate()
    if patches:
        _install()
    return patches


def _gate() -> bool:
    version = installed_version()
    if version in TESTED_VERSIONS:
        return True
    warnings.warn(
        f"triton {version} is not a release the oracle's interpreter compatibility layer was "
        f"tested on ({', '.join(TESTED_VERSIONS)}): the layer is OFF, so kernels that pass "
        f"Python floats, call libdevice or use @triton.autotune may fail in the interpreter. "
        f"Install one of those releases, or force the layer with use_interpreter(patches=True)",
        TritonCompatWarning,
        stacklevel=3,
    )
    return False


def prepare(mode: str | None) -> bool:
    """What ``verify(..., triton=mode)`` calls before its first example; returns whether
    kernels run in the interpreter (then CPU tensors are what they need).

    ``"interpret"``: the interpreter, with the compatibility layer (see
    :func:`use_interpreter`); ``"auto"``: the interpreter when torch sees no CUDA GPU or
    ``TRITON_INTERPRET`` is set, the compiled kernels otherwise; ``"compiled"``: the compiled kernels, which need a GPU;
    ``None``: nothing is set up or checked.
    """
    if mode is None:
        return interpreting()
    if mode not in MODES:
        raise ValueError(
            f"triton={mode!r} is not one of {', '.join(map(repr, MODES))} (or None: leave "
            f"Triton as it is)"
        )
    import torch

    if mode == "auto":  # TRITON_INTERPRET=1 asks for the interpreter on a GPU machine too
        mode = "interpret" if interpreting() or not torch.cuda.is_available() else "compiled"
    if mode == "interpret":
        use_interpreter()
        return True
    if interpreting():
        raise RuntimeError(
            f"triton='compiled', but {ENV} is set: kernels run in the interpreter; unset it "
            f"before triton is imported, or pass triton='interpret'"
        )
    if not torch.cuda.is_available():
        raise RuntimeError(
            "triton='compiled' needs a GPU that torch sees; without one pass "
            "triton='interpret' (Triton's interpreter, on the CPU)"
        )
    return False


def reproducer_preamble() -> str:
    """Lines a reproducer runs before it imports the user's module, when kernels run in
    the interpreter now ("" otherwise): ``TRITON_INTERPRET=1`` alone would leave out the
    compatibility layer, and an autotuned or libdevice kernel would fail to replay."""
    if "triton" not in sys.modules or not interpreting():
        return ""  # no Triton kernel ran in this process, or none interpreted
    return (
        "# the kernels ran in Triton's interpreter, with the oracle's compatibility layer\n"
        "from oracle.pair.triton import use_interpreter\n"
        "\n"
        "use_interpreter()\n"
    )


# --- the compatibility layer -------------------------------------------------------------
# name -> the function that undoes it
_UNDO: dict[str, Callable[[], None]] = {}


def patches_installed() -> tuple[str, ...]:
    """The names of the compatibility patches now in place."""
    return tuple(_UNDO)


def _install() -> None:
    for name, patch in _PATCHES.items():
        if name not in _UNDO:
            try:
                _UNDO[name] = patch()
            except (AttributeError, KeyError, ImportError) as exc:  # forced on another release
                raise RuntimeError(
                    f"the interpreter compatibility patch {name!r} does not fit triton "
                    f"{installed_version()} (tested: {', '.join(TESTED_VERSIONS)}): {exc!r}"
                ) from exc


def remove_patches() -> None:
    """Undo the compatibility layer (triton's interpreter as released)."""
    while _UNDO:
        _UNDO.popitem()[1]()


@contextmanager
def compat_patches(enabled: bool = True) -> Iterator[None]:
    """The compatibility layer on (or off) inside the block, as before after it."""
    before = patches_installed()
    if enabled:
        _install()
    else:
        remove_patches()
    try:
        yield
    finally:
        remove_patches()
        if before:
            for name in before:
                _UNDO[name] = _PATCHES[name]()


def _patch_float_args() -> Callable[[], None]:
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    original = interpreter._implicit_cvt

    def implicit_cvt(arg):
        # compiled Triton types a Python float argument fp32 (triton.runtime.jit.mangle_type)
        if isinstance(arg, float) and not isinstance(arg, bool):
            handle = interpreter.TensorHandle(np.array([arg], dtype=np.float32), tl.float32)
            return tl.tensor(handle, tl.float32)
        return original(arg)

    interpreter._implicit_cvt = implicit_cvt

    def undo() -> None:
        interpreter._implicit_cvt = original

    return undo


def _libdevice_table() -> dict[str, Callable]:
    import math

    import numpy as np

    def round_half_away(x):  # libdevice round; numpy's round is half to even (rint)
        return np.copysign(np.floor(np.abs(x) + 0.5), x)

    unary = {
        "abs": np.abs, "acos": np.arccos, "acosh": np.arccosh, "asin": np.arcsin,
        "asinh": np.arcsinh, "atan": np.arctan, "atanh": np.arctanh, "cbrt": np.cbrt,
        "ceil": np.ceil, "cos": np.cos, "cosh": np.cosh, "exp": np.exp, "exp2": np.exp2,
        "exp10": lambda x: np.power(x.dtype.type(10), x), "expm1": np.expm1,
        "floor": np.floor, "log": np.log, "log10": np.log10, "log1p": np.log1p,
        "log2": np.log2, "nearbyint": np.rint, "rcbrt": lambda x: 1 / np.cbrt(x),
        "rint": np.rint, "round": round_half_away, "rsqrt": lambda x: 1 / np.sqrt(x),
        "sin": np.sin, "sinh": np.sinh, "sqrt": np.sqrt, "tan": np.tan, "tanh": np.tanh,
        "trunc": np.trunc,
        "fast_cosf": np.cos, "fast_expf": np.exp, "fast_log2f": np.log2,
        "fast_logf": np.log, "fast_log10f": np.log10, "fast_sinf": np.sin,
        "fast_tanf": np.tan, "fast_tanhf": np.tanh,
    }  # fmt: skip
    binary = {
        "atan2": np.arctan2, "copysign": np.copysign, "fmax": np.fmax, "fmin": np.fmin,
        "fmod": np.fmod, "hypot": np.hypot, "pow": np.power, "fast_powf": np.power,
    }  # fmt: skip
    table = {**unary, **binary}
    table["fma"] = lambda x, y, z: x * y + z
    # erf has no numpy ufunc; math's, element by element, is exact to the last bit
    table["erf"] = np.vectorize(math.erf, otypes=[np.float64])
    table["erfc"] = np.vectorize(math.erfc, otypes=[np.float64])
    return table


def _elementwise(name: str, np_fn: Callable) -> Callable:
    """``np_fn`` as a libdevice function on interpreter tensors: arguments broadcast and
    promoted as Triton's binary operators do, the result in the first one's dtype."""
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    def fn(*args, _semantic=None):
        sem = interpreter.interpreter_semantic
        xs = [sem.to_tensor(tl.core._unwrap_if_constexpr(a)) for a in args]
        if len(xs) == 2:
            xs = list(sem.binary_op_type_checking_impl(*xs))
        elif len(xs) == 3:
            xs = list(sem.ternary_op_type_checking_impl(*xs))
        if not xs[0].dtype.is_floating():
            raise TypeError(
                f"libdevice.{name} (oracle's interpreter layer): float arguments only; got {xs[0].dtype}"
            )
        dt = xs[0].handle.data.dtype
        with np.errstate(all="ignore"):  # inf and nan as on the GPU, without numpy's warnings
            data = np.asarray(np_fn(*[x.handle.data for x in xs])).astype(dt, copy=False)
        return tl.tensor(interpreter.TensorHandle(data, xs[0].dtype), xs[0].type)

    fn.__name__ = name
    return fn


def _patch_libdevice() -> Callable[[], None]:
    import importlib

    from triton.runtime import interpreter

    modules = []
    for path in ("libdevice", "cuda.libdevice", "hip.libdevice"):
        try:
            modules.append(importlib.import_module(f"triton.language.extra.{path}"))
        except ImportError:  # a wheel without that backend
            pass
    impls = {name: _elementwise(name, fn) for name, fn in _libdevice_table().items()}
    original = interpreter.GridExecutor.__call__

    def call(self, *args, **kwargs):
        # for the launch only: outside it the stubs are what compiled Triton resolves
        saved = []
        for module in modules:
            for name, impl in impls.items():
                if hasattr(module, name):
                    saved.append((module, name, getattr(module, name)))
                    setattr(module, name, impl)
        try:
            return original(self, *args, **kwargs)
        finally:
            for module, name, value in reversed(saved):
                setattr(module, name, value)

    interpreter.GridExecutor.__call__ = call

    def undo() -> None:
        interpreter.GridExecutor.__call__ = original

    return undo


def _patch_autotune() -> Callable[[], None]:
    from triton.runtime.autotuner import Autotuner

    original = Autotuner.__dict__["do_bench"]

    def run_once(kernel_call, quantiles=None):
        kernel_call()
        return [0.0, 0.0, 0.0]  # equal timings: min() keeps the first config

    def do_bench(self):
        return self._do_bench if self._do_bench is not None else run_once

    Autotuner.do_bench = property(do_bench)

    def undo() -> None:
        Autotuner.do_bench = original

    return undo


_PATCHES: dict[str, Callable[[], Callable[[], None]]] = {
    "float_args": _patch_float_args,
    "libdevice": _patch_libdevice,
    "autotune": _patch_autotune,
}
