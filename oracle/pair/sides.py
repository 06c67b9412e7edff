"""The two sides of a pair, called on one example: torch's backward and the twin's vjp.

:class:`TorchSide` runs the PyTorch function and ``torch.autograd.grad``;
:class:`TwinSide` runs ``jax.vjp`` of the twin under ``jax.jit``, compiled once per
shape/dtype signature and reused. Both take a list of argument values (numpy arrays
and plain values, as drawn) and return numpy results, and neither judges anything:
that is :mod:`oracle.checks`.

Arguments are split by kind: ``diff`` (differentiated float tensors), ``array`` (float
tensors with ``grad=False`` and integer tensors: traced, not baked into the program),
``scalar`` (Python floats from strategies: traced as weak-typed scalars so a drawn
hyper-parameter does not recompile, unless the twin needs its concrete value) and
``static`` (everything else: part of the compiled program's key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from .jax_internals import forget_traces
from .bridge import DTYPES, jax_device, to_jax, to_torch, torch_to_numpy
from .compiling import SMALL_PROGRAM, options_for
from .factories import Factory
from .guard import Guard, SideError
from ..judge.rounding import magnitudes_of_jaxpr
from ..inputs.specs import ChoiceSpec, IntegersSpec, TensorSpec

__all__ = ["SideError", "Outputs", "TorchSide", "TwinSide", "cotangents_for", "layout_of"]


@dataclass
class Outputs:
    """One side's results: output leaves and one gradient per differentiated argument
    (``None`` where torch gave no gradient at all)."""

    leaves: list[np.ndarray]
    grads: list[np.ndarray | None]
    #: per leaf: does it carry a gradient (torch: requires_grad; twin: inexact dtype)
    connected: list[bool]


def layout_of(specs: Sequence[Any], values: Sequence[Any]) -> tuple[str, ...]:
    kinds = []
    for spec, value in zip(specs, values, strict=True):
        if isinstance(spec, (TensorSpec, ChoiceSpec)):
            kinds.append("diff" if spec.grad else "array")
        elif isinstance(spec, IntegersSpec):
            kinds.append("array")
        elif isinstance(value, float):
            kinds.append("scalar")
        else:
            kinds.append("static")
    return tuple(kinds)


def cotangents_for(shapes: Sequence[tuple[int, ...] | None], seed: int) -> list[np.ndarray | None]:
    """A random cotangent per floating output (None for the others), uniform in
    [-1, 1) and float32 so both dtypes see the same one (uniform float32 draws are 8x
    cheaper than normal ones). Never all ones: a backward that ignores ``grad_output``
    would pass a ones cotangent on a summed loss."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray | None] = []
    for shape in shapes:
        if shape is None:
            out.append(None)
        else:
            out.append(rng.random(shape, dtype=np.float32) * np.float32(2) - np.float32(1))
    return out


def _flatten_torch(out: Any) -> list[Any]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _flatten_torch(o)]
    if isinstance(out, dict):
        return [leaf for k in sorted(out) for leaf in _flatten_torch(out[k])]
    if isinstance(out, (int, float, np.number)):
        return [torch.tensor(out)]  # a Python number carries no gradient
    raise TypeError(f"returned {type(out).__name__}; expected a tensor or a tuple/list of tensors")


