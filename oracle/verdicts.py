r"""Verdicts on a gradient disagreement: kink or bug, who is to blame, what it looks like.

Everything here runs in float64 at the example's point and is paid only for findings.
Let :math:`\varphi(x) = \langle v, f(x)\rangle` with :math:`v` the example's cotangent;
torch and the twin claim its gradient :math:`g_t`, :math:`g_j` for argument :math:`k`.

1. **Precision.** If :math:`g_t \approx g_j` in float64, the float32 disagreement is
   rounding that float32 cannot avoid (dropped), unless torch overflows to NaN/inf where
   the twin stays finite (blamed on torch, ``nonfinite``).
2. **Kink.** Along a coordinate :math:`e` where the claims differ (the 8 where they
   differ most), the one-sided slopes :math:`D_\pm = \pm(\varphi(x \pm he) - \varphi(x))/h`
   differ by a gap that does not shrink with :math:`h` exactly when :math:`x` sits on
   a kink. If torch and the twin agree again after a random perturbation of the input
   by 1e-6, the finding is ``blame="kink"``: both conventions are valid there (the
   values at the kink are not judged: autodiff through a composite function need not
   return a subgradient there). If they still disagree, there is a real bug next to
   the kink, judged at the perturbed point.
3. **Blame.** Central differences with Richardson extrapolation, over several steps
   (the one with the smallest error estimate wins), of both forwards, along :math:`u`
   and two random directions on the elements where the claims differ. The side whose
   directional derivatives the estimate contradicts is blamed; ``unknown`` when it
   contradicts both. When it contradicts neither (both claims match it to 1e-5 along
   every direction where they differ), the elementwise gap was rounding and is dropped.
4. **Diagnosis.** nonfinite, ignores_grad_output (torch's backward is not linear in
   the cotangent), zero, sign_flipped, scaled (with the factor), transposed, mismatch.
   A relation claimed for every element (scaled, sign_flipped, transposed) must also
   hold at three random points around the example: one element alone cannot tell a
   factor of 2 from any other error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bridge import precision_scope
from .findings import Verdict
from .rounding import PRECISION, ROUNDING
from .tolerance import Tolerance, compare, forward_tolerance

__all__ = [
    "Probe",
    "Verdict",
    "judge_gradient",
    "directional_derivative",
    "one_sided_gap",
    "diagnose",
]

#: "the same gradient" in float64 for diagnoses (ratios, transposes, linearity): bugs are
#: off by O(1), float64 noise of correct code many orders below
_TOL64 = Tolerance(rtol=1e-7, atol=1e-7, k=None)
_EPS = np.finfo(np.float64).eps
_EPS32 = float(np.finfo(np.float32).eps)
#: how many times torch's backward is called again, with the same inputs and cotangent,
#: to tell a nondeterministic backward from a wrong one (once in the dtype that disagreed,
#: for every disagreement; the rest in float64, before torch is blamed)
_REPEATS = 4


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
        is summed from (:mod:`oracle.rounding`); None if the twin cannot be traced so."""
        try:
            with precision_scope("float64", self.device):
                mags = self.twin.term_magnitudes(self.values, self.device, self.cots)
        except Exception:
            return None
        return mags[k] if k < len(mags) else None

    def phi(self, xs: Sequence[np.ndarray], side: str) -> float:
        with precision_scope("float64", self.device):
            if side == "torch":
                return self.torch.phi(self._at(xs), self.device, self.cots)
            return self.twin.phi(self._at(xs), self.device, self.cots)


def _shift(xs: Sequence[np.ndarray], k: int, u: np.ndarray, h: float) -> list[np.ndarray]:
    out = list(xs)
    out[k] = xs[k] + h * u
    return out


def _direction(d: np.ndarray) -> np.ndarray:
    u = np.where(np.isfinite(d), d, 1.0)
    m = float(np.max(np.abs(u))) if u.size else 0.0
    return u / m if m > 0 else np.ones_like(u)


def _step(x: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)


