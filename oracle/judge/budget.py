r"""The error budget: how low-precision results are judged (bfloat16, float16, autocast).

No single tolerance fits a kernel in bfloat16: what a correct implementation may be off
by depends on its formula, its reductions and the conditioning of the function. So, as
FlashAttention's tests do, the oracle compares *errors* instead of values. For each
output and each gradient, with :math:`t` torch's result, :math:`n` the twin's evaluated
by JAX in the same low dtype (the naive implementation: every operation rounded to the
dtype, as plain code would be) and :math:`r` the twin's in float64 (the reference, on
the same rounded inputs):

.. math::

    e_t = \max_i |t_i - r_i|, \qquad e_n = \max_i |n_i - r_i|

and torch passes when every element satisfies

.. math::

    |t_i - r_i| \le F \max(e_n, e_x) + U \cdot \mathrm{ulp}(m_i)

* :data:`FACTOR` :math:`F = 2`, FlashAttention's factor;
* :math:`e_x`: how far a plain implementation of the twin's formula may land from the
  reference, measured only when the rest of the budget is exceeded: the largest
  distance from :math:`r` of a few float64 samples, the twin at inputs moved by one
  rounding of the dtype (relative :math:`\pm\epsilon`: a branch that rounding flips,
  an input within one ulp of a hinge's margin) and the twin's formula with every
  operation's result rounded at random (:mod:`oracle.judge.jitter`: where an
  intermediate is ill-conditioned, ``1 - tanh(x)**2`` near saturation, or overflows,
  ``exp(p) / exp(t)`` in float16, which XLA rewrites to ``exp(p - t)``, one naive sample
  can be lucky). A reduction is rounded once, as a float32 accumulator is, so an
  accumulator kept in the low dtype is not excused;
* the floor, :data:`FLOOR_ULPS` :math:`U = 2` units in the last place of the dtype at
  the element's own magnitude :math:`m_i = |r_i|` (the spacing of the dtype's numbers
  there). It keeps a lucky naive result (exact on a one-element loss) from turning
  torch's one rounding into a finding.

Example (float16, :math:`\epsilon = 2^{-10}`): a bias gradient element of 2.9 sits where
float16's numbers are :math:`2 \cdot 2^{-10} = 0.00195` apart, a floor of 0.0039; with the
naive float16 error :math:`e_n = 0.0023`, torch may be off by up to
:math:`2 \times 0.0023 + 0.0039 = 0.0085`. A kernel off by 0.0141 (6.1x the naive
error) is a finding.

NaN and infinity: where the naive result is not finite, nothing bounds torch there
(:math:`e_n = \infty`); torch's NaN or infinity where the naive result and the
reference are finite is beyond any budget. This module knows numpy and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = [
    "FACTOR",
    "FLOOR_ULPS",
    "EPS",
    "TINY",
    "LARGEST",
    "Budget",
    "ulp",
    "error_budget",
    "budget_sentence",
]

#: torch may be off by this many times the naive implementation's error (FlashAttention's
#: ``dq_error <= 2 * dq_pt_error``)
FACTOR = 2.0
#: plus this many units in the last place of the dtype at the element's scale
FLOOR_ULPS = 2.0
#: the gap between 1 and the next number of each dtype
EPS = {
    "bfloat16": float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps),  # 2**-7
    "float16": float(np.finfo(np.float16).eps),  # 2**-10
    "float32": float(np.finfo(np.float32).eps),
    "float64": float(np.finfo(np.float64).eps),
}
#: the smallest subnormal of each dtype (the spacing of its numbers near 0)
TINY = {
    "bfloat16": float(ml_dtypes.finfo(ml_dtypes.bfloat16).smallest_subnormal),
    "float16": float(np.finfo(np.float16).smallest_subnormal),
    "float32": float(np.finfo(np.float32).smallest_subnormal),
    "float64": float(np.finfo(np.float64).smallest_subnormal),
}


#: the largest finite number of each dtype
LARGEST = {
    "bfloat16": float(ml_dtypes.finfo(ml_dtypes.bfloat16).max),
    "float16": float(np.finfo(np.float16).max),
    "float32": float(np.finfo(np.float32).max),
    "float64": float(np.finfo(np.float64).max),
}


def ulp(m: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype``'s numbers at magnitude ``m`` (its subnormal spacing near 0)."""
    m = np.abs(np.asarray(m, dtype=np.float64))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.where(m > 0, m, 1.0)))
    return np.maximum(np.where(m > 0, EPS[dtype] * np.exp2(exponent), 0.0), TINY[dtype])


