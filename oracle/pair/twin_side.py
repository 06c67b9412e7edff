"""The JAX twin of a pair, called on one example: ``jax.vjp`` of the twin under
``jax.jit``, compiled once per shape/dtype signature and reused, or op by op for twins
whose shapes or control flow depend on the data. Takes argument values (numpy arrays and
plain values, as drawn) and returns numpy results; judges nothing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .bridge import DTYPES, jax_device, plain_numpy, to_jax
from .compiling import SMALL_PROGRAM, options_for
from .guard import Guard, SideError
from .jax_internals import forget_traces
from .outputs import Outputs, layout_of

__all__ = ["TwinSide", "assemble", "twin_vjp", "twin_forward", "KEEP_TWINS", "release_all"]


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


def assemble(layout, diff, arrays, scalars, statics):
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


def twin_forward(jax_fn, layout, statics, diff, arrays, scalars):
    return jax.tree_util.tree_leaves(jax_fn(*assemble(layout, diff, arrays, scalars, statics)))


def twin_vjp(jax_fn, layout, statics, diff, arrays, scalars, cots):
    def f(*d):
        return jax_fn(*assemble(layout, d, arrays, scalars, statics))

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


_PROGRAMS = {"forward": twin_forward, "vjp": twin_vjp}

_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)
#: errors only an eager run avoids: a boolean index makes a data-dependent shape
_EAGER_ERRORS = (jax.errors.NonConcreteBooleanIndexError,)


#: twins whose compiled programs are kept after their verify ends (the most recent ones)
KEEP_TWINS = 8


@dataclass
class _Kept:
    jits: dict[Any, Any] = field(default_factory=dict)
    shapes: dict[Any, Any] = field(default_factory=dict)
    static_scalars: bool = False
    eager: bool = False


_KEPT: OrderedDict[Any, _Kept] = OrderedDict()


def _kept_state(fn: Any) -> _Kept:
    """What an earlier verify kept of twin ``fn`` (nothing for a new or unhashable one)."""
    try:
        return _KEPT.get(fn) or _Kept()
    except TypeError:
        return _Kept()


def _keep(fn: Any, state: _Kept) -> None:
    try:
        _KEPT[fn] = state
    except TypeError:  # an unhashable twin: its programs are freed now
        _free(state)
        return
    _KEPT.move_to_end(fn)
    while len(_KEPT) > KEEP_TWINS:
        _free(_KEPT.popitem(last=False)[1])


def _free(state: _Kept) -> None:
    for program in state.jits.values():
        program.clear_cache()
    state.jits.clear()
    state.shapes.clear()


def release_all() -> None:
    """Free every kept twin's programs (tests and long campaigns)."""
    while _KEPT:
        _free(_KEPT.popitem(last=False)[1])


