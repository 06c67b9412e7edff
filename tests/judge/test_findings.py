"""oracle.judge.findings: a verdict and its comparison made into the public record."""

from __future__ import annotations

import numpy as np

from oracle.judge.findings import Verdict, divergence
from oracle.judge.tolerance import compare, user_tolerance


def test_copies_the_verdict_reason_and_phase():
    v = Verdict(
        "torch", "error", "torch backward: ValueError: no", reason="raised", phase="backward"
    )
    d = divergence("error", v, dtype="float32", device="cpu", name="pair")
    assert (d.check, d.blame, d.diagnosis, d.detail) == ("error", "torch", "error", v.detail)
    assert (d.reason, d.phase) == ("raised", "backward")
    assert (d.dtype, d.device, d.name, d.argument) == ("float32", "cpu", "pair", None)


def test_copies_the_factor_of_a_scaled_verdict():
    d = divergence(
        "vjp",
        Verdict("torch", "scaled", "x2", factor=2.0),
        dtype="float64",
        device="cpu",
        argument=1,
    )
    assert d.factor == 2.0 and d.argument == 1
    assert d.reason == "" and d.phase == ""  # an ordinary disagreement of values


def test_fills_in_the_comparisons_numbers_and_the_tolerance():
    tol = user_tolerance(0.0, 0.1, "float64")
    c = compare(np.array([1.0, 5.0, 2.0]), np.array([1.0, 2.0, 2.0]), tol)
    d = divergence(
        "vjp",
        Verdict("torch", "mismatch", "off"),
        dtype="float64",
        device="cpu",
        comparison=c,
        tolerance=tol,
    )
    assert (d.mismatched, d.total, d.worst_index) == (1, 3, (1,))
    assert (d.max_abs_error, d.actual, d.expected) == (3.0, 5.0, 2.0)
    assert d.max_rel_error == 1.5 and d.allowed == 0.1
    assert d.tolerance == "atol=1.0e-01, rtol=0.0e+00"


def test_numbers_may_be_set_directly():
    d = divergence(
        "forward",
        Verdict("torch", "mismatch", "off"),
        dtype="float32",
        device="cpu",
        mismatched=4,
        total=9,
    )
    assert (d.mismatched, d.total) == (4, 9)
    assert d.tolerance == "" and np.isnan(d.max_abs_error)


def test_a_kink_verdict_makes_a_kink_record():
    assert divergence(
        "vjp", Verdict("kink", "mismatch", "k"), dtype="float32", device="cpu"
    ).is_kink
    assert not divergence(
        "vjp", Verdict("torch", "mismatch", "k"), dtype="float32", device="cpu"
    ).is_kink
