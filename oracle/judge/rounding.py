r"""The rounding model: how large are the terms that produced each gradient element?

A float64 gradient element :math:`g_i` is a sum of terms; rounding leaves it wrong by
up to about :math:`\epsilon \cdot T_i`, where :math:`T_i` is the sum of the terms'
*magnitudes*, not :math:`|g_i|`. A saturated softmax shows why the difference
matters: :math:`\partial L/\partial x_0 = p_0 - 1 = -2.4\cdot 10^{-14}` is the
difference of two terms of size 1, so any correct float64 code is off by about
:math:`10^{-16}`, a relative error of :math:`10^{-3}`.

:func:`term_magnitudes` measures :math:`T` by running the twin's vjp (its jaxpr) once
more in float64, carrying beside each value a bound on the magnitude of the terms it
was made from:

* sums (``add``, ``sub``, ``reduce_sum``, ``dot_general``, ``scatter-add``...) add
  magnitudes (:math:`|a| + |b|`, :math:`\sum_k |a_k||b_k|`), so cancellation cannot
  hide them; ``mul`` and ``div`` multiply and divide them;
* moving data (reshape, broadcast, gather, select, concatenate...) moves them;
* any other primitive (``exp``, ``log``, ``tanh``...) gets :math:`|f(a)|` plus the
  first-order propagation of its inputs' magnitudes, :math:`|f'(a)|\,T_a` (a ``jax.jvp``
  of that primitive with the magnitudes as tangents).

The model knows nothing of torch: torch's own formula may cancel more than the twin's.
The verdicts therefore use it on both sides of a gap: a gap below ``ROUNDING`` x eps x T
is rounding; one between that and float32's level is left to finite differences; one at
float32's level is a ``precision`` finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from ..pair.bridge import jax_device, precision_scope
from ..pair.compiling import SMALL_PROGRAM, options_for
from ..pair.twin_side import twin_forward, twin_vjp

__all__ = [
    "magnitudes_of_jaxpr",
    "OutputRounding",
    "FLOAT32_ROUNDINGS",
    "float32_rounding_of_terms",
    "magnitudes_program",
    "term_magnitudes",
    "output_magnitudes",
    "ROUNDING",
    "PRECISION",
]

#: a float64 gap within ROUNDING x eps64 x T is rounding: ~1000 roundings of the terms,
#: far more than the depth of any twin's vjp
ROUNDING = 1000.0
#: a float64 gap of PRECISION x eps32 x T or more (and at float32's level) is arithmetic
#: at float32's precision: 1e6 times above ROUNDING's bound, so no overlap
PRECISION = 1e-3

_SUMS = {"add", "sub", "add_any", "reduce_sum", "cumsum", "scatter-add", "scatter_add"}
#: primitives that call a sub-jaxpr: interpreted through, equation by equation
_CALLS = (
    "jit",
    "pjit",
    "closed_call",
    "core_call",
    "custom_jvp_call",
    "custom_vjp_call",
    "custom_vjp_call_jaxpr",
    "remat",
    "checkpoint",
)
_MOVES = {
    "reshape",
    "broadcast_in_dim",
    "transpose",
    "squeeze",
    "expand_dims",
    "slice",
    "dynamic_slice",
    "dynamic_update_slice",
    "gather",
    "concatenate",
    "pad",
    "rev",
    "select_n",
    "convert_element_type",
    "copy",
    "copy_p",
    "reduce_precision",
    "max",
    "reduce_max",
    "scatter",
    "real",
}
#: primitives whose magnitude rule is another primitive on the magnitudes
_AS = {"sub": jax.lax.add_p, "min": jax.lax.max_p, "reduce_min": jax.lax.reduce_max_p}


def _is_float(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _sub_jaxpr(params: dict[str, Any]) -> tuple[Any, Sequence[Any]] | None:
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        sub = params.get(key)
        if isinstance(sub, jcore.ClosedJaxpr):
            return sub.jaxpr, sub.consts
        if isinstance(sub, jcore.Jaxpr):
            return sub, ()
    return None


def _propagate(eqn: Any, vals: list[Any], mags: list[Any], outs: list[Any]) -> list[Any]:
    name = eqn.primitive.name
    prim, params = eqn.primitive, eqn.params
    # float operands replaced by their magnitudes; indices, predicates kept
    swapped = [m if _is_float(v) else v for v, m in zip(vals, mags, strict=True)]
    try:
        if name in ("neg", "abs"):
            got = mags[0]
        elif name in _AS:
            got = _AS[name].bind(*swapped, **params)
        elif name in _SUMS or name in _MOVES or name == "dot_general":
            got = prim.bind(*swapped, **params)
        elif name == "mul":
            got = prim.bind(*swapped, **params)
        elif name == "div":
            got = prim.bind(mags[0], jnp.abs(vals[1]), **params)
        else:
            return _first_order(prim, params, vals, mags, outs)
    except Exception:
        return [jnp.abs(o) if _is_float(o) else None for o in outs]
    got = list(got) if prim.multiple_results else [got]
    return [
        jnp.maximum(g, jnp.abs(o)) if _is_float(o) else None for g, o in zip(got, outs, strict=True)
    ]


def _first_order(prim: Any, params: dict, vals: list, mags: list, outs: list) -> list[Any]:
    """|f(a)| + |f'(a)| T_a, by a jvp of the primitive with the magnitudes as tangents."""
    where = [i for i, v in enumerate(vals) if _is_float(v)]
    absolute = [jnp.abs(o) if _is_float(o) else None for o in outs]
    if not where:
        return absolute

    def f(*floats):
        args = list(vals)
        for i, x in zip(where, floats, strict=True):
            args[i] = x
        out = prim.bind(*args, **params)
        return tuple(out) if prim.multiple_results else (out,)

    try:
        _, tangents = jax.jvp(f, tuple(vals[i] for i in where), tuple(mags[i] for i in where))
    except Exception:
        return absolute
    return [
        a + jnp.abs(t) if a is not None and _is_float(t) else a
        for a, t in zip(absolute, tangents, strict=True)
    ]


