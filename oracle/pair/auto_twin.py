"""The automatic twin: ``jax_fn="auto"`` builds the JAX twin from ``torch_fn`` itself.

:class:`AutoTwin` runs ``torch_fn``'s forward on JAX arrays through torchax (Google's
implementation of PyTorch's aten operators in ``jax.numpy``), so ``jax.vjp`` of it
differentiates the forward's own operations and never calls a hand-written
``backward``: an independent reference for that backward. It is a plain JAX callable,
so every check that takes a twin takes it.

What it cannot do, it says, as an :class:`AutoTwinError` raised from the twin's call
("the twin cannot be built automatically: ...", or "the automatic twin computed in
float32 inside a float64 run ..."); the run reports it as an error finding blamed on the
twin, never a pass:

* a forward that leaves JAX (``.numpy()``, ``.item()``, ``.tolist()``, ``float(t)``,
  ``.cpu()``):
  JAX cannot differentiate through a Python number or a numpy array;
* an operator torchax does not implement;
* an operator torchax computes in float32 inside a float64 run (``lgamma``,
  ``digamma``, ``logit``, ``cdist`` in torchax 0.0.13): a float64 check against it
  would judge torch by a float32 reference.

torchax is imported only when an automatic twin is first built, never by ``import
oracle``, because importing it changes process-wide state; :func:`load_torchax` undoes
what can be undone (see its docstring).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

__all__ = ["AUTO", "AutoTwin", "AutoTwinError", "auto_twin", "load_torchax", "is_auto"]

#: the value of ``jax_fn`` that asks for an automatic twin
AUTO = "auto"
#: the torchax release this module was written and tested against; others may work
TESTED_TORCHAX = "0.0.13"
_INSTALL_HINT = (
    f"install the optional extra: pip install 'gradient-oracle[auto]' (torchax=={TESTED_TORCHAX})"
)
#: torchax sets this at import; the oracle changes no user environment, so it is restored
_TELEMETRY_VAR = "ENABLE_RUNTIME_UPTIME_TELEMETRY"

_torchax: Any = None


class AutoTwinError(RuntimeError):
    """The automatic twin cannot stand in for a hand-written one on this forward."""


def _cannot_build(why: str) -> AutoTwinError:
    return AutoTwinError(f"the twin cannot be built automatically: {why}")


def is_auto(jax_fn: Any) -> bool:
    """Whether ``jax_fn`` asks for the automatic twin (the string ``"auto"``)."""
    return isinstance(jax_fn, str) and jax_fn == AUTO


# --- importing torchax --------------------------------------------------------------


@contextlib.contextmanager
def _named_overload_fallback() -> Iterator[None]:
    """torchax 0.0.13 names aten overloads that torch 2.13 removed (``prod.dim_Dimname``,
    ``all.dimname``, ... : google/torchax#101, fixed on its main branch, unreleased), and
    fails to import. For the duration of the import, such a name resolves to an overload
    that exists; torchax only puts these in tables of operators it handles, and named
    tensors never reach them. ``getattr`` (not the original ``__getattr__``) returns the
    overload torch has cached: a fresh object would replace it and torchax's tables would
    no longer find ``aten.all.default``."""
    packet = torch._ops.OpOverloadPacket
    original = packet.__getattr__

    def fallback(self: Any, key: str) -> Any:
        try:
            return original(self, key)
        except AttributeError:
            if "dimname" not in key.lower() and "names" not in key:
                raise
            for name in self.overloads():
                return getattr(self, name)
            raise

    packet.__getattr__ = fallback
    try:
        yield
    finally:
        packet.__getattr__ = original


def load_torchax() -> Any:
    """Import torchax (once per process) and undo what its import changed.

    Restored: the ``ENABLE_RUNTIME_UPTIME_TELEMETRY`` environment variable, torch's
    multi-head-attention fast path switch, and torch's global decomposition tables
    (torchax registers its own there). Neutralised: torchax registers a "jax" device
    module that makes ``torch.compile`` fail in the same process ("PyTorch is not linked
    with support for jax devices", pytorch/xla#9730); it is marked unavailable. Not
    undoable: torch's ``privateuse1`` device is renamed to "jax" for the life of the
    process (torch allows one rename), so another backend that needs that name cannot
    load after it.
    """
    global _torchax
    if _torchax is not None:
        return _torchax
    try:
        importlib.metadata.version("torchax")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f'jax_fn="auto" needs torchax, which is not installed: {_INSTALL_HINT}'
        ) from None
    import torch._decomp as decomp

    telemetry = os.environ.get(_TELEMETRY_VAR)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    tables = {k: dict(v) for k, v in decomp.global_decomposition_table.items()}
    try:
        with _named_overload_fallback():
            import torchax
            import torchax.interop

            # builds the operator tables, which name more removed overloads
            torchax.default_env()
    except Exception as exc:
        raise ImportError(
            f"torchax {importlib.metadata.version('torchax')} could not be imported with torch "
            f"{torch.__version__}: {type(exc).__name__}: {exc}; {_INSTALL_HINT}"
        ) from exc
    finally:
        if telemetry is None:
            os.environ.pop(_TELEMETRY_VAR, None)
        else:
            os.environ[_TELEMETRY_VAR] = telemetry
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for k, table in decomp.global_decomposition_table.items():
            table.clear()
            table.update(tables.get(k, {}))
    if getattr(torchax, "device_module", None) is not None:
        torchax.device_module.is_available = lambda: False
    _torchax = torchax
    return torchax


# --- the twin ---------------------------------------------------------------------

#: Tensor methods that leave JAX: what they return is a constant to JAX, so the
#: gradient through it would silently be lost
_LEAVES_JAX = {
    torch.Tensor.item: ".item()",
    torch.Tensor.tolist: ".tolist()",
    torch.Tensor.numpy: ".numpy()",
    torch.Tensor.__float__: "float(tensor)",
    torch.Tensor.__int__: "int(tensor)",
    torch.Tensor.__complex__: "complex(tensor)",
}


def _leaves_jax(what: str) -> AutoTwinError:
    return _cannot_build(
        f"the forward calls {what}, which turns a tensor into a Python value or a numpy "
        "array that JAX cannot differentiate through; write a JAX twin by hand"
    )


class _RefuseLeavingJax(torch.overrides.TorchFunctionMode):
    """Innermost torch-function mode: refuses the calls in ``_LEAVES_JAX``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        what = _LEAVES_JAX.get(func)
        if what is not None:
            raise _leaves_jax(what)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _refusing_own_methods(tensor_type: type) -> Iterator[None]:
    """torchax's tensor defines ``numpy`` and ``tolist`` itself, out of the torch-function
    modes' sight: refuse them too, for the duration of one call of the forward."""
    saved = {name: tensor_type.__dict__.get(name) for name in ("numpy", "tolist")}

    def refuse(what: str) -> Callable:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise _leaves_jax(what)

        return method

    for name in saved:
        setattr(tensor_type, name, refuse(f".{name}()"))
    try:
        yield
    finally:
        for name, method in saved.items():
            if method is None:
                delattr(tensor_type, name)
            else:
                setattr(tensor_type, name, method)


def _downcasts(jaxpr: Any, found: set[str]) -> None:
    """Operators inside ``jaxpr`` (and its sub-jaxprs) that convert float64 to a narrower
    float. torchax runs each operator in a JAX named scope; a cast with no scope is the
    forward's own ``.float()``/``.to(...)``, which torch makes too."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "convert_element_type":
            src, dst = eqn.invars[0].aval.dtype, eqn.params["new_dtype"]
            scope = str(eqn.source_info.name_stack)
            if src == jnp.float64 and jnp.issubdtype(dst, jnp.floating) and dst != src and scope:
                found.add(scope.split("/")[-1])
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _downcasts(inner, found)


def _abstract(x: Any) -> Any:
    aval = jax.typeof(x)  # keeps a traced Python float weakly typed, as it is in the call
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def _signature(args: tuple) -> tuple:
    return tuple(
        (tuple(a.shape), str(a.dtype)) if isinstance(a, jax.Array) else repr(a) for a in args
    )


class AutoTwin:
    """``torch_fn``'s forward as a JAX callable (through torchax).

    Equal for equal ``torch_fn``: jit caches keyed on the twin are shared by every
    :func:`oracle.verify` of the same function.
    """

    def __init__(self, torch_fn: Callable):
        if not callable(torch_fn):
            raise TypeError(f'jax_fn="auto" needs a callable torch_fn; got {torch_fn!r}')
        self.torch_fn = torch_fn
        #: per float64 signature: whether its outputs' dtypes must be checked instead
        #: (no program could be traced to read the operators' casts from)
        self._precision_checked: dict[tuple, bool] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AutoTwin) and other.torch_fn == self.torch_fn

    def __hash__(self) -> int:
        return hash((AutoTwin, self.torch_fn))

    def __repr__(self) -> str:
        return f"AutoTwin({self.torch_fn!r})"

    def _forward(self, *args: Any) -> Any:
        tx = load_torchax()
        env = tx.default_env()
        fn = self.torch_fn
        if isinstance(fn, torch.nn.Module):
            # its parameters and buffers, as constants of the twin in their own dtype
            state = {
                k: tx.interop.torch_view(env.t2j_copy(v.detach()))
                for k, v in [*fn.named_parameters(), *fn.named_buffers()]
            }
            module = fn

            def fn(*a: Any) -> Any:
                return torch.func.functional_call(module, state, a)

        targs = tx.interop.torch_view(args)
        try:
            with (
                env,
                torch.device("jax"),
                _RefuseLeavingJax(),
                _refusing_own_methods(tx.tensor.Tensor),
                warnings.catch_warnings(),
            ):
                # torch's int64 indices are int32 in JAX's 32-bit mode, as the oracle's own
                # integer inputs are: JAX's warning about it would be noise on every call
                warnings.filterwarnings("ignore", "Explicitly requested dtype int64")
                out = fn(*targs)
        except jax.errors.TracerArrayConversionError as exc:
            raise _leaves_jax(".cpu() or np.asarray(tensor)") from exc
        except tx.tensor.OperatorNotFound as exc:
            raise _cannot_build(f"torchax does not implement an operator it uses: {exc}") from exc
        out = tx.interop.jax_view(out)
        for leaf in jax.tree_util.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                raise _cannot_build(
                    "the forward returned a torch tensor that was not computed from its "
                    "inputs in JAX (made from numpy or Python numbers?); write a JAX twin by hand"
                )
        return out

    def _check_precision(self, args: tuple) -> bool:
        """In a float64 call, refuse operators that torchax computes in float32 (once
        per signature: a second trace of the forward). Returns whether that could not be
        read from the program, so the outputs' dtypes must be checked instead."""
        if not any(isinstance(a, jax.Array) and a.dtype == jnp.float64 for a in args):
            return False
        key = _signature(args)
        if key in self._precision_checked:
            return self._precision_checked[key]
        arrays = [i for i, a in enumerate(args) if isinstance(a, jax.Array)]

        def forward(*xs: Any) -> Any:
            full = list(args)
            for i, x in zip(arrays, xs, strict=True):
                full[i] = x
            return self._forward(*full)

        try:
            closed = jax.make_jaxpr(forward)(*[_abstract(args[i]) for i in arrays])
        except (
            jax.errors.ConcretizationTypeError,
            jax.errors.TracerIntegerConversionError,
            jax.errors.NonConcreteBooleanIndexError,
        ):
            # data-dependent shapes or control flow: no program to read
            self._precision_checked[key] = True
            return True
        found: set[str] = set()
        _downcasts(closed.jaxpr, found)
        if found:
            raise AutoTwinError(
                f"the automatic twin computed in float32 inside a float64 run (torchax "
                f"{_torchax.__version__} computes {', '.join(sorted(found))} in float32), so "
                "it cannot judge a float64 gradient; check float32 only (dtypes=('float32',)) "
                "or write a JAX twin by hand"
            )
        self._precision_checked[key] = False
        return False

    def __call__(self, *args: Any) -> Any:
        args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        check_outputs = self._check_precision(args)
        out = self._forward(*args)
        narrow = [
            leaf.dtype
            for leaf in jax.tree_util.tree_leaves(out)
            if isinstance(leaf, jax.Array) and leaf.dtype in (jnp.float32, jnp.float16)
        ]
        if check_outputs and narrow:
            raise AutoTwinError(
                f"the automatic twin computed in float32 inside a float64 run (an output is "
                f"{narrow[0]}), so it cannot judge a float64 gradient; check float32 only "
                "(dtypes=('float32',)) or write a JAX twin by hand"
            )
        return out


def auto_twin(torch_fn: Callable) -> AutoTwin:
    """The automatic twin of ``torch_fn`` (what ``jax_fn="auto"`` uses). Imports torchax
    now, so a missing or broken install is an ``ImportError`` here, not a finding later."""
    twin = AutoTwin(torch_fn)
    load_torchax()
    return twin
