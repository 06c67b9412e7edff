r"""The twin's formula in float64 with every operation rounded at random to a low dtype's
precision: how far a plain implementation of that formula may land from the reference.

The naive implementation (the twin run by JAX in bfloat16) is one sample of its rounding
errors, and torch's formula is another formula: where a result is ill-conditioned in an
intermediate (``1 - tanh(x)**2`` from a ``tanh`` already rounded near 1: half its digits
gone), one lucky sample would make every other implementation look wrong. So the budget
also allows the spread of a few more samples: the twin's vjp (its jaxpr) evaluated in
float64, each floating result of each operation that computes (not those that move data)
moved up or down at random by half the spacing of the low dtype's numbers at its
magnitude (:math:`\epsilon/2` relative; half the smallest subnormal near 0, where
float16 underflows), as a rounding to nearest in the low dtype could. A reduction is one operation: its result is rounded once, as a
float32 accumulator does, so an accumulator kept in the low dtype is not excused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from ..pair.twin_side import twin_vjp
from .rounding import _CALLS, _MOVES, _is_float, _sub_jaxpr

__all__ = ["jittered"]

#: samples of the random rounding
DRAWS = 3
_EXACT = _MOVES | {"neg", "abs", "sign", "stop_gradient", "min", "reduce_min", "select_n"}


def _rounded(o: Any, rng, eps: float, tiny: float, largest: float, nearest: bool = False) -> Any:
    """``o`` moved by half the spacing of the low dtype's numbers at its magnitude, up or
    down at random: a rounding's error, relative for normal numbers (eps/2), absolute
    (half the smallest subnormal) near 0, where float16 loses digits to underflow; beyond
    the dtype's largest number, infinity (float16 overflows past 65504); below its
    smallest subnormal, one of its two neighbours, 0 or that subnormal: the nearest one
    when ``nearest`` (as float16 itself rounds: exp(-20) to 0, and exp(-20) / exp(-20) is
    0/0), at random otherwise (float16 flushes exp(-18) to 0, and a formula dividing by
    it overflows)."""
    m = jnp.abs(o)
    exponent = jnp.floor(jnp.log2(jnp.where(m > 0, m, 1.0)))
    # 0 rounds to itself
    spacing = jnp.where(m > 0, jnp.maximum(eps * jnp.exp2(exponent), tiny), 0.0)
    up = rng.choice([-1.0, 1.0], size=np.shape(o))
    moved = o + 0.5 * spacing * up
    keep = (m >= 0.5 * tiny) if nearest else (up > 0)
    moved = jnp.where((m > 0) & (m < tiny), jnp.sign(o) * tiny * keep, moved)
    return jnp.where(m > largest, jnp.sign(o) * jnp.inf, moved)


def _evaluate(
    jaxpr: Any, consts: Sequence[Any], args: Sequence[Any], rng, limits: tuple, nearest=False
):
    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts, strict=True):
        env[v] = jnp.asarray(c)
    for v, a in zip(jaxpr.invars, args, strict=True):
        env[v] = a
    for eqn in jaxpr.eqns:
        vals = [read(v) for v in eqn.invars]
        sub = _sub_jaxpr(eqn.params)
        if sub is not None and eqn.primitive.name in _CALLS:
            sub_jaxpr, sub_consts = sub
            n = len(sub_jaxpr.invars)
            outs = _evaluate(sub_jaxpr, sub_consts, vals[-n:], rng, limits, nearest)
        else:
            outs = eqn.primitive.bind(*vals, **eqn.params)
            outs = list(outs) if eqn.primitive.multiple_results else [outs]
            if eqn.primitive.name not in _EXACT:
                outs = [_rounded(o, rng, *limits, nearest) if _is_float(o) else o for o in outs]
        for v, o in zip(eqn.outvars, outs, strict=True):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def jittered(
    twin: Any,
    values: Sequence[Any],
    device: str,
    cotangents: Sequence[np.ndarray | None],
    limits: tuple[float, float, float],
    draws: int = DRAWS,
) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """``draws`` samples of (outputs, gradients) of the twin's vjp in float64 with every
    operation's result rounded at random (``limits``: the low dtype's epsilon, smallest
    subnormal and largest number; call inside float64 ``precision_scope``)."""
    layout, g = twin.split(values, "float64", device)
    cots = tuple(np.asarray(c, dtype=np.float64) for c in cotangents if c is not None)
    statics = tuple(g["static"])

    def vjp(diff, arrays, scalars, cts):
        return twin_vjp(twin.fn, layout, statics, diff, arrays, scalars, cts)

    args = (tuple(g["diff"]), tuple(g["array"]), tuple(g["scalar"]), cots)
    closed = twin.guard.call("twin", "vjp", jax.make_jaxpr(vjp), *args)
    flat = [jnp.asarray(a) for a in jax.tree_util.tree_leaves(args)]
    rng = np.random.default_rng(7)
    samples = []
    for draw in range(draws):
        # the first sample underflows as the dtype rounds (to the nearest neighbour); the
        # others at random
        outs = twin.guard.call(
            "twin", "vjp", _evaluate, closed.jaxpr, closed.consts, flat, rng, limits, draw == 0
        )
        outs = [np.asarray(o, dtype=np.float64) for o in outs]
        split = len(outs) - len(g["diff"])
        samples.append((outs[:split], outs[split:]))
    return samples