class TorchSide:
    def __init__(self, fn: Callable | Factory, specs: Sequence[Any], guard: Guard | None = None):
        self.fn = fn
        self.specs = specs
        self.guard = guard or Guard()

    def callable_for(self, dtype: str, device: str) -> Callable:
        """``fn``, or what the factory ``fn`` builds for this dtype and device."""
        return self.fn.build(dtype, device) if isinstance(self.fn, Factory) else self.fn

    def run(
        self,
        values: Sequence[Any],
        dtype: str,
        device: str,
        cotangents: Sequence[np.ndarray | None] | None,
        *,
        backward: bool = True,
    ) -> Outputs:
        """Forward, then ``torch.autograd.grad`` with ``cotangents`` (one per output
        leaf, None for non-floating ones). Call inside ``precision_scope``."""
        args = to_torch(values, self.specs, dtype, device)
        diff = [a for a, s in zip(args, self.specs, strict=True) if getattr(s, "grad", False)]
        with torch.enable_grad():
            # a factory is user code too: built under the guard
            out = self.guard.call(
                "torch", "forward", lambda *a: self.callable_for(dtype, device)(*a), *args
            )
        try:
            leaves = _flatten_torch(out)
        except Exception as exc:
            raise SideError("torch", "forward", exc) from exc
        connected = [leaf.requires_grad for leaf in leaves]
        grads: list[np.ndarray | None] = [None] * len(diff)
        if backward and diff and any(connected) and cotangents is not None:
            pairs = [
                (leaf, torch.as_tensor(c, dtype=leaf.dtype, device=leaf.device))
                for leaf, c, conn in zip(leaves, cotangents, connected, strict=False)
                if conn and c is not None and leaf.is_floating_point()
            ]
            if pairs:
                got = self.guard.call(
                    "torch",
                    "backward",
                    lambda: torch.autograd.grad(
                        [p[0] for p in pairs], diff, [p[1] for p in pairs], allow_unused=True
                    ),
                )
                grads = [None if g is None else torch_to_numpy(g) for g in got]
        return Outputs([torch_to_numpy(leaf) for leaf in leaves], grads, connected)

    def phi(
        self, values: Sequence[Any], device: str, cotangents: Sequence[np.ndarray | None]
    ) -> float:
        """<cotangent, f(x)> in float64, no graph: the scalar finite differences use."""
        args = to_torch(values, self.specs, "float64", device)
        with torch.no_grad():
            fn = self.guard.call("torch", "forward", self.callable_for, "float64", device)
            leaves = _flatten_torch(self.guard.call("torch", "forward", fn, *args))
        total = 0.0
        for leaf, c in zip(leaves, cotangents, strict=False):
            if c is not None and leaf.is_floating_point():
                total += float(np.sum(torch_to_numpy(leaf).astype(np.float64) * c))
        return total


class _Static:
    """A hashable stand-in for a static argument (compiled into the program)."""

    __slots__ = ("value", "_key")

    def __init__(self, value: Any):
        self.value = value
        try:
            hash(value)
            self._key = (type(value), value)
        except TypeError:
            self._key = (type(value), repr(value))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and self._key == other._key


def _assemble(layout, diff, arrays, scalars, statics):
    it = {
        "diff": iter(diff),
        "array": iter(arrays),
        "scalar": iter(scalars),
        "static": iter(statics),
    }
    args = []
    for kind in layout:
        v = next(it[kind])
        args.append(v.value if kind == "static" else v)
    return args


def _float0_like(leaf: Any) -> np.ndarray:
    return np.zeros(leaf.shape, dtype=jax.dtypes.float0)


def _twin_forward(jax_fn, layout, statics, diff, arrays, scalars):
    return jax.tree_util.tree_leaves(jax_fn(*_assemble(layout, diff, arrays, scalars, statics)))


def _twin_vjp(jax_fn, layout, statics, diff, arrays, scalars, cots):
    def f(*d):
        return jax_fn(*_assemble(layout, d, arrays, scalars, statics))

    out, pull = jax.vjp(f, *diff)
    leaves, tree = jax.tree_util.tree_flatten(out)
    cts, k = [], 0
    for leaf in leaves:
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            cts.append(cots[k].astype(leaf.dtype))
            k += 1
        else:
            cts.append(_float0_like(leaf))
    grads = pull(jax.tree_util.tree_unflatten(tree, cts))
    return leaves, list(grads)


_PROGRAMS = {"forward": _twin_forward, "vjp": _twin_vjp}

_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)
#: errors only an eager run avoids: a boolean index makes a data-dependent shape
_EAGER_ERRORS = (jax.errors.NonConcreteBooleanIndexError,)


