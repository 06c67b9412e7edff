"""oracle.judge.blame's verdicts called directly: judge_gradient with a stand-in probe
whose two sides are numpy formulas (phi = <cot, f(x)> and the gradients each side
claims), and the small verdict builders (tests/judge/test_blame.py: the same by use)."""

from __future__ import annotations

import numpy as np
import pytest

from oracle.judge.blame import (
    compiled_differs,
    disconnected,
    judge_gradient,
    output_mismatch,
    output_rounding_only,
    side_error,
)
from oracle.judge.tolerance import compare, default_tolerance
from oracle.pair.guard import SideError

COT = np.array([0.3, -0.8, 0.6])
X = np.array([0.5, -1.2, 2.0])


def cos_grad(x, c):
    return c * np.cos(x)


class Probe:
    """f = sin on both sides unless ``torch_f`` says otherwise; each side claims its own
    gradient formula of (x, cot)."""

    def __init__(self, torch_grad=cos_grad, twin_grad=cos_grad, torch_f=np.sin, x=X):
        self.torch_grad, self.twin_grad, self.torch_f = torch_grad, twin_grad, torch_f
        self.x, self.diff_pos, self.cots = [x], [1], [COT]

    def grads(self, xs):
        return [self.torch_grad(xs[0], COT)], [self.twin_grad(xs[0], COT)]

    def torch_grads(self, xs, cots, dtype="float64"):
        return [self.torch_grad(xs[0], cots[0])]

    def phi(self, xs, side):
        f = self.torch_f if side == "torch" else np.sin
        return float(np.sum(COT * f(xs[0])))

    def term_magnitudes(self, k):
        return None  # no rounding model: the finite differences decide


def judge(probe, dtype="float64", torch_grad=None):
    t = probe.torch_grad(probe.x[0], COT) if torch_grad is None else torch_grad
    reference = probe.twin_grad(probe.x[0], COT)
    return judge_gradient(probe, 0, torch_grad=t, reference=reference, dtype=dtype)


def test_a_doubled_torch_gradient_is_blamed_on_torch_and_scaled():
    v = judge(Probe(torch_grad=lambda x, c: 2 * cos_grad(x, c)))
    assert (v.blame, v.diagnosis, v.factor) == ("torch", "scaled", 2.0)
    assert "argument 1" in v.detail


def test_a_wrong_twin_is_blamed_on_the_twin():
    v = judge(Probe(twin_grad=lambda x, c: -cos_grad(x, c)))
    assert (v.blame, v.diagnosis) == ("twin", "sign_flipped")


def test_forwards_that_disagree_near_the_example_are_unknown():
    v = judge(Probe(torch_grad=lambda x, c: 2 * cos_grad(x, c), torch_f=lambda x: 2 * np.sin(x)))
    assert (v.blame, v.diagnosis) == ("unknown", "mismatch")
    assert "forwards disagree near the example" in v.detail


def test_a_float32_gap_that_float64_does_not_show_is_no_finding():
    low = (cos_grad(X, COT) + 1e-7).astype(np.float32)  # torch's float32 result
    probe = Probe()
    probe.torch_grads = lambda xs, cots, dtype="float64": [low]  # the same when called again
    v = judge(probe, dtype="float32", torch_grad=low)
    assert v.blame == "none" and v.detail.startswith("float32 rounding only")


def test_a_float32_overflow_where_float64_agrees_is_nonfinite_on_torch():
    probe = Probe(torch_grad=lambda x, c: np.where(x == X[0], np.inf, 1.0) * cos_grad(x, c))
    # float64 evaluations at the same point agree with the twin, float32 overflowed
    probe.grads = lambda xs: ([cos_grad(xs[0], COT)], [cos_grad(xs[0], COT)])
    overflowed = np.array([np.inf, *cos_grad(X, COT)[1:]])
    probe.torch_grads = lambda xs, cots, dtype="float64": [overflowed]
    v = judge(probe, dtype="float32", torch_grad=overflowed)
    assert (v.blame, v.diagnosis) == ("torch", "nonfinite") and "only in float32" in v.detail


