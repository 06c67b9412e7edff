"""oracle.report.records: Divergence and Report as text and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oracle.report.records import Divergence, Report, RunSummary


def finding(check="vjp", argument=0, **kw):
    base = dict(
        blame="torch",
        diagnosis="scaled",
        detail="torch = 2 x the twin",
        dtype="float32",
        device="cpu",
    )
    return Divergence(check, argument, **{**base, **kw})


@pytest.mark.parametrize(
    "d, headline",
    [
        pytest.param(
            finding(name="sq"),
            "[oracle] sq: vjp: gradient of argument 0 (float32, cpu): blame=torch, diagnosis=scaled",
            id="vjp",
        ),
        pytest.param(
            finding("forward", None),
            "[oracle] forward: forward outputs (float32, cpu): blame=torch, diagnosis=scaled",
            id="forward",
        ),
        pytest.param(
            finding("error", None),
            "[oracle] error: call (float32, cpu): blame=torch, diagnosis=scaled",
            id="error",
        ),
        pytest.param(
            finding("jvp", 1),
            "[oracle] jvp: argument 1 (float32, cpu): blame=torch, diagnosis=scaled",
            id="jvp",
        ),
        pytest.param(
            finding("contract", None),
            "[oracle] contract: the function (float32, cpu): blame=torch, diagnosis=scaled",
            id="contract",
        ),
        pytest.param(
            finding(twin="auto"),
            "[oracle] vjp: gradient of argument 0 (float32, cpu): blame=torch, diagnosis=scaled, twin=auto",
            id="auto",
        ),
    ],
)
def test_the_headline_says_what_was_found_where(d, headline):
    assert d.headline() == headline


def test_the_message_has_the_torch_testing_body_tolerance_example_seed_and_replay():
    d = finding(
        mismatched=2,
        total=3,
        max_abs_error=2.0,
        max_rel_error=1.0,
        worst_index=(1,),
        allowed=1e-5,
        actual=4.0,
        expected=2.0,
        tolerance="rtol=1.0e-05",
        seed=7,
        reproducer="...",
        example={"dims": {"n": 3}, "args": [np.array([1.0, 2.0, 3.0])]},
    )
    lines = d.message().splitlines()
    assert lines[1] == "  torch = 2 x the twin"
    assert lines[2:4] == ["  Gradients are not close!", "  Mismatched elements: 2 / 3 (66.7%)"]
    assert "  Tolerance: rtol=1.0e-05" in lines
    assert "  Example (shrunk): dims n=3; arg 0: float64[3] [1, 2, 3]" in lines
    assert "  Seed: 7" in lines
    assert lines[-1].startswith("  Replay: save `.reproducer`")
    assert str(d) == d.message()


def test_the_message_of_an_error_or_a_derandomized_run_has_no_numbers_and_says_so():
    lines = finding("error", None, total=3).message().splitlines()
    assert not any("not close" in ln for ln in lines)  # an error compares nothing
    assert "  Seed: none (derandomized: the same examples every run)" in lines
    assert not any(ln.startswith("  Replay") for ln in lines)


def test_to_dict_is_json_with_non_finite_numbers_as_text_and_arrays_as_lists():
    d = finding(
        example={
            "dims": {"n": 2},
            "args": [np.array([np.nan, 1.0]), np.array([1, 2]), 0.5, object()],
        }
    )
    out = json.loads(json.dumps(d.to_dict()))
    assert out["max_abs_error"] == "nan" and out["worst_index"] is None
    assert out["example"]["args"][0] == {"dtype": "float64", "shape": [2], "values": ["nan", 1.0]}
    assert out["example"]["args"][1]["values"] == [1, 2]
    assert out["example"]["args"][2] == 0.5
    assert out["example"]["args"][3].startswith("<object object")
    assert (out["reason"], out["phase"]) == ("", "")


def report(*divergences):
    runs = [
        RunSummary("float32", "cpu", examples=5, kinks=1, capabilities={"vjp": "ok"}),
        RunSummary(
            "float64", "cpu", examples=6, capabilities={"vjp": "diverged", "jvp": "unsupported: x"}
        ),
    ]
    return Report("sq", runs, list(divergences), seed=3)


def test_kinks_do_not_count_against_a_report():
    kink = finding(blame="kink", detail="at 0")
    r = report(kink)
    assert r.ok and r.findings == [] and r.kinks == [kink]
    real = finding(dtype="float64")
    assert not report(kink, real).ok and report(kink, real).findings == [real]


def test_the_reports_capabilities_are_the_worst_over_its_runs():
    caps = report().capabilities
    assert (caps["vjp"], caps["jvp"], caps["hvp"]) == ("diverged", "unsupported: x", "not checked")


def test_the_text_has_a_headline_a_row_per_run_the_capabilities_and_each_finding():
    text = str(
        report(finding(dtype="float64", max_abs_error=2.0), finding(blame="kink", detail="at 0"))
    )
    lines = text.splitlines()
    assert lines[0] == "[oracle] sq: 1 divergence in 11 examples (seed 3)"
    assert lines[2].split() == ["float32", "cpu", "5", "ok", "-", "-", "-", "1"]
    assert lines[3].split() == ["float64", "cpu", "6", "DIVERGED", "torch", "scaled", "2", "0"]
    assert "  jvp       unsupported: x" in lines
    assert "[oracle] vjp: gradient of argument 0 (float64, cpu)" in text
    assert lines[-1].startswith("[oracle] 1 example(s) sat on a kink") and "at 0" in lines[-1]


def test_a_clean_derandomized_report_says_so():
    r = Report("sq", [RunSummary("float32", "cpu", examples=4)], [], twin="auto")
    assert (
        str(r).splitlines()[0]
        == "[oracle] sq (automatic twin): no divergence in 4 examples (derandomized)"
    )


def test_the_report_as_json_has_its_runs_and_divergences():
    out = json.loads(json.dumps(report(finding()).to_dict()))
    assert (out["name"], out["ok"], out["seed"], out["twin"]) == ("sq", False, 3, "hand")
    assert [r["examples"] for r in out["runs"]] == [5, 6]
    assert out["divergences"][0]["diagnosis"] == "scaled"