def _evaluate(jaxpr: Any, consts: Sequence[Any], args: Sequence[Any], arg_mags: Sequence[Any]):
    env: dict[Any, tuple[Any, Any]] = {}

    def read(v: Any) -> tuple[Any, Any]:
        if isinstance(v, jcore.Literal):
            val = v.val
            return val, (jnp.abs(jnp.asarray(val)) if _is_float(jnp.asarray(val)) else None)
        return env[v]

    for v, c in zip(jaxpr.constvars, consts, strict=True):
        c = jnp.asarray(c)
        env[v] = (c, jnp.abs(c) if _is_float(c) else None)
    for v, a, m in zip(jaxpr.invars, args, arg_mags, strict=True):
        env[v] = (a, m)
    for eqn in jaxpr.eqns:
        pairs = [read(v) for v in eqn.invars]
        vals = [p[0] for p in pairs]
        mags = [p[1] if p[1] is not None else p[0] for p in pairs]
        sub = _sub_jaxpr(eqn.params)
        if sub is not None and eqn.primitive.name in _CALLS:
            sub_jaxpr, sub_consts = sub
            n = len(sub_jaxpr.invars)
            outs = _evaluate(sub_jaxpr, sub_consts, vals[-n:], mags[-n:])
        else:
            out_vals = eqn.primitive.bind(*vals, **eqn.params)
            out_vals = list(out_vals) if eqn.primitive.multiple_results else [out_vals]
            outs = list(zip(out_vals, _propagate(eqn, vals, mags, out_vals), strict=True))
        for v, pair in zip(eqn.outvars, outs, strict=True):
            env[v] = pair
    return [read(v) for v in jaxpr.outvars]


def _magnitudes(closed: Any, args: Sequence[Any]) -> list[Any]:
    arrays = [jnp.asarray(a) for a in args]
    mags = [jnp.abs(a) if _is_float(a) else None for a in arrays]
    return [m for _, m in _evaluate(closed.jaxpr, closed.consts, arrays, mags)]


def magnitudes_of_jaxpr(closed: Any, args: Sequence[Any]) -> list[np.ndarray | None]:
    """Per output of ``closed`` (a ClosedJaxpr) at ``args``: the magnitude of the terms
    it was summed from (None for non-floating outputs). Call inside float64 scope.

    Runs op by op (each primitive a small program of its own); the twin's own rounding
    model runs compiled instead, once per signature (:func:`magnitudes_program`)."""
    return [
        None if m is None else np.asarray(m, dtype=np.float64) for m in _magnitudes(closed, args)
    ]


def magnitudes_program(program: Any) -> Any:
    """A body for :meth:`~oracle.pair.twin_side.TwinSide.program`: ``program``'s jaxpr
    (traced on the arguments' shapes) interpreted with the rounding model, so that the
    whole model compiles to one program per signature and is cached with the twin's
    other programs. Op by op, every primitive at every new shape was a compilation of
    its own (a run over ill-conditioned float32 inputs spent half its time in them)."""

    def body(jax_fn, layout, statics, *args):
        def f(*a):
            return program(jax_fn, layout, statics, *a)

        closed = jax.make_jaxpr(f)(*args)
        return _magnitudes(closed, jax.tree_util.tree_leaves(args))

    return body