class TwinSide:
    """The JAX twin: forward and vjp, jit-compiled once per signature.

    The compiled programs (one ``jax.jit`` per program kind) and what was learned of the
    twin (its output shapes, whether it needs static scalars or eager execution) are kept
    when :meth:`release` ends a verify, for the last :data:`KEEP_TWINS` twins: a later
    verify of the same twin compiles nothing it has compiled before. Older twins'
    programs are freed: XLA's compiled CPU code holds memory mappings, and a process
    checking hundreds of pairs would otherwise run out of them.
    """

    def __init__(self, fn: Callable, specs: Sequence[Any], guard: Guard | None = None):
        self.fn = fn
        self.specs = specs
        self.guard = guard or Guard()
        kept = _kept_state(fn)
        self._static_scalars = kept.static_scalars  # the twin needs concrete float values
        self._eager = kept.eager  # the twin cannot be traced at all (see _eagerly)
        self._shapes: dict[Any, list[tuple[tuple[int, ...], bool]]] = kept.shapes
        self._jits: dict[Any, Any] = kept.jits

    def _jit(self, which: str, small: bool, device: str, low: bool = False) -> Any:
        options = options_for(small, device, low_dtype=low)
        return self.program((which, small, device, low), _PROGRAMS[which], (0, 1, 2), options)

    def program(self, name: Any, fn: Callable, static_argnums: tuple, options: dict) -> Any:
        """``jax.jit(fn)`` owned by this pair (other checks' programs: oracle.judge.checks.transform)."""
        if name not in self._jits:
            # a wrapper of its own: jax.jit objects of one function share their cache,
            # and freeing an old twin's programs must not free this one's
            def owned(*args: Any) -> Any:
                return fn(*args)

            self._jits[name] = jax.jit(
                owned, static_argnums=static_argnums, compiler_options=options
            )
        return self._jits[name]

    def release(self) -> None:
        """End of a verify: keep this twin's programs among the last :data:`KEEP_TWINS`
        twins' (freeing the oldest beyond that), and forget JAX's traces."""
        _keep(self.fn, _Kept(self._jits, self._shapes, self._static_scalars, self._eager))
        forget_traces()

    def _layout(self, values: Sequence[Any]) -> tuple[str, ...]:
        layout = layout_of(self.specs, values)
        if self._static_scalars:
            layout = tuple("static" if k == "scalar" else k for k in layout)
        return layout

    def split(self, values: Sequence[Any], dtype: str, device: str):
        layout = self._layout(values)
        jvals = to_jax(values, self.specs, dtype, device)
        groups: dict[str, list[Any]] = {"diff": [], "array": [], "scalar": [], "static": []}
        for kind, v in zip(layout, jvals, strict=True):
            groups[kind].append(_Static(v) if kind == "static" else v)
        return layout, groups

    def _call(self, which, values, dtype, device, *extra):
        if self._eager:
            return self._eagerly(which, values, dtype, device, *extra)
        layout, g = self.split(values, dtype, device)
        small = sum(a.size for a in g["diff"] + g["array"]) < SMALL_PROGRAM
        fn = self._jit(which, small, device, dtype in ("bfloat16", "float16"))
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
            self._fall_back(err, layout)
            return self._call(which, values, dtype, device, *extra)

    def _fall_back(self, err: SideError, layout: tuple[str, ...]) -> None:
        """After a trace error: compile float hyper-parameters in (the twin branches on
        one in Python), or else run this pair op by op from now on; re-raise any other
        error."""
        exc = err.exc
        if not isinstance(exc, _TRACE_ERRORS + _EAGER_ERRORS):
            raise err
        if self._static_scalars or "scalar" not in layout or isinstance(exc, _EAGER_ERRORS):
            self._eager = True
        else:
            self._static_scalars = True

    # --- the eager path: twins whose shapes or control flow depend on the data --------
    # (boolean masks, nonzero, `if x.sum() > 0`) cannot be traced by jax.jit or
    # jax.eval_shape; run op by op instead, from then on for this pair. JAX's
    # differentiation works eagerly on concrete values.

    def _eagerly(self, which, values, dtype, device, *extra):
        layout, g = self.split(values, dtype, device)
        body = twin_vjp if which == "vjp" else twin_forward
        with jax.default_device(jax_device(device)):
            # JAX arrays, as a compiled call would see (the twin may call their methods)
            diff, arrays = (tuple(jnp.asarray(a) for a in g[k]) for k in ("diff", "array"))
            args = (self.fn, layout, tuple(g["static"]), diff, arrays, tuple(g["scalar"]))
            return self.guard.call("twin", which, body, *args, *extra)

    def output_shapes(
        self, values: Sequence[Any], dtype: str, device: str
    ) -> list[tuple[int, ...] | None]:
        """Shapes of the floating outputs (None for the others), traced once per signature
        (float32 and float64 share one)."""
        if self._eager:  # they may depend on the data: computed for each example
            leaves = self._eagerly("forward", values, dtype, device)
            return [
                tuple(x.shape) if jnp.issubdtype(x.dtype, jnp.inexact) else None for x in leaves
            ]
        layout = self._layout(values)
        key = (
            # a twin's shapes do not change between float32 and float64: traced once
            "float32/64" if dtype in ("float32", "float64") else dtype,
            device,
            layout,
            tuple(
                _Static(v) if k == "static" else np.shape(v)
                for k, v in zip(layout, values, strict=True)
            ),
        )
        if key not in self._shapes:
            layout, g = self.split(values, dtype, device)

            def fwd(diff, arrays, scalars):
                return twin_forward(self.fn, layout, tuple(g["static"]), diff, arrays, scalars)

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
                self._fall_back(err, layout)
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
            leaves = [plain_numpy(x) for x in leaves]
            grads = [plain_numpy(x) for x in grads]
        except Exception as exc:
            raise SideError("twin", "vjp", exc) from exc
        connected = [leaf.dtype.kind in "fc" for leaf in leaves]
        return Outputs(leaves, grads, connected)

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