def test_a_backward_that_answers_differently_when_called_again_is_nondeterministic():
    v = judge(Probe(torch_grad=lambda x, c: 2 * cos_grad(x, c)), torch_grad=3 * cos_grad(X, COT))
    assert (v.blame, v.diagnosis) == ("torch", "nondeterministic")


def test_no_float64_gradient_at_all_is_disconnected():
    probe = Probe()
    probe.grads = lambda xs: ([None], [cos_grad(xs[0], COT)])
    v = judge(probe)
    assert (v.blame, v.diagnosis) == ("torch", "disconnected")


def test_two_conventions_at_a_kink_that_agree_off_it_are_a_kink():
    # f = |x| at x0 = 0: torch says +1 there (sign with 0 -> 1), the twin 0 (np.sign)
    def phi(self, xs, side):
        return float(np.sum(COT * np.abs(xs[0])))

    x = np.array([0.0, -1.2, 2.0])
    probe = Probe(
        torch_grad=lambda x, c: c * np.where(x >= 0, 1.0, -1.0),
        twin_grad=lambda x, c: c * np.sign(x),
        x=x,
    )
    probe.phi = phi.__get__(probe)
    v = judge(probe)
    assert v.blame == "kink" and "sits on a kink at index (0,)" in v.detail


# --- the verdict builders -----------------------------------------------------------


@pytest.mark.parametrize(
    "err, reason, detail",
    [
        pytest.param(
            SideError("torch", "backward", ValueError("bad\nsecond line")),
            "raised",
            "the PyTorch side raised in its backward: ValueError: bad",
            id="raised",
        ),
        pytest.param(
            SideError("twin", "forward", TimeoutError("timed out after 1 s"), timed_out=True),
            "timeout",
            "the JAX twin timed out in its forward: timed out after 1 s; the run for this dtype and device stopped there",
            id="timeout",
        ),
    ],
)
def test_side_error_blames_the_side_that_raised_with_reason_and_phase(err, reason, detail):
    v = side_error(err)
    assert (v.blame, v.diagnosis, v.reason, v.phase, v.detail) == (
        err.side,
        "error",
        reason,
        err.stage,
        detail,
    )


@pytest.mark.parametrize(
    "torch_grad, twin_grad, disconnected_",
    [
        pytest.param(None, np.array([0.0, 1.0]), True, id="no-gradient"),
        pytest.param(None, np.array([0.0, np.nan]), True, id="twin-nan"),
        pytest.param(None, np.zeros(2), False, id="twin-zero-too"),
        pytest.param(np.zeros(2), np.array([1.0, 1.0]), False, id="torch-has-one"),
    ],
)
def test_disconnected_only_where_torch_gives_none_and_the_twin_does_not_give_zero(
    torch_grad, twin_grad, disconnected_
):
    v = disconnected(2, torch_grad, twin_grad, cut=False)
    assert (v is not None) is disconnected_
    if v is not None:
        assert (v.blame, v.diagnosis) == ("torch", "disconnected")
        assert "torch.autograd.grad returned None" in v.detail


def test_a_cut_graph_says_no_output_requires_grad():
    v = disconnected(0, None, np.ones(2), cut=True)
    assert "no output of torch_fn requires grad" in v.detail


def test_an_output_mismatch_is_unknown_and_says_nonfinite_when_it_is():
    tol = default_tolerance("float64")
    v = output_mismatch(1, compare(np.array([1.0, np.inf]), np.array([1.0, 2.0]), tol))
    assert (v.blame, v.diagnosis) == ("unknown", "nonfinite")
    assert v.detail.startswith("output 1 differs: 1 of 2 elements beyond tolerance")
    assert (
        output_mismatch(0, compare(np.array([3.0]), np.array([2.0]), tol)).diagnosis == "mismatch"
    )


def test_compiled_differs_blames_the_twin_with_both_values():
    c = compare(np.array([1.5]), np.array([1.0]), default_tolerance("float64"))
    v = compiled_differs(0, c)
    assert v.blame == "twin" and "worst 1.5 compiled vs 1 eager at index (0,)" in v.detail


def test_output_rounding_only_when_torchs_own_float64_forward_is_right():
    r = np.array([1.0, 2.0])
    assert output_rounding_only(r * (1 + 1e-9), r, 2.0)
    assert not output_rounding_only(r * 1.01, r, 2.0)