_STEPS = (1e-2, 1e-3, 1e-4, 1e-5)
#: next to a kink (moved 1e-6 off it), steps must stay well below the distance moved
_STEPS_NEAR_KINK = (1e-7, 3e-8, 1e-8, 3e-9)


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
        second = phi(_shift(xs, k, u, 1e-9)) + phi(_shift(xs, k, u, -1e-9)) - 2 * f0
        noise = max(noise, abs(second) / 2)
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
    steps: Sequence[float] = _STEPS,
    noise: float = 0.0,
) -> tuple[float, float]:
    """Central differences with Richardson extrapolation at several steps; returns the
    estimate whose error estimate (the change to the next step, and never less than
    what ``phi``'s rounding ``noise`` allows at that step) is smallest."""
    s = _step(xs[k])
    estimates = []
    for h in (step * s for step in steps):
        d1 = (phi(_shift(xs, k, u, h)) - phi(_shift(xs, k, u, -h))) / (2 * h)
        d2 = (phi(_shift(xs, k, u, h / 2)) - phi(_shift(xs, k, u, -h / 2))) / h
        estimates.append(((4 * d2 - d1) / 3, h))
    best, err = estimates[-1][0], float("inf")
    for (a, _), (b, h) in zip(estimates, estimates[1:], strict=False):
        e = max(abs(a - b), 4 * noise / h)
        if np.isfinite(e) and e < err:
            best, err = b, e
    return float(best), float(err)


def one_sided_gap(
    phi, xs: Sequence[np.ndarray], k: int, u: np.ndarray, noise: float = 0.0
) -> tuple[bool, float, float]:
    """Whether ``xs`` sits on a kink along ``u``: (kink, D+, D-) at a small step."""
    s = _step(xs[k])
    f0 = phi(xs)

    def slopes(h: float) -> tuple[float, float]:
        return (phi(_shift(xs, k, u, h)) - f0) / h, (f0 - phi(_shift(xs, k, u, -h))) / h

    p_big, m_big = slopes(1e-4 * s)
    p, m = slopes(1e-6 * s)
    gap_big, gap = p_big - m_big, p - m
    floor = max(100 * _EPS * abs(f0), 10 * noise) / (1e-6 * s)
    tol = max(1e-6 * (abs(p) + abs(m)), floor) + 1e-300
    # at a smooth point the gap shrinks like h (here 100-fold); at a kink it stays
    kink = bool(np.isfinite(gap) and abs(gap) > tol and abs(gap) > 0.3 * abs(gap_big))
    return kink, p, m


def _coordinate_kinks(
    phi, xs, k, tk, jk, noise: float = 0.0, limit: int = 8
) -> list[tuple[tuple[int, ...], float, float]]:
    """The coordinates (of the ``limit`` where the claims differ most) on a kink, with
    their one-sided derivatives (low, high)."""
    d = np.abs(np.nan_to_num(tk - jk, nan=np.inf, posinf=np.inf, neginf=np.inf))
    order = np.argsort(-d.reshape(-1), kind="stable")[:limit]
    out = []
    for flat in order:
        if d.reshape(-1)[flat] == 0:
            break
        e = np.zeros(tk.shape)
        e.reshape(-1)[flat] = 1.0
        kink, p, m = one_sided_gap(phi, xs, k, e, noise)
        if kink:
            idx = tuple(int(i) for i in np.unravel_index(flat, tk.shape))
            out.append((idx, min(p, m), max(p, m)))
    return out


def _agrees(estimate: float, err: float, claim: float) -> bool:
    if not np.isfinite(claim) or not np.isfinite(estimate):
        return False
    tol = 20 * err + 1e-5 * max(abs(estimate), abs(claim)) + 1e-12
    return abs(estimate - claim) <= tol