@dataclass(frozen=True)
class Budget:
    """One tensor judged by the budget."""

    ok: bool
    #: torch's largest error against the float64 reference
    error: float
    #: the naive implementation's (the twin in the same dtype)
    naive_error: float
    #: how far the samples of rounding land from the reference (0: not measured)
    input_error: float
    #: the floor at the worst element
    floor: float
    #: what was allowed at the worst element (F x max(naive, input) + floor)
    allowed: float
    worst_index: tuple[int, ...]
    actual_at_worst: float
    expected_at_worst: float
    #: torch's value is NaN or infinite where the naive result and the reference are not
    nonfinite: bool
    mismatched: int
    total: int

    @property
    def ratio(self) -> float:
        """torch's error over the naive one (inf when the naive one is 0)."""
        if self.naive_error > 0:
            return self.error / self.naive_error
        return float("inf") if self.error > 0 else 1.0


def _err(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """|x - r| where the reference is finite (inf where x is not, 0 where r is not)."""
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.where(np.isfinite(x), np.abs(x - r), np.inf)
    return np.where(np.isfinite(r), e, 0.0)


def error_budget(
    actual: np.ndarray,
    naive: np.ndarray,
    reference: np.ndarray,
    dtype: str,
    *,
    input_error: float = 0.0,
) -> Budget:
    """Judge torch's ``actual`` by the budget (see the module's docstring).

    ``dtype``: the low dtype whose ulps make the floor; ``input_error``: how far samples
    of rounding land from the reference (:math:`e_x`, 0: not measured)."""
    t, n, r = (np.asarray(x, dtype=np.float64) for x in (actual, naive, reference))
    if t.shape != r.shape or n.shape != r.shape:
        raise ValueError(f"error_budget: shapes differ: {t.shape}, {n.shape}, {r.shape}")
    if not t.size:
        return Budget(True, 0.0, 0.0, 0.0, 0.0, 0.0, (), 0.0, 0.0, False, 0, 0)
    et, en = _err(t, r), _err(n, r)
    # where the naive result is not finite, torch's is not judged either
    et = np.where(np.isfinite(n) | ~np.isfinite(r), et, 0.0)
    e_t, e_n = float(et.max()), float(en.max())
    scale = np.abs(np.where(np.isfinite(r), r, 0.0))
    floor = FLOOR_ULPS * ulp(scale, dtype)
    allowed = FACTOR * max(e_n, input_error) + floor
    bad = et > allowed
    nonfinite = bool(np.any(~np.isfinite(t) & np.isfinite(n) & np.isfinite(r)))
    excess = np.where(bad, et - allowed, -np.inf) if bad.any() else et
    flat = int(np.argmax(excess))
    return Budget(
        ok=not bool(bad.any()),
        error=e_t,
        naive_error=e_n,
        input_error=float(input_error),
        floor=float(floor.reshape(-1)[flat]),
        allowed=float(allowed.reshape(-1)[flat]),
        worst_index=tuple(int(i) for i in np.unravel_index(flat, t.shape)),
        actual_at_worst=float(t.reshape(-1)[flat]),
        expected_at_worst=float(r.reshape(-1)[flat]),
        nonfinite=nonfinite,
        mismatched=int(bad.sum()),
        total=int(t.size),
    )


def budget_sentence(b: Budget, dtype: str) -> str:
    """``torch's error 0.0141 is 6.1x the naive float16 error 0.0023 (allowed: 2 x that
    + a floor of 0.0039, 2 ulps of float16 at the element's scale)``."""
    if b.nonfinite:
        head = (
            f"torch's value is {b.actual_at_worst} at index {b.worst_index} where the naive "
            f"{dtype} result and the float64 reference ({b.expected_at_worst:.6g}) are finite"
        )
    elif b.naive_error > 0:
        head = (
            f"torch's error {b.error:.3g} is {b.ratio:.1f}x the naive {dtype} error "
            f"{b.naive_error:.3g}"
        )
    else:
        head = f"torch's error {b.error:.3g}, where the naive {dtype} result is exact"
    moved = (
        f", or the spread {b.input_error:.3g} of the twin's formula under random rounding"
        if b.input_error > b.naive_error
        else ""
    )
    return (
        f"{head} (allowed: {FACTOR:g} x that{moved}, plus a floor of {b.floor:.3g}, "
        f"{FLOOR_ULPS:g} ulps of {dtype} at the element's scale; worst at index "
        f"{b.worst_index}: {b.actual_at_worst:.6g} vs {b.expected_at_worst:.6g})"
    )
