r"""What a gradient disagreement looks like, once a side is blamed.

nonfinite, ignores_grad_output (torch's backward is not linear in the cotangent), zero,
sign_flipped, scaled (with the factor), transposed, mismatch; and, against the rounding
model (:mod:`oracle.judge.rounding`), precision. A relation claimed for every element
(scaled, sign_flipped, transposed) must also hold at three random points around the
example: one element alone cannot tell a factor of 2 from any other error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .findings import Verdict
from .probe import Probe
from .rounding import PRECISION, ROUNDING
from .tolerance import Tolerance, compare

__all__ = ["diagnose", "RoundingView", "rounding_view", "precision_verdict", "close64", "same"]

#: "the same gradient" in float64 for diagnoses (ratios, transposes, linearity): bugs are
#: off by O(1), float64 noise of correct code many orders below
TOL64 = Tolerance(rtol=1e-7, atol=1e-7, k=None)
_EPS = np.finfo(np.float64).eps
_EPS32 = float(np.finfo(np.float32).eps)
#: how many times torch's backward is called again, with the same inputs and cotangent,
#: to tell a nondeterministic backward from a wrong one (once in the dtype that disagreed,
#: for every disagreement; the rest in float64, before torch is blamed)
_REPEATS = 4


def close64(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return False
    return compare(a, b, TOL64).ok


def _where(mask: np.ndarray) -> str:
    idx = np.argwhere(mask)
    return str(tuple(int(i) for i in idx[0])) if idx.size else "()"


def _elsewhere(probe: Probe, k: int, xs: Sequence[np.ndarray], who: str, points: int = 3):
    """(blamed side's, other side's) gradients at a few random points around ``xs``:
    a one-element example cannot tell "scaled" from any other error on its own."""
    rng = np.random.default_rng(3)
    for _ in range(points):
        moved = [x + 0.25 * (1 + np.abs(x)) * rng.standard_normal(x.shape) for x in xs]
        try:
            t, j = probe.grads(moved)
        except Exception:
            return
        if t[k] is None or not (np.all(np.isfinite(t[k])) and np.all(np.isfinite(j[k]))):
            return
        yield (t[k], j[k]) if who == "torch" else (j[k], t[k])


@dataclass(frozen=True)
class RoundingView:
    """A float64 gap measured against the rounding model, element by element."""

    #: every element agrees to rounding of its terms (or to the diagnosis tolerance)
    rounding_only: bool
    #: some element is off at float32's level of its terms, none by more than that
    precision_only: bool
    #: some element is off at float32's level (others may be off by more)
    precision_somewhere: bool
    #: the worst element's gap over eps32 x its terms
    worst_level: float
    worst_index: tuple[int, ...]


def rounding_view(t: np.ndarray, r: np.ndarray, terms: np.ndarray | None) -> RoundingView:
    """Judge the gap between ``t`` and ``r`` against the magnitude ``terms`` of the terms
    each element is summed from (:mod:`oracle.judge.rounding`)."""
    t, r = np.asarray(t, np.float64), np.asarray(r, np.float64)
    finite = np.isfinite(t) & np.isfinite(r)
    if terms is None or not finite.all() or terms.shape != t.shape:
        return RoundingView(False, False, False, float("nan"), ())
    gap = np.abs(t - r)
    terms = np.maximum(terms, np.maximum(np.abs(t), np.abs(r)))
    close = compare(t, r, TOL64).ok
    rounding = gap <= ROUNDING * _EPS * terms
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(terms > 0, gap / (_EPS32 * terms), np.where(gap > 0, np.inf, 0.0))
    worst = int(np.argmax(level)) if level.size else 0
    worst_level = float(level.reshape(-1)[worst]) if level.size else 0.0
    at_precision = (level >= PRECISION) & (level <= 100.0)
    beyond = level > 100.0
    return RoundingView(
        rounding_only=bool(rounding.all()) or (close and not at_precision.any()),
        precision_only=bool(at_precision.any()) and not bool(beyond.any()),
        precision_somewhere=bool(at_precision.any()),
        worst_level=worst_level,
        worst_index=tuple(int(i) for i in np.unravel_index(worst, t.shape)) if t.size else (),
    )


def precision_verdict(arg: int, view: RoundingView) -> Verdict:
    return Verdict(
        "torch",
        "precision",
        f"torch computes the gradient of argument {arg} at a lower precision than float64: "
        f"off by {view.worst_level:.3g} x float32's epsilon of the terms it is summed from "
        f"(at index {view.worst_index}), where float64 arithmetic is good to about "
        f"{ROUNDING * _EPS / _EPS32:.1g} of that (a float32 constant or buffer, "
        "torch.Tensor(ndarray), or a .float() inside the backward?)",
    )


def _ratio(a: np.ndarray, r: np.ndarray) -> float | None:
    """The constant c with a = c r, if there is one."""
    rr = float(np.vdot(r, r))
    if rr == 0:
        return None
    c = float(np.vdot(a, r)) / rr
    if float(np.linalg.norm(a - c * r)) <= 1e-6 * max(float(np.linalg.norm(a)), 1e-300):
        return c
    return None


def _linearity(
    probe: Probe, k: int, xs: Sequence[np.ndarray], a: np.ndarray, arg: int
) -> Verdict | None:
    """How torch's backward depends on grad_output: a vjp is linear in it,
    ``g(2v) = 2 g(v)`` and ``g(v + w) = g(v) + g(w)``."""
    rng = np.random.default_rng(1)
    w = [None if c is None else rng.standard_normal(c.shape) for c in probe.cots]
    scaled = [None if c is None else 2.0 * c for c in probe.cots]
    both = [None if c is None else c + d for c, d in zip(probe.cots, w, strict=True)]
    zero = [None if c is None else np.zeros_like(c) for c in probe.cots]
    g2, gw, gvw, g0 = (probe.torch_grads(xs, c)[k] for c in (scaled, w, both, zero))
    if g2 is None or gw is None or gvw is None or g0 is None:
        return None
    if close64(g2, 2.0 * a) and close64(gvw, a + gw):
        return None
    if _rounding_only(probe, k, [g2 - 2.0 * a, gvw - a - gw]):
        return None  # no evidence beyond rounding: the other diagnoses judge the gap
    if close64(g2, a) and close64(gw, a):
        return Verdict(
            "torch",
            "ignores_grad_output",
            f"torch's backward for argument {arg} ignores grad_output (the same gradient for "
            "v, 2v and a random w): it returns the local derivative without multiplying by "
            "grad_output",
        )
    affine = close64(g2 - g0, 2.0 * (a - g0)) and close64(gvw - g0, (a - g0) + (gw - g0))
    why = (
        "adds a term that does not depend on grad_output (backward(grad_output=0) is not 0)"
        if affine and np.any(g0 != 0)
        else "is not linear in grad_output (doubling the incoming gradient does not double it)"
    )
    return Verdict(
        "torch",
        "not_linear_in_grad_output",
        f"torch's backward for argument {arg} {why}",
    )


#: a departure from linearity within this many float32 roundings of the terms a gradient
#: is summed from is rounding (a fused kernel that computes in float32 inside a float64
#: call; cancellation that makes a gradient of 1e-5 from terms of size 1)
_LINEARITY_ROUNDINGS = 1000.0


def _rounding_only(probe: Probe, k: int, departures: Sequence[np.ndarray]) -> bool:
    """Whether every departure from linearity is within float32 rounding of the terms
    of the twin's gradient (:mod:`oracle.judge.rounding`; the three cotangents v, 2v and
    v + w have terms of the same size, hence the factor 3)."""
    terms = probe.term_magnitudes(k)
    if terms is None:
        return False
    bound = _LINEARITY_ROUNDINGS * _EPS32 * 3.0 * np.asarray(terms, dtype=np.float64)
    return all(d.shape == bound.shape and bool(np.all(np.abs(d) <= bound)) for d in departures)


def _nondeterministic(
    probe: Probe, k: int, xs: Sequence[np.ndarray], a: np.ndarray | None, arg: int, repeats: int
) -> Verdict | None:
    """The same backward, the same inputs and grad_output, called again: any change is
    nondeterminism (random numbers, state kept between calls), whatever else is wrong."""
    for _ in range(repeats):
        g = probe.torch_grads(xs, probe.cots)[k]
        if (g is None) != (a is None) or (g is not None and not same(g, a)):
            return Verdict(
                "torch",
                "nondeterministic",
                f"torch's backward for argument {arg} gives different answers when called "
                "again on the same inputs and grad_output: random numbers or state kept "
                "between calls in the backward",
            )
    return None


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same call twice gives the same answer (up to a few ulps: a reduction order)."""
    if a.shape != b.shape:
        return False
    ulps = 64 * float(np.finfo(a.dtype if a.dtype.kind == "f" else np.float64).eps)
    return compare(a, b, Tolerance(ulps, ulps, None)).ok


