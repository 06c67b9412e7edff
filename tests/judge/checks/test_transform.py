"""oracle.judge.checks.transform: what the checks beyond the vjp share, driven with a fake
transform and hand-made values (no torch or JAX calls)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from oracle.inputs.specs import TensorSpec
from oracle.judge.checks.transform import (
    Judged,
    Refused,
    Skip,
    Transform,
    _diagnosis,
    compare_all,
    flatten,
    side_of,
    tolerance_for,
    unflatten,
)
from oracle.judge.tolerance import compare, default_tolerance, forward_tolerance, user_tolerance

SIDES = SimpleNamespace(specs=(TensorSpec(("n",)),), user_tol=None)
VALUES = (np.array([0.5, -1.0, 2.0]),)


def judged(actual, expected, what="Tangents"):
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return Judged(what, 0, compare(a, e, default_tolerance("float64")), a, e)


def transform(compare, blame="torch"):
    return Transform("jvp", compare, lambda *args: blame() if callable(blame) else blame)


def run(t, dtype="float32", asked=False):
    return t.run(SIDES, VALUES, 0, dtype, "cpu", asked=asked, thorough=asked)


def test_nothing_that_disagrees_is_ok():
    assert run(transform(lambda *a: [])) == ([], "ok")


def test_a_skipped_example_is_not_checked():
    def skip(*args):
        raise Skip()

    assert run(transform(skip)) == ([], "not checked")


@pytest.mark.parametrize("asked", [True, False])
def test_a_refusal_is_a_status_and_a_finding_only_when_asked(asked):
    def refuse(*args):
        raise Refused("torch", "no jvp staticmethod (forward-mode AD)")

    found, status = run(transform(refuse), asked=asked)
    assert status == "unsupported: no jvp staticmethod (forward-mode AD)"
    if asked:
        (d,) = found
        assert (d.check, d.blame, d.diagnosis, d.reason) == (
            "jvp",
            "torch",
            "unsupported",
            "refused",
        )
        assert (
            d.detail
            == "jvp was asked for, and torch refuses it: no jvp staticmethod (forward-mode AD)"
        )
    else:
        assert found == []


def test_a_twins_refusal_says_the_twin_cannot_do_it():
    def refuse(*args):
        raise Refused("twin", "no batching rule")

    (d,), _ = run(transform(refuse), asked=True)
    assert d.blame == "twin" and "the twin cannot do it: no batching rule" in d.detail


def test_a_factor_that_holds_around_the_example_is_diagnosed_as_scaled():
    # torch's tangent is twice the twin's here and at the points around it
    def doubled(sides, values, seed, dtype, device, thorough):
        e = np.asarray(values[0], np.float64) + 1.0
        return [judged(2 * e, e)]

    (d,), status = run(transform(doubled))
    assert status == "diverged"
    assert (d.check, d.blame, d.diagnosis, d.factor, d.argument) == (
        "jvp",
        "torch",
        "scaled",
        2.0,
        0,
    )
    # at x = -1 both are 0: two of the three elements disagree
    assert (
        d.detail
        == "jvp: Tangents differs from the twin's: 2 of 3 elements beyond tolerance (torch = 2 x the twin)"
    )
    assert (d.mismatched, d.total) == (2, 3)


def test_a_factor_seen_at_the_example_only_is_a_mismatch():
    calls = []

    def doubled_here_only(sides, values, seed, dtype, device, thorough):
        calls.append(values)
        e = np.array([1.0, 2.0, 3.0])
        return [judged(2 * e if len(calls) == 1 else e * [1, 5, 1], e)]

    (d,), _ = run(transform(doubled_here_only))
    assert (d.diagnosis, d.factor) == ("mismatch", None)


def test_a_gap_finite_differences_call_rounding_is_ok():
    (found, status) = run(transform(lambda *a: [judged([1.0, 3.0], [1.0, 2.0])], blame="none"))
    assert (found, status) == ([], "ok")


def test_a_float64_gap_far_below_the_values_size_is_rounding():
    tiny = lambda *a: [judged([1.0, 1e6 + 1e-4], [1.0, 1e6])]  # noqa: E731  (1e-10 relative)
    assert run(transform(tiny), dtype="float64") == ([], "ok")


def test_a_blame_that_fails_is_unknown_not_a_crash():
    def fails():
        raise RuntimeError("finite differences failed")

    (d,), _ = run(transform(lambda *a: [judged([1.0, 3.0], [1.0, 2.0])], blame=fails))
    assert d.blame == "unknown"


@pytest.mark.parametrize(
    "actual, expected, diagnosis, factor",
    [
        pytest.param([0.0, 0.0], [1.0, 2.0], "zero", None, id="zero"),
        pytest.param([np.inf, 1.0], [1.0, 1.0], "nonfinite", None, id="nonfinite"),
        pytest.param([-1.0, -2.0], [1.0, 2.0], "sign_flipped", None, id="sign"),
        pytest.param([0.5, 1.0], [1.0, 2.0], "scaled", 0.5, id="scaled"),
        pytest.param([1.0, 3.0], [1.0, 2.0], "mismatch", None, id="mismatch"),
        pytest.param([1.0], [1.0, 2.0], "mismatch", None, id="shapes"),
        pytest.param(None, [1.0, 2.0], "mismatch", None, id="nothing"),
    ],
)
def test_diagnosis_names_the_shape_of_the_error(actual, expected, diagnosis, factor):
    assert _diagnosis(actual, None if expected is None else np.array(expected)) == (
        diagnosis,
        factor,
    )


def test_compare_all_lists_only_what_disagrees_and_counts_none_as_zeros():
    labels = [("Tangents", 0), ("Tangents", 1), ("Tangents", 2)]
    twin = [np.array([1.0, 2.0]), np.zeros(2), np.array([1.0, 1.0])]
    torch_ = [np.array([1.0, 2.0]), None, None]  # None where the twin is zero is right
    (bad,) = compare_all(SIDES, labels, torch_, twin, "float64")
    assert bad.argument == 2 and bad.actual.tolist() == [0.0, 0.0]


def test_compare_all_reports_shapes_that_differ_without_comparing():
    (bad,) = compare_all(
        SIDES, [("Batched results", 0)], [np.zeros(3)], [np.zeros((3, 1))], "float32"
    )
    assert bad.what == "Batched results: shape (3,) in torch, (3, 1) in the twin"
    assert bad.c.mismatched == bad.c.total == 3 and bad.actual is None


def test_the_extra_checks_float64_tolerance_is_looser_than_the_vjps_unless_the_user_sets_one():
    extra = tolerance_for(SIDES, "float64")
    assert extra.rtol > default_tolerance("float64").rtol and extra.floor == 1e-12
    assert tolerance_for(SIDES, "float64", forward=True) == forward_tolerance("float64")
    assert tolerance_for(SIDES, "float32") == default_tolerance("float32")
    own = user_tolerance(0.1, 0.1, "float64")
    users = SimpleNamespace(specs=SIDES.specs, user_tol={"float64": {0: own}})
    assert tolerance_for(users, "float64", argument=0) is own
    assert tolerance_for(users, "float64", argument=1) == extra


def test_flatten_and_unflatten_round_trip_shapes_and_values():
    xs = [np.arange(6.0).reshape(2, 3), np.array(7.0), np.zeros((0, 2))]
    flat, shapes = flatten(xs)
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 7]
    back = unflatten(flat, shapes)
    assert [b.shape for b in back] == [(2, 3), (), (0, 2)]
    assert back[0].tolist() == xs[0].tolist() and back[1] == 7.0


@pytest.mark.parametrize(
    "claim_torch, claim_twin, side",
    [
        pytest.param(6.0, 3.0, "torch", id="torch-doubled"),
        pytest.param(3.0, 6.0, "twin", id="twin-doubled"),
        pytest.param(3.0, 3.0, "none", id="both-right"),
        pytest.param(5.0, 6.0, "unknown", id="both-wrong"),
    ],
)
def test_side_of_sides_with_finite_differences(claim_torch, claim_twin, side):
    # phi(x) = sum(x^2) at x = (0.5, 1): the derivative along u = (1, 1) is 2 x 0.5 + 2 x 1 = 3
    phi = lambda xs: float(np.sum(xs[0] ** 2))  # noqa: E731
    xs, u = [np.array([0.5, 1.0])], np.array([1.0, 1.0])
    assert side_of(phi, xs, u, claim_torch, claim_twin, "cpu") == side