def _close64(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return False
    return compare(a, b, _TOL64).ok


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
    each element is summed from (:mod:`oracle.rounding`)."""
    t, r = np.asarray(t, np.float64), np.asarray(r, np.float64)
    finite = np.isfinite(t) & np.isfinite(r)
    if terms is None or not finite.all() or terms.shape != t.shape:
        return RoundingView(False, False, False, float("nan"), ())
    gap = np.abs(t - r)
    terms = np.maximum(terms, np.maximum(np.abs(t), np.abs(r)))
    close = compare(t, r, _TOL64).ok
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


def _precision(arg: int, view: RoundingView) -> Verdict:
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
    if _close64(g2, 2.0 * a) and _close64(gvw, a + gw):
        return None
    if _close64(g2, a) and _close64(gw, a):
        return Verdict(
            "torch",
            "ignores_grad_output",
            f"torch's backward for argument {arg} ignores grad_output (the same gradient for "
            "v, 2v and a random w): it returns the local derivative without multiplying by "
            "grad_output",
        )
    affine = _close64(g2 - g0, 2.0 * (a - g0)) and _close64(gvw - g0, (a - g0) + (gw - g0))
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


def _nondeterministic(
    probe: Probe, k: int, xs: Sequence[np.ndarray], a: np.ndarray | None, arg: int, repeats: int
) -> Verdict | None:
    """The same backward, the same inputs and grad_output, called again: any change is
    nondeterminism (random numbers, state kept between calls), whatever else is wrong."""
    for _ in range(repeats):
        g = probe.torch_grads(xs, probe.cots)[k]
        if (g is None) != (a is None) or (g is not None and not _same(g, a)):
            return Verdict(
                "torch",
                "nondeterministic",
                f"torch's backward for argument {arg} gives different answers when called "
                "again on the same inputs and grad_output: random numbers or state kept "
                "between calls in the backward",
            )
    return None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
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
    tol = compare(a, r, _TOL64)
    off = np.abs(a - r) > (
        _TOL64.rtol * np.abs(r)
        + _TOL64.atol * max(float(np.max(np.abs(r))) if r.size else 0, 1e-300)
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
    if a.ndim >= 2 and a.shape[-1] == a.shape[-2] >= 2 and _close64(a, np.swapaxes(r, -1, -2)):
        pairs = list(_elsewhere(probe, k, xs, who))
        if len(pairs) >= 2 and all(_close64(a2, np.swapaxes(r2, -1, -2)) for a2, r2 in pairs):
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


def side_error(err: Any) -> Verdict:
    """One side raised (or ran past its time limit): blamed on that side."""
    msg = str(err.exc).strip().splitlines()
    first = msg[0] if msg else ""
    who = "PyTorch side" if err.side == "torch" else "JAX twin"
    if err.timed_out:
        return Verdict(
            err.side,
            "error",
            f"the {who} timed out in its {err.stage}: {first}; the run for this dtype and "
            "device stopped there",
        )
    if isinstance(err.exc, SystemExit):  # caught: user code must not end the run
        return Verdict(
            err.side,
            "error",
            f"the {who} called sys.exit({err.exc.code!r}) in its {err.stage} (SystemExit "
            "caught by the oracle: user code must not end the run)",
        )
    return Verdict(
        err.side,
        "error",
        f"the {who} raised in its {err.stage}: {type(err.exc).__name__}: {first[:300]}",
    )


def disconnected(arg: int, torch_grad: Any, twin_grad: np.ndarray, *, cut: bool) -> Verdict | None:
    """No gradient reaches argument ``arg`` in torch (None), where the twin's is not zero."""
    if torch_grad is not None:
        return None
    if not (np.any(twin_grad != 0) or not np.all(np.isfinite(twin_grad))):
        return None
    how = (
        "no output of torch_fn requires grad (the graph is cut inside the function: "
        ".detach(), .numpy(), .item(), torch.no_grad(), or an integer output)"
        if cut
        else "torch.autograd.grad returned None for it (the graph is cut between this input "
        "and the outputs)"
    )
    return Verdict(
        "torch",
        "disconnected",
        f"no gradient reaches argument {arg}: {how}; the twin's gradient is not zero",
    )


def float32_output(i: int) -> Verdict:
    return Verdict(
        "torch",
        "precision",
        f"torch returned output {i} as float32 in a float64 run: it computes at a lower "
        "precision than the dtype under test (a float32 constant, buffer or .float() in the "
        "forward?)",
    )


def output_rounding_only(torch64: np.ndarray, reference64: np.ndarray, scale: Any) -> bool:
    """A float32 output off, but torch's own float64 forward right: the rounding of
    torch's formula in float32, not a bug."""
    return compare(torch64, reference64, forward_tolerance("float64"), scale=scale).ok


def output_mismatch(i: int, c: Any) -> Verdict:
    """A forward finding: who is right cannot be told from outputs alone."""
    return Verdict(
        "unknown",
        "nonfinite" if c.nonfinite_mismatch else "mismatch",
        f"output {i} differs: {c.mismatched} of {c.total} elements beyond tolerance (the "
        "gradient cannot be judged where the forward disagrees)",
    )


def compiled_differs(i: int, c: Any) -> Verdict:
    return Verdict(
        "twin",
        "mismatch",
        f"the twin compiled with jax.jit and the twin run eagerly disagree on output {i} "
        f"({c.mismatched} of {c.total} elements; worst {c.actual_at_worst:.6g} compiled vs "
        f"{c.expected_at_worst:.6g} eager at index {c.worst_index}): XLA's compilation "
        "changes its result here, so it is no reference",
    )


def _small_gap(t: np.ndarray, r: np.ndarray) -> bool:
    """A gap below 1e-4 of the tensor's largest value: rounding or float32 arithmetic may
    explain it (a kink's or a bug's gap is of the order of the gradient itself)."""
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(r))) or not t.size:
        return False
    scale = max(float(np.max(np.abs(t))), float(np.max(np.abs(r))))
    return float(np.max(np.abs(t - r))) <= 1e-4 * scale


