"""oracle.judge.tolerance: the rule that decides agreement, and the user's override."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from oracle.judge.tolerance import (
    Tolerance,
    compare,
    default_tolerance,
    forward_tolerance,
    tolerance_of,
    user_tolerance,
    user_tolerances,
)

F64 = default_tolerance("float64")
ABS = Tolerance(rtol=0.0, atol=0.1, k=None, scaled_atol=False)


def test_compare_counts_the_mismatched_elements_and_points_at_the_worst():
    expected = np.zeros((2, 3))
    actual = expected.copy()
    actual[0, 1], actual[1, 2] = 0.5, 2.0  # two elements off; (1, 2) by more
    c = compare(actual, expected, ABS)
    assert not c.ok
    assert (c.mismatched, c.total) == (2, 6)
    assert c.worst_index == (1, 2)
    assert (c.actual_at_worst, c.expected_at_worst) == (2.0, 0.0)
    assert c.max_abs_error == 2.0
    assert c.allowed_at_worst == pytest.approx(0.1)
    assert c.max_rel_error == np.inf  # an error against an expected zero


def test_the_worst_element_is_the_largest_excess_over_what_was_allowed():
    # element 0 is off by 5 but may be off by 5 x 0.9 (rtol); element 1 off by 1, allowed 0
    tol = Tolerance(rtol=0.9, atol=0.0, k=None, scaled_atol=False)
    c = compare(np.array([105.0, 1.0]), np.array([100.0, 0.0]), tol)
    assert c.mismatched == 1 and c.worst_index == (1,)
    assert c.max_abs_error == 5.0  # the greatest difference, wherever it is


def test_a_pass_has_no_mismatch_and_counts_every_element():
    c = compare(np.ones((2, 2)), np.ones((2, 2)), F64)
    assert c.ok and (c.mismatched, c.total) == (0, 4)


def test_the_oracles_atol_is_relative_to_the_tensors_largest_element():
    # atol 1e-10 x scale 1e6 = 1e-4 allowed on the zero element
    expected = np.array([1e6, 0.0])
    assert compare(np.array([1e6, 5e-5]), expected, F64).ok
    assert not compare(np.array([1e6, 5e-3]), expected, F64).ok


def test_an_all_zero_reference_takes_the_scale_given_or_computed():
    zeros = np.zeros(2)
    off = np.array([0.0, 1e-8])
    assert not compare(off, zeros, F64).ok  # scale 1: 1e-10 allowed
    assert compare(off, zeros, F64, scale=1e3).ok  # 1e-7 allowed
    assert compare(off, zeros, F64, scale=lambda: 1e3).ok


def test_an_infinity_matches_the_same_infinity():
    inf = np.array([np.inf, -np.inf])
    assert compare(inf, inf, F64).ok


def test_an_infinity_in_torch_only_is_a_nonfinite_mismatch():
    c = compare(np.array([1.0, np.inf]), np.array([1.0, 2.0]), F64)
    assert not c.ok and c.nonfinite_mismatch and c.worst_index == (1,)


# The fast path once allowed rtol x |expected|, which is inf where the reference is
# infinite, so any torch value passed there: a non-finite value on one side only is a
# mismatch, and opposite infinities are not the same one.


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_finite_value_against_an_infinite_reference_is_a_nonfinite_mismatch(dtype):
    c = compare(np.array([1.0, 2.0]), np.array([1.0, np.inf]), default_tolerance(dtype))
    assert not c.ok and c.nonfinite_mismatch and c.worst_index == (1,)


def test_opposite_infinities_do_not_match():
    c = compare(np.array([np.inf, 1.0]), np.array([-np.inf, 1.0]), F64)
    assert not c.ok and c.worst_index == (0,)


def test_empty_arrays_agree():
    c = compare(np.zeros((0, 3)), np.zeros((0, 3)), F64)
    assert c.ok and c.total == 0


def test_different_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"shapes differ: \(2,\) vs \(3,\)"):
        compare(np.zeros(2), np.zeros(3), F64)


def test_the_floor_is_added_to_what_is_allowed():
    tol = Tolerance(rtol=0.0, atol=0.0, k=None, scaled_atol=False, floor=0.5)
    assert compare(np.array([0.4]), np.array([0.0]), tol).ok
    assert not compare(np.array([0.6]), np.array([0.0]), tol).ok


def test_the_float64_forward_gets_more_room_than_gradients():
    assert forward_tolerance("float64").rtol > default_tolerance("float64").rtol
    assert forward_tolerance("float32") == default_tolerance("float32")
    assert default_tolerance("float32").k == 8.0 and default_tolerance("float64").k is None


def test_describe_says_how_atol_applies():
    assert user_tolerance(1e-3, 1e-6, "float32").describe() == "atol=1.0e-06, rtol=1.0e-03"
    assert default_tolerance("float32").describe() == (
        "rtol=1.0e-05, atol=1.0e-05 x scale, plus 8 x the twin's float32 error"
    )
    assert default_tolerance("float64").describe() == "rtol=1.0e-10, atol=1.0e-10 x scale"


def test_user_tolerances_of_numbers_apply_to_every_argument_in_every_dtype():
    tols = user_tolerances(1e-3, 1e-6, ["float32", "float64"], [0])
    assert set(tols) == {"float32", "float64"}
    assert tols["float64"] == {None: user_tolerance(1e-3, 1e-6, "float64")}


def test_user_tolerances_of_dicts_apply_per_argument():
    tols = user_tolerances(
        {1: 1e-2, "weight": 0.0}, {1: 1e-5, "weight": 1e-4}, ["float32"], [0, 1, "weight"]
    )
    assert tols["float32"][1] == Tolerance(1e-2, 1e-5, None, scaled_atol=False)
    assert tols["float32"]["weight"].atol == 1e-4


def test_no_user_tolerance_is_none():
    assert user_tolerances(None, None, ["float32"], [0]) is None


@pytest.mark.parametrize(
    "rtol, atol, message",
    [
        pytest.param(1e-3, None, "rtol=0.001 was given without atol", id="rtol-alone"),
        pytest.param(None, 1e-3, "atol=0.001 was given without rtol", id="atol-alone"),
        pytest.param(-1.0, 1e-3, "rtol must be a non-negative number", id="negative"),
        pytest.param(
            {0: 1e-3}, 1e-3, "give both as numbers .* or both as dicts", id="dict-and-number"
        ),
        pytest.param(
            {5: 1e-3},
            {5: 1e-3},
            "names argument 5, which is not a differentiated",
            id="unknown-key",
        ),
        pytest.param({True: 1e-3}, {True: 1e-3}, "names argument True", id="bool-key"),
        pytest.param(
            {0: 1e-3, 1: 1e-3},
            {0: 1e-3},
            "rtol names argument 1 but atol does not",
            id="keys-differ",
        ),
        pytest.param(
            {0: 1e-3}, {0: float("nan")}, r"atol\[0\] must be a non-negative", id="nan-in-dict"
        ),
    ],
)
def test_user_tolerances_misuse_is_refused_with_the_fix(rtol, atol, message):
    with pytest.raises(ValueError, match=message):
        user_tolerances(rtol, atol, ["float32"], [0, 1])


def test_user_tolerance_refuses_an_unknown_dtype():
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        user_tolerance(0.0, 0.0, "float16")


def test_tolerance_of_prefers_the_arguments_own_then_the_users_general_then_the_rule():
    own, general = user_tolerance(1.0, 1.0, "float32"), user_tolerance(2.0, 2.0, "float32")
    sides = SimpleNamespace(user_tol={"float32": {0: own, None: general}})
    assert tolerance_of(sides, "float32", argument=0) is own
    assert tolerance_of(sides, "float32", argument=1) is general
    assert tolerance_of(sides, "float32", forward=True) is general
    assert tolerance_of(sides, "float64", argument=0) == default_tolerance("float64")
    assert tolerance_of(sides, "float64", forward=True) == forward_tolerance("float64")


def test_a_per_argument_tolerance_leaves_the_outputs_on_the_rule():
    own = user_tolerance(1.0, 1.0, "float64")
    sides = SimpleNamespace(user_tol={"float64": {0: own}})
    assert tolerance_of(sides, "float64", forward=True) == forward_tolerance("float64")
    assert tolerance_of(SimpleNamespace(user_tol=None), "float64") == default_tolerance("float64")
