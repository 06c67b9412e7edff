r"""Verdicts on a disagreement: kink or bug, who is to blame (diagnosis: :mod:`.diagnosis`).

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

from typing import Any, NamedTuple

import numpy as np

from .diagnosis import (
    TOL64,
    RoundingView,
    close64,
    diagnose,
    precision_verdict,
    rounding_view,
    same,
)
from .findings import Verdict
from .probe import (
    STEPS,
    STEPS_NEAR_KINK,
    Probe,
    agrees,
    coordinate_kinks,
    direction,
    directional_derivative,
    rounding_noise,
)
from .rounding import float32_rounding_of_terms
from .tolerance import compare, forward_tolerance

__all__ = [
    "judge_gradient",
    "side_error",
    "disconnected",
    "float32_output",
    "output_precision",
    "output_rounding_only",
    "output_mismatch",
    "compiled_differs",
]


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
            reason="timeout",
            phase=err.stage,
        )
    if isinstance(err.exc, SystemExit):  # caught: user code must not end the run
        return Verdict(
            err.side,
            "error",
            f"the {who} called sys.exit({err.exc.code!r}) in its {err.stage} (SystemExit "
            "caught by the oracle: user code must not end the run)",
            reason="raised",
            phase=err.stage,
        )
    return Verdict(
        err.side,
        "error",
        f"the {who} raised in its {err.stage}: {type(err.exc).__name__}: {first[:300]}",
        reason="raised",
        phase=err.stage,
    )


def disconnected(arg: int, torch_grad: Any, twin_grad: np.ndarray, *, cut: bool) -> Verdict | None:
    """No gradient reaches argument ``arg`` in torch (None), where the twin's is not zero."""
    if torch_grad is not None:
        return None
    if not (np.any(twin_grad != 0) or not np.all(np.isfinite(twin_grad))):
        return None
    how = (
        "no output of torch_fn requires grad (the graph is cut inside the function: "
        ".detach(), .numpy(), .item(), torch.no_grad(), a Python number or an integer output)"
        if cut
        else "torch.autograd.grad returned None for it (the graph is cut between this input "
        "and the outputs)"
    )
    return Verdict(
        "torch",
        "disconnected",
        f"no gradient reaches argument {arg}: {how}; the twin's gradient is not zero",
    )


def output_precision(i: int, level: float) -> Verdict:
    """A float64 output off by float32's rounding of the terms it is made of."""
    return Verdict(
        "torch",
        "precision",
        f"torch computes output {i} at a lower precision than float64: off by {level:.3g} x "
        "float32's epsilon of the terms it is made of, where float64 arithmetic is good to "
        "about 1e-6 of that (a float32 constant or buffer, or a .float() in the forward?)",
        reason="output_precision",
    )