def _not_excused_at_kink(
    tk: np.ndarray, kinks: list[tuple[tuple[int, ...], float, float]], arg: int
) -> Verdict | None:
    """At a kink either side may pick a value between the one-sided slopes, and autodiff
    through a composite function may pick one outside them (a sparsemax at a corner of
    its pieces: 0.70 where the slopes along the axis are 0 and 0.21). Finite values are
    therefore not judged there: the slopes are estimated over steps that may reach other
    kinks nearby (``|x - t| + 0.5 |x - round(x)|`` at ``x = t = 1e-9``: estimated slopes
    of +-0.03 around a right value of 0.35). A NaN or infinity where both slopes are
    finite is no convention: 0/0 in the backward."""
    for idx, lo, hi in kinks:
        v = float(tk[idx])
        if np.isfinite(lo) and np.isfinite(hi) and not np.isfinite(v):
            return Verdict(
                "torch",
                "nonfinite",
                f"torch's gradient of argument {arg} is {v} at index {idx}, a kink whose "
                f"one-sided derivatives are finite ({lo:.4g}, {hi:.4g}): 0/0 in the backward "
                "(x / |x| at 0?)",
            )
    return None


def judge_gradient(
    probe: Probe,
    k: int,
    *,
    torch_grad: np.ndarray,
    reference: np.ndarray,
    dtype: str,
) -> Verdict:
    """Kink, blame and diagnosis for argument ``k``'s gradient disagreement."""
    arg = probe.diff_pos[k]
    xs = probe.x
    # the same call again, in the dtype that disagreed: a backward wrong on one call in
    # five is nondeterministic, whatever the float64 re-evaluation says
    try:
        again = probe.torch_grads(xs, probe.cots, dtype)[k]
    except Exception:
        again = None
    if again is None or not _same(np.asarray(again), np.asarray(torch_grad)):
        return Verdict(
            "torch",
            "nondeterministic",
            f"torch's backward for argument {arg} gives different answers when called again "
            "on the same inputs and grad_output: random numbers or state kept between calls "
            "in the backward",
        )
    try:
        t64, j64 = probe.grads(xs)
    except Exception as exc:  # a side that works in the dtype under test but not in float64
        return Verdict(
            "unknown", "mismatch", f"float64 re-evaluation failed: {type(exc).__name__}: {exc}"
        )
    tk, jk = t64[k], j64[k]
    if tk is None:
        return Verdict("torch", "disconnected", f"no gradient reaches argument {arg} in float64")

    if dtype != "float64" and _close64(tk, jk):
        # Right in float64, off in float32. Rounding that cancellation amplifies (a
        # gradient that is 0 in exact arithmetic, computed as 3e-8) is float32's limit,
        # not a bug; an overflow to NaN/inf where the twin stays finite is reported.
        lost = compare(torch_grad, reference, _TOL64)
        if not lost.nonfinite_mismatch:
            return Verdict("none", "mismatch", f"float32 rounding only: {lost.max_abs_error:.3g}")
        return Verdict(
            "torch",
            "nonfinite",
            f"only in {dtype}: torch's {dtype} gradient of argument {arg} is not finite at "
            f"index {lost.worst_index} where the reference is; in float64 both agree, so an "
            f"intermediate overflows in {dtype} (e.g. exp(x) / (1 + exp(x))**2 for large x)",
        )

    # the rounding model interprets the twin's vjp op by op (tens of milliseconds): paid
    # up front only for gaps small enough to be rounding or float32 arithmetic
    views: list[RoundingView] = []

    def rounding() -> RoundingView:
        if not views:
            views.append(rounding_view(tk, jk, probe.term_magnitudes(k)))
        return views[0]

    if _small_gap(tk, jk) and rounding().rounding_only:
        # every element within ~1000 roundings of the terms it is summed from (a saturated
        # softmax: 1e-14 made by cancelling terms of size 1): no float64 code does better
        return Verdict("none", "mismatch", "float64 rounding of the terms")
    if dtype == "float64" and _small_gap(tk, jk) and rounding().precision_only:
        return _precision(arg, rounding())

    phi_twin = lambda x: probe.phi(x, "twin")
    u = _direction(tk - jk)
    noise = rounding_noise(probe, phi_twin, xs, k)
    kinks = _coordinate_kinks(phi_twin, xs, k, tk, jk, noise)
    kink_note = ""
    steps = _STEPS
    if kinks:
        rng = np.random.default_rng(0)
        moved = [x + 1e-6 * (1 + np.abs(x)) * rng.standard_normal(x.shape) for x in xs]
        try:
            t2, j2 = probe.grads(moved)
        except Exception:
            t2, j2 = None, None
        where = ", ".join(
            f"index {idx} (one-sided derivatives {lo:.4g}, {hi:.4g})" for idx, lo, hi in kinks[:3]
        )
        bad = _not_excused_at_kink(tk, kinks, arg)
        if bad is not None:
            return bad
        if t2 is not None and _close64(t2[k], j2[k]):
            # Autodiff at a kink need not return a subgradient of the whole function
            # (a sparsemax at its support boundary mixes two pieces' Jacobians), so the
            # values there are not judged: only that the sides agree once off the kink.
            return Verdict(
                "kink",
                "mismatch",
                f"argument {arg} sits on a kink at {where}: torch and the twin pick "
                "different values there and agree again once the input is moved by 1e-6",
            )
        if t2 is not None and t2[k] is not None:
            # a real disagreement next to the kink: judge it where the function is smooth
            xs, tk, jk = moved, t2[k], j2[k]
            u = _direction(tk - jk)
            kink_note = " (judged at a point 1e-6 away from a kink the example sits on)"
            steps = _STEPS_NEAR_KINK

    rng = np.random.default_rng(2)
    support = ~np.isclose(
        np.nan_to_num(tk, nan=np.inf), np.nan_to_num(jk, nan=-np.inf), rtol=1e-7, atol=0
    )
    directions = [u] + [rng.standard_normal(u.shape) * support for _ in range(2)]
    torch_wrong = twin_wrong = False
    for d in directions:
        if not np.any(d):
            continue
        est, err = directional_derivative(phi_twin, xs, k, d, steps, noise)
        est_t, err_t = directional_derivative(
            lambda x: probe.phi(x, "torch"), xs, k, d, steps, noise
        )
        if not _agrees(est, max(err, err_t), est_t):
            return Verdict(
                "unknown",
                "mismatch",
                f"torch's and the twin's forwards disagree near the example (finite "
                f"differences {est_t:.6g} vs {est:.6g}){kink_note}",
            )
        ct = (
            float(np.sum(np.nan_to_num(tk, nan=np.inf) * d))
            if np.all(np.isfinite(tk))
            else float("nan")
        )
        cj = float(np.sum(jk * d)) if np.all(np.isfinite(jk)) else float("nan")
        torch_wrong |= not _agrees(est, err, ct)
        twin_wrong |= not _agrees(est, err, cj)
    if not (torch_wrong or twin_wrong) and np.all(np.isfinite(tk)) and np.all(np.isfinite(jk)):
        # Along every direction where they differ, both claims match the finite
        # differences: they cannot tell the sides apart, and a gap they cannot resolve
        # is no divergence, unless the rounding model shows float32-level arithmetic.
        if dtype == "float64" and rounding().precision_somewhere:
            return _precision(arg, rounding())
        return Verdict("none", "mismatch", "within the finite differences' agreement of both sides")
    if torch_wrong and not twin_wrong:
        v = diagnose(probe, k, xs, tk, jk, "torch")
    elif twin_wrong and not torch_wrong:
        v = diagnose(probe, k, xs, jk, tk, "twin")
    else:
        v = diagnose(probe, k, xs, tk, jk, "torch")
        why = "contradict both sides" if torch_wrong else "cannot tell the sides apart"
        v = Verdict("unknown", v.diagnosis, v.detail + f"; finite differences {why}", v.factor)
    return Verdict(v.blame, v.diagnosis, v.detail + kink_note, v.factor)