def diagnose(
    probe: Probe, k: int, xs: Sequence[np.ndarray], actual: np.ndarray, ref: np.ndarray, who: str
) -> Verdict:
    """Classify how ``actual`` (the blamed side's gradient) differs from ``ref``."""
    arg = probe.diff_pos[k]
    a, r = np.asarray(actual, np.float64), np.asarray(ref, np.float64)
    side = "torch's" if who == "torch" else "the twin's"
    blame = who
    bad_nf = np.isfinite(a) != np.isfinite(r)
    if bad_nf.any():
        at = _where(bad_nf)
        return Verdict(
            blame,
            "nonfinite",
            f"{side} gradient of argument {arg} is {'not finite' if not np.isfinite(a[bad_nf]).all() else 'finite'}"
            f" at index {at} where the other side's is "
            f"{'finite' if np.isfinite(r[bad_nf]).all() else 'not'}: an overflow or "
            "0/0 in an intermediate (e.g. exp(x)/(1+exp(x)) for large x)",
        )
    if who == "torch":
        noisy = _nondeterministic(probe, k, xs, a, arg, _REPEATS - 1)
        if noisy is not None:
            return noisy
        linear = _linearity(probe, k, xs, a, arg)
        if linear is not None:
            return linear
    tol = compare(a, r, TOL64)
    off = np.abs(a - r) > (
        TOL64.rtol * np.abs(r) + TOL64.atol * max(float(np.max(np.abs(r))) if r.size else 0, 1e-300)
    )
    if off.any() and np.all(a[off] == 0):
        return Verdict(
            blame,
            "zero",
            f"{side} gradient of argument {arg} is zero on {int(off.sum())} of {a.size} "
            f"elements where the reference is not (first at index {_where(off)})",
        )
    c = _ratio(a, r)
    if c is not None and abs(c - 1) > 1e-6:
        # one element alone fits any ratio: the same constant must hold on at least three
        # nonzero elements, counting those at two or more points around the example
        pairs = [(a2, r2) for a2, r2 in _elsewhere(probe, k, xs, who) if np.any(r2)]
        elsewhere = [_ratio(a2, r2) for a2, r2 in pairs]
        support = int(np.count_nonzero(r)) + sum(int(np.count_nonzero(r2)) for _, r2 in pairs)
        if (
            len(elsewhere) >= 2
            and support >= 3
            and all(c2 is not None and abs(c2 - c) <= 1e-6 * abs(c) for c2 in elsewhere)
        ):
            if abs(c + 1) < 1e-6:
                return Verdict(
                    blame,
                    "sign_flipped",
                    f"{side} gradient of argument {arg} is the reference with its sign "
                    "flipped on every element",
                )
            factor = float(f"{c:.6g}")
            return Verdict(
                blame,
                "scaled",
                f"{side} gradient of argument {arg} is {factor:g} x the reference on every element",
                factor=factor,
            )
    if a.ndim >= 2 and a.shape[-1] == a.shape[-2] >= 2 and close64(a, np.swapaxes(r, -1, -2)):
        pairs = list(_elsewhere(probe, k, xs, who))
        if len(pairs) >= 2 and all(close64(a2, np.swapaxes(r2, -1, -2)) for a2, r2 in pairs):
            return Verdict(
                blame,
                "transposed",
                f"{side} gradient of argument {arg} is the transpose of the reference "
                "(a missing or extra .T / .mT in the backward)",
            )
    return Verdict(
        blame,
        "mismatch",
        f"{side} gradient of argument {arg} differs from the reference on "
        f"{tol.mismatched} of {tol.total} elements (worst at index {tol.worst_index}: "
        f"{tol.actual_at_worst:.6g} vs {tol.expected_at_worst:.6g})",
    )


# --- verdicts on a single example's outputs and calls (no re-evaluation needed) ---------
