r"""Float64 probes of both sides near one example: finite differences, kinks, noise.

Let :math:`\varphi(x) = \langle v, f(x)\rangle` with :math:`v` the example's cotangent.
:class:`Probe` evaluates both sides' :math:`\varphi` and gradients in float64 at points
near the example; :func:`directional_derivative` estimates a slope by central differences
with Richardson extrapolation; :func:`one_sided_gap` tells a kink (one-sided slopes
that differ by a gap that does not shrink with the step) from a smooth point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..pair.bridge import precision_scope
from .rounding import term_magnitudes

__all__ = [
    "Probe",
    "shift",
    "direction",
    "directional_derivative",
    "one_sided_gap",
    "coordinate_kinks",
    "rounding_noise",
    "agrees",
    "STEPS",
    "STEPS_NEAR_KINK",
]

_EPS = np.finfo(np.float64).eps


class Probe:
    """Float64 evaluations of both sides at points near one example."""

    def __init__(
        self,
        torch_side: Any,
        twin_side: Any,
        values: Sequence[Any],
        diff_pos: Sequence[int],
        cots: Sequence[np.ndarray | None],
        device: str,
    ):
        self.torch, self.twin = torch_side, twin_side
        self.values = list(values)
        self.diff_pos = list(diff_pos)
        self.cots = list(cots)
        self.device = device
        self.x = [np.asarray(values[i], dtype=np.float64) for i in diff_pos]

    def _at(self, xs: Sequence[np.ndarray]) -> list[Any]:
        vals = list(self.values)
        for i, x in zip(self.diff_pos, xs, strict=True):
            vals[i] = x
        return vals

    def grads(self, xs: Sequence[np.ndarray], cots: Sequence[np.ndarray | None] | None = None):
        """(torch's, twin's) float64 gradients at ``xs``; twin's is None with custom cots."""
        cots = self.cots if cots is None else cots
        with precision_scope("float64", self.device):
            t = self.torch.run(self._at(xs), "float64", self.device, cots).grads
            j = self.twin.run(self._at(xs), "float64", self.device, cots).grads
        return t, j

    def torch_grads(
        self, xs: Sequence[np.ndarray], cots: Sequence[np.ndarray | None], dtype: str = "float64"
    ):
        with precision_scope(dtype, self.device):
            return self.torch.run(self._at(xs), dtype, self.device, cots).grads

    def term_magnitudes(self, k: int) -> np.ndarray | None:
        """Per element of argument ``k``'s float64 gradient, the magnitude of the terms it
        is summed from (:mod:`oracle.judge.rounding`); None if the twin cannot be traced so."""
        try:
            with precision_scope("float64", self.device):
                mags = term_magnitudes(self.twin, self.values, self.device, self.cots)
        except Exception:
            return None
        return mags[k] if k < len(mags) else None

    def phi(self, xs: Sequence[np.ndarray], side: str) -> float:
        with precision_scope("float64", self.device):
            if side == "torch":
                return self.torch.phi(self._at(xs), self.device, self.cots)
            return self.twin.phi(self._at(xs), self.device, self.cots)


def shift(xs: Sequence[np.ndarray], k: int, u: np.ndarray, h: float) -> list[np.ndarray]:
    out = list(xs)
    out[k] = xs[k] + h * u
    return out


def direction(d: np.ndarray) -> np.ndarray:
    u = np.where(np.isfinite(d), d, 1.0)
    m = float(np.max(np.abs(u))) if u.size else 0.0
    return u / m if m > 0 else np.ones_like(u)


def _step(x: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)


STEPS = (1e-2, 1e-3, 1e-4, 1e-5)
#: next to a kink (moved 1e-6 off it), steps must stay well below the distance moved
STEPS_NEAR_KINK = (1e-7, 3e-8, 1e-8, 3e-9)


def rounding_noise(probe: Probe, phi, xs: Sequence[np.ndarray], k: int) -> float:
    """How much rounding can move ``phi`` at ``xs``. Measured by second differences at a
    step so small (1e-9 relative) that only rounding is left, and never taken below
    100 ulps of the example's largest term (its largest input or phi, times the largest
    cotangent): a saturated cross-entropy is a staircase of ulps of 36 around 1e-12,
    flat at any tiny step, and its slopes over larger steps are rounding too."""
    rng = np.random.default_rng(4)
    f0 = phi(xs)
    noise = 0.0
    for _ in range(3):
        u = rng.standard_normal(xs[k].shape) * (1 + np.abs(xs[k]))
        noise = max(noise, _second_difference(phi, xs, k, u, 1e-9, f0))
    inputs = max((float(np.max(np.abs(x))) for x in xs if x.size), default=0.0)
    cot = max(
        (float(np.max(np.abs(c))) for c in probe.cots if c is not None and c.size), default=0.0
    )
    return max(noise, 100 * _EPS * max(inputs * cot, abs(f0)))