def float32_output(i: int) -> Verdict:
    return Verdict(
        "torch",
        "precision",
        f"torch returned output {i} as float32 in a float64 run: it computes at a lower "
        "precision than the dtype under test (a float32 constant, buffer or .float() in the "
        "forward?)",
        reason="float32_output",
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
    early = _called_again(probe, k, xs, torch_grad, dtype, arg)
    if early is not None:
        return early
    try:
        t64, j64 = probe.grads(xs)
    except Exception as exc:  # a side that works in the dtype under test but not in float64
        return Verdict(
            "unknown", "mismatch", f"float64 re-evaluation failed: {type(exc).__name__}: {exc}"
        )
    tk, jk = t64[k], j64[k]
    if tk is None:
        return Verdict("torch", "disconnected", f"no gradient reaches argument {arg} in float64")
    if dtype != "float64" and close64(tk, jk):
        return _only_in_low_precision(torch_grad, reference, dtype, arg)
    if dtype == "float32" and _float32_rounding_of_terms(probe, k, torch_grad, reference):
        # where the formula cancels, float32 is off by this much whatever the code; torch's
        # float64 gradient, which would show its formula right, may be wrong on its own
        # (computed in float32: a float64 finding of its own run)
        return Verdict("none", "mismatch", "float32 rounding of the terms")

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
        return precision_verdict(arg, rounding())

    phi_twin = lambda x: probe.phi(x, "twin")  # noqa: E731
    noise = rounding_noise(probe, phi_twin, xs, k)
    kinks = coordinate_kinks(phi_twin, xs, k, tk, jk, noise)
    point = _Point(xs, tk, jk, "", STEPS)
    if kinks:
        at_kink = _at_kink(probe, k, point, kinks, arg)
        if isinstance(at_kink, Verdict):
            return at_kink
        point = at_kink
    return _blame(probe, k, point, noise, dtype, arg, rounding)


class _Point(NamedTuple):
    """Where a disagreement is judged: the inputs, both float64 gradients of the
    argument, a note for the message, and the finite-difference steps to use."""

    xs: list[np.ndarray]
    tk: np.ndarray
    jk: np.ndarray
    note: str
    steps: tuple[float, ...]


def _called_again(probe: Probe, k: int, xs, torch_grad, dtype: str, arg: int) -> Verdict | None:
    """The same call again, in the dtype that disagreed: a backward wrong on one call in
    five is nondeterministic, whatever the float64 re-evaluation says."""
    try:
        again = probe.torch_grads(xs, probe.cots, dtype)[k]
    except Exception:
        again = None
    if again is None or not same(np.asarray(again), np.asarray(torch_grad)):
        return Verdict(
            "torch",
            "nondeterministic",
            f"torch's backward for argument {arg} gives different answers when called again "
            "on the same inputs and grad_output: random numbers or state kept between calls "
            "in the backward",
        )
    return None


def _float32_rounding_of_terms(probe: Probe, k: int, torch_grad, reference) -> bool:
    """Torch's float32 gradient is float32's rounding of the terms the twin's float64
    gradient is summed from (:func:`oracle.judge.rounding.float32_rounding_of_terms`)."""
    if not (np.all(np.isfinite(torch_grad)) and np.all(np.isfinite(reference))):
        return False  # the rounding model is not paid for a non-finite gap
    return float32_rounding_of_terms(torch_grad, reference, probe.term_magnitudes(k))


def _only_in_low_precision(torch_grad, reference, dtype: str, arg: int) -> Verdict:
    """Right in float64, off in float32. Rounding that cancellation amplifies (a
    gradient that is 0 in exact arithmetic, computed as 3e-8) is float32's limit, not a
    bug; an overflow to NaN/inf where the twin stays finite is reported."""
    lost = compare(torch_grad, reference, TOL64)
    if not lost.nonfinite_mismatch:
        return Verdict("none", "mismatch", f"float32 rounding only: {lost.max_abs_error:.3g}")
    return Verdict(
        "torch",
        "nonfinite",
        f"only in {dtype}: torch's {dtype} gradient of argument {arg} is not finite at "
        f"index {lost.worst_index} where the reference is; in float64 both agree, so an "
        f"intermediate overflows in {dtype} (e.g. exp(x) / (1 + exp(x))**2 for large x)",
    )


def _at_kink(probe: Probe, k: int, point: _Point, kinks, arg: int) -> Verdict | _Point:
    """The example sits on a kink: a kink verdict when the sides agree once moved off it
    by 1e-6, else the point next to it where the disagreement is judged."""
    xs, tk = point.xs, point.tk
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
    if t2 is not None and close64(t2[k], j2[k]):
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
        note = " (judged at a point 1e-6 away from a kink the example sits on)"
        return _Point(moved, t2[k], j2[k], note, STEPS_NEAR_KINK)
    return point


def _blame(probe: Probe, k: int, point: _Point, noise: float, dtype: str, arg: int, rounding):
    """Finite differences along the gap and two random directions on the elements
    where the claims differ: the side they contradict is blamed, then diagnosed."""
    xs, tk, jk, kink_note, steps = point
    u = direction(tk - jk)
    phi_twin = lambda x: probe.phi(x, "twin")  # noqa: E731
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
        if not agrees(est, max(err, err_t), est_t):
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
        torch_wrong |= not agrees(est, err, ct)
        twin_wrong |= not agrees(est, err, cj)
    if not (torch_wrong or twin_wrong) and np.all(np.isfinite(tk)) and np.all(np.isfinite(jk)):
        # Along every direction where they differ, both claims match the finite
        # differences: they cannot tell the sides apart, and a gap they cannot resolve
        # is no divergence, unless the rounding model shows float32-level arithmetic.
        if dtype == "float64" and rounding().precision_somewhere:
            return precision_verdict(arg, rounding())
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