def _compiled(twin: Any, which: str, program: Any, values, device: str, *extra):
    layout, g = twin.split(values, "float64", device)
    # compiled as the twin's own programs are: quickly when small, optimised when large
    small = sum(np.size(a) for a in g["diff"] + g["array"]) < SMALL_PROGRAM
    fn = twin.program(
        ("magnitudes", which, device, small),
        magnitudes_program(program),
        (0, 1, 2),
        options_for(small, device),
    )
    args = (tuple(g["diff"]), tuple(g["array"]), tuple(g["scalar"]), *extra)
    with jax.default_device(jax_device(device)):
        mags = twin.guard.call("twin", which, fn, twin.fn, layout, tuple(g["static"]), *args)
    return g, [None if m is None else np.asarray(m, dtype=np.float64) for m in mags]


def term_magnitudes(
    twin: Any, values: Sequence[Any], device: str, cotangents: Sequence[np.ndarray | None]
) -> list[np.ndarray | None]:
    """Per differentiated argument, the magnitude of the terms the twin's float64
    gradient is summed from (call inside float64 ``precision_scope``)."""
    cots = tuple(np.asarray(c, dtype=np.float64) for c in cotangents if c is not None)
    g, mags = _compiled(twin, "vjp", twin_vjp, values, device, cots)
    return mags[len(mags) - len(g["diff"]) :]


def output_magnitudes(twin: Any, values: Sequence[Any], device: str) -> list[np.ndarray | None]:
    """Per output leaf of the twin, the magnitude of the terms its float64 value is
    summed from (call inside float64 ``precision_scope``): outputs are judged with the
    same rounding model as gradients (an exact 0 against the twin's 2e-17, where the
    terms are of size 1, is rounding)."""
    return _compiled(twin, "forward", twin_forward, values, device)[1]


class OutputRounding:
    """The rounding model for outputs (:func:`oracle.judge.rounding.output_magnitudes`),
    computed at most once per example, and only when an output is off."""

    def __init__(self, twin: Any, values: Sequence[Any], device: str):
        self.twin, self.values, self.device = twin, values, device
        self._mags: list[np.ndarray | None] | None = None

    def terms(self, i: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """The size of the terms of output ``i``'s elements, in ``shape``; None when the
        model cannot run on the twin."""
        if self._mags is None:
            try:
                with precision_scope("float64", self.device):
                    self._mags = output_magnitudes(self.twin, self.values, self.device)
            except Exception:
                self._mags = []
        if i >= len(self._mags) or self._mags[i] is None:
            return None
        try:
            return np.broadcast_to(self._mags[i], shape)
        except ValueError:
            return None

    def within(self, i: int, actual64: np.ndarray, reference64: np.ndarray) -> bool:
        """Whether float64 ``actual64`` is within rounding of the reference everywhere:
        a gap of at most ``ROUNDING`` x eps x the size of the terms of each element."""
        a = np.asarray(actual64, dtype=np.float64)
        e = np.asarray(reference64, dtype=np.float64)
        terms = self.terms(i, e.shape)
        if terms is None or a.shape != e.shape:
            return False
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(e))):
            return False
        return bool(np.all(np.abs(a - e) <= ROUNDING * _EPS64 * terms))

    def within_float32(self, i: int, actual: np.ndarray, reference64: np.ndarray) -> bool:
        """Whether a float32 output is float32's rounding of its terms
        (:func:`float32_rounding_of_terms`): where the formula cancels (``1 + tanh(u)`` at
        ``tanh(u) = -1 + 1e-7``), float32 arithmetic is off by that much whatever the
        code, so a gap there is no finding even when torch's float64 forward, which would
        show it, is wrong too (computed in float32: a float64 finding of its own)."""
        terms = self.terms(i, np.shape(reference64))
        return float32_rounding_of_terms(actual, reference64, terms)


_EPS64 = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)
#: a float32 output or gradient within this many float32 roundings of the size of its
#: terms is rounding (the number of roundings of a short formula: the twin's allowance's 8)
FLOAT32_ROUNDINGS = 8.0


def float32_rounding_of_terms(actual: Any, reference64: Any, terms: Any) -> bool:
    """Every element of float32 ``actual`` within :data:`FLOAT32_ROUNDINGS` roundings in
    float32 of the size of the ``terms`` the float64 ``reference64`` is made of."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(reference64, dtype=np.float64)
    if terms is None or a.shape != e.shape:
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(e))):
        return False
    terms = np.broadcast_to(terms, e.shape)
    return bool(np.all(np.abs(a - e) <= FLOAT32_ROUNDINGS * _EPS32 * terms))