def directional_derivative(
    phi,
    xs: Sequence[np.ndarray],
    k: int,
    u: np.ndarray,
    steps: Sequence[float] = STEPS,
    noise: float = 0.0,
) -> tuple[float, float]:
    """Central differences with Richardson extrapolation at several steps; returns the
    estimate whose error estimate (the change to the next step, and never less than
    what ``phi``'s rounding ``noise`` allows at that step) is smallest."""
    s = _step(xs[k])
    estimates = []
    for h in (step * s for step in steps):
        d1 = (phi(shift(xs, k, u, h)) - phi(shift(xs, k, u, -h))) / (2 * h)
        d2 = (phi(shift(xs, k, u, h / 2)) - phi(shift(xs, k, u, -h / 2))) / h
        estimates.append(((4 * d2 - d1) / 3, h))
    best, err = estimates[-1][0], float("inf")
    for (a, _), (b, h) in zip(estimates, estimates[1:], strict=False):
        e = max(abs(a - b), 4 * noise / h)
        if np.isfinite(e) and e < err:
            best, err = b, e
    return float(best), float(err)


def one_sided_gap(
    phi,
    xs: Sequence[np.ndarray],
    k: int,
    u: np.ndarray,
    noise: float = 0.0,
    scale: float | None = None,
    f0: float | None = None,
) -> tuple[bool, float, float]:
    """Whether ``xs`` sits on a kink along ``u``: (kink, D+, D-) at a small step
    (relative to ``scale``, by default the argument's largest magnitude; ``f0``:
    ``phi(xs)`` when known)."""
    s = scale if scale is not None else _step(xs[k])
    if f0 is None:
        f0 = phi(xs)

    def slopes(h: float) -> tuple[float, float]:
        return (phi(shift(xs, k, u, h)) - f0) / h, (f0 - phi(shift(xs, k, u, -h))) / h

    p_big, m_big = slopes(1e-4 * s)
    p, m = slopes(1e-6 * s)
    gap_big, gap = p_big - m_big, p - m
    floor = max(100 * _EPS * abs(f0), 10 * noise) / (1e-6 * s)
    tol = max(1e-6 * (abs(p) + abs(m)), floor) + 1e-300
    # at a smooth point the gap shrinks like h (here 100-fold); at a kink it stays
    kink = bool(np.isfinite(gap) and abs(gap) > tol and abs(gap) > 0.3 * abs(gap_big))
    if not kink and np.isfinite(gap) and abs(gap) > tol:
        # a second kink within the large step changes its gap (x at 0 on |x - round(x)|
        # with |x - t| bending at t = 6e-5): compare with a step ten times the small one
        # instead, where a smooth point's gap still shrinks tenfold
        p_mid, m_mid = slopes(1e-5 * s)
        kink = bool(abs(gap) > 0.3 * abs(p_mid - m_mid))
    return kink, p, m


def _second_difference(phi, xs, k: int, u: np.ndarray, h: float, f0: float) -> float:
    """Half the second difference of ``phi`` along ``u`` at step ``h`` (at a step this
    small, rounding; never below 100 ulps of ``phi``; ``f0``: ``phi(xs)``)."""
    second = phi(shift(xs, k, u, h)) + phi(shift(xs, k, u, -h)) - 2 * f0
    return max(abs(second) / 2, 100 * _EPS * abs(f0))


def coordinate_kinks(
    phi, xs, k, tk, jk, noise: float = 0.0, limit: int = 8
) -> list[tuple[tuple[int, ...], float, float]]:
    """The coordinates (of the ``limit`` where the claims differ most) on a kink, with
    their one-sided derivatives (low, high)."""
    d = np.abs(np.nan_to_num(tk - jk, nan=np.inf, posinf=np.inf, neginf=np.inf))
    order = np.argsort(-d.reshape(-1), kind="stable")[:limit]
    out = []
    f0 = phi(xs) if order.size and d.reshape(-1)[order[0]] != 0 else 0.0
    for flat in order:
        if d.reshape(-1)[flat] == 0:
            break
        e = np.zeros(tk.shape)
        e.reshape(-1)[flat] = 1.0
        # steps relative to this coordinate (0 next to a 22.5 elsewhere: steps of 1e-6,
        # not 2e-5, which would reach a second kink 6e-5 away)
        at = float(np.abs(np.asarray(xs[k], dtype=np.float64).reshape(-1)[flat]))
        scale = max(1.0, at)
        # the noise along this coordinate alone: measured along random directions, it
        # also holds the bends of other coordinates sitting on kinks (eight elements at
        # half-integers of |x - round(x)|), enough to hide this one's
        local = _second_difference(phi, xs, k, e, 1e-9 * scale, f0)
        kink, p, m = one_sided_gap(phi, xs, k, e, min(noise, local), scale=scale, f0=f0)
        if kink:
            idx = tuple(int(i) for i in np.unravel_index(flat, tk.shape))
            out.append((idx, min(p, m), max(p, m)))
    return out


def agrees(estimate: float, err: float, claim: float) -> bool:
    if not np.isfinite(claim) or not np.isfinite(estimate):
        return False
    tol = 20 * err + 1e-5 * max(abs(estimate), abs(claim)) + 1e-12
    return abs(estimate - claim) <= tol