class TwinSide:
    """The JAX twin: forward and vjp, jit-compiled once per signature.

    The compiled programs belong to this object (one ``jax.jit`` per program kind) and
    :meth:`release` frees them: XLA's compiled CPU code holds memory mappings, and a
    process checking hundreds of pairs would otherwise run out of them.
    """

    def __init__(self, fn: Callable, specs: Sequence[Any], guard: Guard | None = None):
        self.fn = fn
        self.specs = specs
        self.guard = guard or Guard()
        self._static_scalars = False  # set when the twin needs concrete float values
        self._eager = False  # set when the twin cannot be traced at all (see _eagerly)
        self._shapes: dict[Any, list[tuple[tuple[int, ...], bool]]] = {}
        self._jits: dict[Any, Any] = {}
        #: what the default set of checks beyond the vjp has compiled (oracle.beyond)
        self.extra_compiled: set[tuple] = set()
        self.extra_budget: dict[tuple, int] = {}

    def _jit(self, which: str, small: bool, device: str) -> Any:
        options = options_for(small, device)
        return self.program((which, small, device), _PROGRAMS[which], (0, 1, 2), options)

    def program(self, name: Any, fn: Callable, static_argnums: tuple, options: dict) -> Any:
        """``jax.jit(fn)`` owned by this pair (other checks' programs: oracle.transforms)."""
        if name not in self._jits:
            self._jits[name] = jax.jit(fn, static_argnums=static_argnums, compiler_options=options)
        return self._jits[name]

    def release(self) -> None:
        """Free this pair's compiled programs and traces (the next call recompiles)."""
        for fn in self._jits.values():
            fn.clear_cache()
        self._jits.clear()
        self._shapes.clear()
        self.extra_compiled.clear()
        self.extra_budget.clear()
        forget_traces()

    def _layout(self, values: Sequence[Any]) -> tuple[str, ...]:
        layout = layout_of(self.specs, values)
        if self._static_scalars:
            layout = tuple("static" if k == "scalar" else k for k in layout)
        return layout

    def _split(self, values: Sequence[Any], dtype: str, device: str):
        layout = self._layout(values)
        jvals = to_jax(values, self.specs, dtype, device)
        groups: dict[str, list[Any]] = {"diff": [], "array": [], "scalar": [], "static": []}
        for kind, v in zip(layout, jvals, strict=True):
            groups[kind].append(_Static(v) if kind == "static" else v)
        return layout, groups

    def _call(self, which, values, dtype, device, *extra):
        if self._eager:
            return self._eagerly(which, values, dtype, device, *extra)
        layout, g = self._split(values, dtype, device)
        small = sum(a.size for a in g["diff"] + g["array"]) < SMALL_PROGRAM
        fn = self._jit(which, small, device)
        args = (
            self.fn,
            layout,
            tuple(g["static"]),
            tuple(g["diff"]),
            tuple(g["array"]),
            tuple(g["scalar"]),
        )
        try:
            with jax.default_device(jax_device(device)):
                return self.guard.call("twin", which, fn, *args, *extra)
        except SideError as err:
            exc = err.exc
            if not isinstance(exc, _TRACE_ERRORS + _EAGER_ERRORS):
                raise
            if self._static_scalars or "scalar" not in layout or isinstance(exc, _EAGER_ERRORS):
                self._eager = True
                return self._eagerly(which, values, dtype, device, *extra)
            # the twin branches on a float hyper-parameter in Python: compile it in
            self._static_scalars = True
            return self._call(which, values, dtype, device, *extra)

    # --- the eager path: twins whose shapes or control flow depend on the data --------
    # (boolean masks, nonzero, `if x.sum() > 0`) cannot be traced by jax.jit or
    # jax.eval_shape; run op by op instead, from then on for this pair. JAX's
    # differentiation works eagerly on concrete values.

    def _eagerly(self, which, values, dtype, device, *extra):
        layout, g = self._split(values, dtype, device)
        body = _twin_vjp if which == "vjp" else _twin_forward
        with jax.default_device(jax_device(device)):
            # JAX arrays, as a compiled call would see (the twin may call their methods)
            diff, arrays = (tuple(jnp.asarray(a) for a in g[k]) for k in ("diff", "array"))
            args = (self.fn, layout, tuple(g["static"]), diff, arrays, tuple(g["scalar"]))
            return self.guard.call("twin", which, body, *args, *extra)

    def output_shapes(
        self, values: Sequence[Any], dtype: str, device: str
    ) -> list[tuple[int, ...] | None]:
        """Shapes of the floating outputs (None for the others), traced once per signature."""
        if self._eager:  # they may depend on the data: computed for each example
            leaves = self._eagerly("forward", values, dtype, device)
            return [
                tuple(x.shape) if jnp.issubdtype(x.dtype, jnp.inexact) else None for x in leaves
            ]
        layout = self._layout(values)
        key = (
            dtype,
            device,
            layout,
            tuple(
                _Static(v) if k == "static" else np.shape(v)
                for k, v in zip(layout, values, strict=True)
            ),
        )
        if key not in self._shapes:
            layout, g = self._split(values, dtype, device)

            def fwd(diff, arrays, scalars):
                return _twin_forward(self.fn, layout, tuple(g["static"]), diff, arrays, scalars)

            try:
                shapes = self.guard.call(
                    "twin",
                    "forward",
                    jax.eval_shape,
                    fwd,
                    tuple(g["diff"]),
                    tuple(g["array"]),
                    tuple(g["scalar"]),
                )
            except SideError as err:
                exc = err.exc
                if not isinstance(exc, _TRACE_ERRORS + _EAGER_ERRORS):
                    raise
                if self._static_scalars or "scalar" not in layout or isinstance(exc, _EAGER_ERRORS):
                    self._eager = True
                    return self.output_shapes(values, dtype, device)
                self._static_scalars = True
                return self.output_shapes(values, dtype, device)
            self._shapes[key] = [
                (tuple(s.shape), bool(jnp.issubdtype(s.dtype, jnp.inexact))) for s in shapes
            ]
        return [shape if inexact else None for shape, inexact in self._shapes[key]]

    def run(
        self,
        values: Sequence[Any],
        dtype: str,
        device: str,
        cotangents: Sequence[np.ndarray | None],
    ) -> Outputs:
        np_dtype = DTYPES[dtype][0]
        cots = tuple(np.asarray(c, dtype=np_dtype) for c in cotangents if c is not None)
        leaves, grads = self._call("vjp", values, dtype, device, cots)
        try:
            leaves = [np.asarray(x) for x in leaves]
            grads = [np.asarray(x) for x in grads]
        except Exception as exc:
            raise SideError("twin", "vjp", exc) from exc
        connected = [leaf.dtype.kind in "fc" for leaf in leaves]
        return Outputs(leaves, grads, connected)

    def term_magnitudes(
        self, values: Sequence[Any], device: str, cotangents: Sequence[np.ndarray | None]
    ) -> list[np.ndarray | None]:
        """Per differentiated argument, the magnitude of the terms its float64 gradient
        is summed from (:mod:`oracle.rounding`; call inside float64 ``precision_scope``)."""
        layout, g = self._split(values, "float64", device)
        cots = tuple(np.asarray(c, dtype=np.float64) for c in cotangents if c is not None)
        statics = tuple(g["static"])

        def vjp(diff, arrays, scalars, cts):
            return _twin_vjp(self.fn, layout, statics, diff, arrays, scalars, cts)

        args = (tuple(g["diff"]), tuple(g["array"]), tuple(g["scalar"]), cots)
        closed = self.guard.call("twin", "vjp", jax.make_jaxpr(vjp), *args)
        flat = jax.tree_util.tree_leaves(args)
        mags = self.guard.call("twin", "vjp", magnitudes_of_jaxpr, closed, flat)
        return mags[len(mags) - len(g["diff"]) :]

    def forward_eager(self, values: Sequence[Any], dtype: str, device: str) -> list[np.ndarray]:
        """The twin's outputs run op by op, not compiled (call inside ``precision_scope``)."""
        return [np.asarray(x) for x in self._eagerly("forward", values, dtype, device)]

    def forward(self, values: Sequence[Any], device: str) -> list[np.ndarray]:
        """The twin's outputs in float64 (call inside ``precision_scope``)."""
        return [np.asarray(x) for x in self._call("forward", values, "float64", device)]

    def phi(
        self, values: Sequence[Any], device: str, cotangents: Sequence[np.ndarray | None]
    ) -> float:
        leaves = self._call("forward", values, "float64", device)
        total = 0.0
        for leaf, c in zip(leaves, cotangents, strict=False):
            if c is not None:
                total += float(np.sum(np.asarray(leaf, dtype=np.float64) * c))
        return total
