"""oracle.report.text: the words of a report, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from oracle.report.text import fmt, format_example, mismatch_message


@pytest.mark.parametrize(
    "x, text",
    [
        pytest.param(None, "-", id="none"),
        pytest.param(float("nan"), "nan", id="nan"),
        pytest.param(float("-inf"), "-inf", id="inf"),
        pytest.param(1 / 3, "0.3333", id="four-digits"),
        pytest.param(1e-7, "1e-07", id="small"),
        pytest.param(2.0, "2", id="whole"),
    ],
)
def test_fmt_renders_numbers_in_four_significant_digits(x, text):
    assert fmt(x) == text


def test_mismatch_message_without_index_allowed_or_values():
    msg = mismatch_message(
        what="Outputs", mismatched=1, total=4, max_abs=0.5, max_rel=0.25, index=None, allowed=None
    )
    assert msg.splitlines() == [
        "Outputs are not close!",
        "Mismatched elements: 1 / 4 (25.0%)",
        "Greatest absolute difference: 0.5",
        "Greatest relative difference: 0.25",
    ]


def test_mismatch_message_of_nothing_compared_says_zero_percent():
    msg = mismatch_message(
        what="Gradients", mismatched=0, total=0, max_abs=0.0, max_rel=0.0, index=(), allowed=0.0
    )
    assert "Mismatched elements: 0 / 0 (0.0%)" in msg
    assert "Greatest absolute difference: 0 at index () (up to 0 allowed)" in msg


def test_mismatch_message_shows_values_only_when_both_are_given():
    msg = mismatch_message(
        what="Gradients",
        mismatched=1,
        total=1,
        max_abs=1.0,
        max_rel=1.0,
        index=(0,),
        allowed=None,
        actual=2.0,
    )
    assert "torch:" not in msg


def test_format_example_shows_dims_and_a_few_values_of_each_argument():
    example = {
        "dims": {"b": 2, "n": 4},
        "args": [np.arange(8, dtype=np.float64).reshape(2, 4) / 3, np.array([1, 0]), 0.5],
    }
    assert format_example(example) == (
        "dims b=2, n=4; arg 0: float64[2, 4] [0, 0.333333, 0.666667, 1, 1.33333, 1.66667, ...]; "
        "arg 1: int64[2] [1, 0]; arg 2: 0.5"
    )


def test_format_example_of_nothing_says_so():
    assert format_example(None) == "(no example)"
    assert format_example({}) == "(no example)"
