"""oracle.judge.diagnosis: what a wrong gradient looks like, told with a stand-in probe
whose two "sides" are numpy formulas of the point and the cotangent."""

from __future__ import annotations

import numpy as np
import pytest

from oracle.judge.diagnosis import close64, diagnose, precision_verdict, rounding_view, same

X = [np.array([[0.5, -1.2], [2.0, 0.7]])]
COT = np.array([[0.3, -0.8], [0.6, 0.9]])


class Probe:
    """torch's gradient ``torch(x, cot)`` and the twin's ``twin(x, cot)`` for one
    differentiated argument (position 2 of the pair)."""

    def __init__(self, torch, twin=lambda x, c: c * np.cos(x)):
        self.torch, self.twin = torch, twin
        self.diff_pos, self.cots, self.x = [2], [COT], X

    def torch_grads(self, xs, cots):
        return [self.torch(xs[0], cots[0])]

    def grads(self, xs):
        return [self.torch(xs[0], self.cots[0])], [self.twin(xs[0], self.cots[0])]

    def term_magnitudes(self, k):
        return None  # no rounding model here: a departure is never excused as rounding


def verdict(torch, twin=None):
    probe = Probe(torch) if twin is None else Probe(torch, twin)
    t, j = probe.grads(X)
    return diagnose(probe, 0, X, t[0], j[0], "torch")


@pytest.mark.parametrize(
    "torch_grad, diagnosis, factor",
    [
        pytest.param(lambda x, c: 2 * c * np.cos(x), "scaled", 2.0, id="scaled"),
        pytest.param(lambda x, c: -c * np.cos(x), "sign_flipped", None, id="sign-flipped"),
        pytest.param(
            lambda x, c: np.where(x > 1, 0.0, c * np.cos(x)), "zero", None, id="zero-somewhere"
        ),
        pytest.param(lambda x, c: np.cos(x), "ignores_grad_output", None, id="ignores-grad-output"),
        pytest.param(
            lambda x, c: c * np.cos(x) + 1.0, "not_linear_in_grad_output", None, id="affine"
        ),
        pytest.param(
            lambda x, c: c * np.cos(x) + c**2, "not_linear_in_grad_output", None, id="quadratic"
        ),
        pytest.param(lambda x, c: c * np.sin(x), "mismatch", None, id="mismatch"),
        pytest.param(
            lambda x, c: np.where(x == 2.0, np.inf, c * np.cos(x)),
            "nonfinite",
            None,
            id="nonfinite",
        ),
    ],
)
def test_a_wrong_torch_gradient_is_diagnosed(torch_grad, diagnosis, factor):
    v = verdict(torch_grad)
    assert (v.blame, v.diagnosis, v.factor) == ("torch", diagnosis, factor)


def test_an_affine_backward_is_said_to_add_a_term():
    assert (
        "adds a term that does not depend on grad_output"
        in verdict(lambda x, c: c * np.cos(x) + 1.0).detail
    )


def test_a_transposed_gradient_is_diagnosed_on_square_matrices():
    # d/dA <C, A B> = C B^T; the transpose of it is what a missing .T gives
    b = np.array([[1.0, 2.0], [-0.5, 3.0]])
    v = verdict(lambda x, c: (c @ b.T).T + 0 * x, lambda x, c: c @ b.T + 0 * x)
    assert v.diagnosis == "transposed"


def test_a_backward_that_changes_between_calls_is_nondeterministic():
    rng = np.random.default_rng(0)
    assert (
        verdict(lambda x, c: c * np.cos(x) + rng.standard_normal(x.shape)).diagnosis
        == "nondeterministic"
    )


def test_a_ratio_seen_at_one_element_only_is_not_called_scaled():
    # twice the twin at this example, something else at the points around it
    here = X[0]
    v = verdict(lambda x, c: (2.0 if np.array_equal(x, here) else 3.0 + x) * c * np.cos(x))
    assert v.diagnosis == "mismatch"


def test_close64_and_same():
    a = np.array([1.0, 2.0])
    assert close64(a, a + 1e-13) and not close64(a, a + 1e-6)
    assert not close64(None, a)
    assert same(a, a * (1 + 1e-14)) and not same(a, a * (1 + 1e-9))
    assert not same(a, a[:1])


def test_the_precision_verdict_names_the_argument_and_the_level():
    view = rounding_view(np.array([1.0 + 1e-8]), np.array([1.0]), np.array([1.0]))
    v = precision_verdict(3, view)
    assert (v.blame, v.diagnosis) == ("torch", "precision")
    assert "argument 3" in v.detail and "at index (0,)" in v.detail
