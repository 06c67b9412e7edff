"""The error budget (oracle.judge.budget) on hand-worked values: torch's error against the
float64 reference within 2 x the naive implementation's, plus two ulps of the dtype."""

from __future__ import annotations

import numpy as np
import pytest

from oracle.judge.budget import FACTOR, FLOOR_ULPS, budget_sentence, error_budget, ulp


@pytest.mark.parametrize(
    "m, dtype, expected",
    [
        # float16 numbers are 2**-10 apart in [1, 2), 2**-9 in [2, 4)
        pytest.param(1.5, "float16", 2.0**-10, id="float16-at-1.5"),
        pytest.param(2.9, "float16", 2.0**-9, id="float16-at-2.9"),
        # bfloat16 keeps 8 bits: 2**-7 apart in [1, 2)
        pytest.param(1.0, "bfloat16", 2.0**-7, id="bfloat16-at-1"),
        # at 0, the smallest subnormal: float16's is 2**-24
        pytest.param(0.0, "float16", 2.0**-24, id="float16-at-0"),
    ],
)
def test_ulp_is_the_spacing_of_the_dtype_at_a_magnitude(m, dtype, expected):
    assert float(ulp(np.array(m), dtype)) == expected


def test_the_documented_example_is_a_finding_and_its_sentence_gives_both_errors():
    # the module's example: a float16 element of 2.9 (ulp 2**-9, floor 2 ulps = 0.0039),
    # the naive float16 error 0.0023, torch's 0.0141: allowed 2 x 0.0023 + 0.0039 = 0.0085
    ref = np.array([2.9])
    b = error_budget(ref + 0.0141, ref + 0.0023, ref, "float16")
    assert not b.ok
    assert b.error == pytest.approx(0.0141) and b.naive_error == pytest.approx(0.0023)
    assert b.floor == pytest.approx(FLOOR_ULPS * 2.0**-9)
    assert b.allowed == pytest.approx(FACTOR * 0.0023 + 2 * 2.0**-9)
    text = budget_sentence(b, "float16")
    assert "torch's error 0.0141 is 6.1x the naive float16 error 0.0023" in text


def test_an_error_within_twice_the_naive_error_plus_the_floor_passes():
    # the same element, torch off by 0.008 < 0.0085
    ref = np.array([2.9])
    assert error_budget(ref + 0.008, ref + 0.0023, ref, "float16").ok


def test_a_lucky_exact_naive_result_leaves_torch_its_floor():
    # naive exact (error 0): torch may still round once or twice, two ulps at 1.5 (2**-9)
    ref = np.array([1.5])
    assert error_budget(ref + 2.0**-10, ref, ref, "float16").ok
    assert not error_budget(ref + 2.0**-8, ref, ref, "float16").ok


def test_the_spread_under_random_rounding_widens_the_budget():
    # a branch flipped by rounding: torch off by 1.0 where samples of the twin's formula
    # under one rounding land up to 0.6 away: 1.0 <= 2 x 0.6
    ref = np.array([1.0, 0.0])
    torch_ = np.array([1.0, 1.0])
    assert not error_budget(torch_, ref, ref, "bfloat16").ok
    b = error_budget(torch_, ref, ref, "bfloat16", input_error=0.6)
    assert b.ok
    b = error_budget(torch_, ref, ref, "bfloat16", input_error=0.4)
    assert not b.ok and "or the spread 0.4 of the twin's formula" in budget_sentence(b, "bfloat16")


def test_torch_not_finite_where_the_naive_result_is_finite_is_beyond_any_budget():
    ref = np.array([1.0, 2.0])
    b = error_budget(np.array([1.0, np.inf]), ref, ref, "bfloat16", input_error=1e9)
    assert not b.ok and b.nonfinite
    assert "where the naive bfloat16 result" in budget_sentence(b, "bfloat16")


def test_where_the_naive_result_overflows_too_torch_is_not_judged():
    # float16 overflows past 65504 on both sides: the naive error is infinite
    ref = np.array([1.0, 7e4])
    both = np.array([1.0, np.inf])
    assert error_budget(both, both, ref, "float16").ok
