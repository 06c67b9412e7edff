"""The pure pieces of reporting: tolerance rule and messages."""

from __future__ import annotations

import numpy as np

from oracle.cli import format_table
from oracle.judge.tolerance import compare, default_tolerance, user_tolerance
from oracle.registration import Outcome
from oracle.report.records import mismatch_message


def test_mismatch_message_reads_like_torch_testing():
    msg = mismatch_message(
        what="Gradients",
        mismatched=2,
        total=3,
        max_abs=2.0,
        max_rel=1.0,
        index=(1,),
        allowed=1e-05,
        actual=4.0,
        expected=2.0,
    )
    assert msg.splitlines() == [
        "Gradients are not close!",
        "Mismatched elements: 2 / 3 (66.7%)",
        "Greatest absolute difference: 2 at index (1,) (up to 1e-05 allowed)",
        "Greatest relative difference: 1",
        "torch: 4, reference: 2 at index (1,)",
    ]


def test_float32_allows_a_multiple_of_the_twins_own_error():
    ref = np.array([1.0, 1e-3])
    twin32 = ref + np.array([0.0, 1e-6])  # the twin loses 1e-6 on the small element
    torch32 = ref + np.array([0.0, 5e-6])  # torch loses 5e-6 there: within 8 x
    tol = default_tolerance("float32")
    assert compare(torch32, ref, tol, twin_lowp=twin32).ok
    assert not compare(torch32 + np.array([0, 1e-4]), ref, tol, twin_lowp=twin32).ok


def test_nan_matches_nan_but_not_a_number():
    tol = default_tolerance("float64")
    assert compare(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), tol).ok
    c = compare(np.array([np.nan, 1.0]), np.array([0.5, 1.0]), tol)
    assert not c.ok and c.nonfinite_mismatch and c.worst_index == (0,)


def test_user_tolerance_is_absolute_like_torch_testing():
    tol = user_tolerance(rtol=0.0, atol=0.1, dtype="float32")
    assert compare(np.array([100.05]), np.array([100.0]), tol).ok
    assert not compare(np.array([100.2]), np.array([100.0]), tol).ok


def test_format_table_has_one_row_per_outcome():
    rows = [
        Outcome("smooth_round", "float32", "cpu", "flagged", True, "torch", "scaled", 0.5, 12, 0),
        Outcome("abs_loss", "float64", "cpu", "diverged", False, "torch", "mismatch", None, 100, 3),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:4] == ["pair", "dtype", "device", "outcome"]
    assert lines[1].split()[:5] == ["smooth_round", "float32", "cpu", "flagged", "yes"]
    assert lines[2].split()[:5] == ["abs_loss", "float64", "cpu", "diverged", "NO"]


def test_the_catalog_table_shows_each_runs_capabilities_compactly():
    # from a RunSummary's capability table: unsupported -> "no", diverged -> "X"
    row = Outcome(
        "custom_exp",
        "float32",
        "cpu",
        "flagged",
        True,
        "torch",
        "scaled",
        1.0,
        10,
        0,
        capabilities="jvp=no,hvp=ok,vmap=no,contract=X",
    )
    last = format_table([row]).splitlines()[1].split()[-1]
    assert last == "jvp=no,hvp=ok,vmap=no,contract=X"


def test_outcomes_carry_the_compact_capabilities_of_their_run():
    from oracle.registration import _compact

    caps = {
        "vjp": "ok",
        "jvp": "unsupported: no jvp staticmethod",
        "hvp": "diverged",
        "vmap": "not checked",
        "contract": "ok",
    }
    assert _compact(caps) == "jvp=no,hvp=X,vmap=-,contract=ok"
