"""verify in the low dtypes (bfloat16, float16, autocast) and the error budget end to end:
right Functions pass, the catalog's low-precision specimens are flagged with both errors
in their message, a float32 constant in a float64 backward is a precision finding.

The specimens and their derivations: ``losses/_low_precision.py``; the rule:
``oracle/judge/budget.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax.numpy as jnp
import pytest
import torch

import losses  # noqa: F401  (registers the catalog)
import oracle
from oracle import tensor
from oracle.judge.plan import LOW_DTYPE

LOW = ("bfloat16", "float16")


def _verify(name: str, dtypes, max_examples: int = 10, seed: int = 0):
    return oracle.registry()[name].verify(
        max_examples=max_examples, seed=seed, dtypes=dtypes, devices=["cpu"]
    )


def _real(report) -> list:
    return [d for d in report.divergences if not d.is_kink]


def _tanh_sum(x, w):
    return torch.tanh(x * w).sum(-1)


def _tanh_sum_jax(x, w):
    return jnp.tanh(x * w).sum(-1)


def test_a_right_composite_function_is_clean_in_both_low_dtypes_and_under_autocast():
    report = oracle.verify(
        _tanh_sum,
        _tanh_sum_jax,
        [tensor("b n", low=-3, high=3), tensor("n")],
        dtypes=(*LOW, "autocast-bfloat16"),
        max_examples=15,
        seed=3,
        devices=["cpu"],
    )
    assert report.ok, str(report)
    assert [r.dtype for r in report.runs] == [*LOW, "autocast-bfloat16"]


def test_the_checks_beyond_the_vjp_say_not_checked_in_a_low_dtype():
    report = oracle.verify(
        _tanh_sum,
        _tanh_sum_jax,
        [tensor("b n"), tensor("n")],
        dtypes="bfloat16",
        max_examples=3,
        seed=0,
        devices=["cpu"],
    )
    assert report.capabilities["vjp"] == "ok"
    for check in ("jvp", "hvp", "vmap", "contract"):
        assert report.capabilities[check] == LOW_DTYPE == "not checked: low dtype"


def test_a_float32_accumulator_is_clean_in_both_low_dtypes():
    report = _verify("scale_columns", LOW)
    assert report.ok, str(report)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, id=n) for n in ("scale_columns_low_accumulator", "scale_columns_fp8_reduce")],
)
@pytest.mark.parametrize("dtype", LOW)
def test_a_low_precision_reduction_is_a_precision_finding_with_both_errors(name, dtype):
    report = _verify(name, (dtype,), max_examples=5)
    (d,) = _real(report)
    assert (d.check, d.argument, d.blame, d.diagnosis, d.dtype) == (
        "vjp",
        1,
        "torch",
        "precision",
        dtype,
    )
    # both errors, as numbers and in the sentence: "torch's error 0.368 is 3.1x the naive
    # bfloat16 error 0.118 (allowed: 2 x that ..."
    assert d.error > 2 * d.naive_error
    assert f"torch's error {d.error:.3g} is" in d.detail
    assert f"the naive {dtype} error {d.naive_error:.3g}" in d.detail
    assert "in float32 torch is right on the same example" in d.detail
    assert pair_expected(name, report)
    assert json.loads(json.dumps(d.to_dict()))["naive_error"] == pytest.approx(d.naive_error)


def pair_expected(name: str, report) -> bool:
    return all(row.expected for row in oracle.registry()[name].outcomes(report))


def test_the_same_specimens_are_clean_in_float32():
    for name in ("scale_columns_low_accumulator", "scale_columns_fp8_reduce"):
        assert _verify(name, ("float32",), max_examples=5).ok


def test_a_wrong_gradient_in_a_low_dtype_is_a_mismatch_when_float32_finds_it_too():
    # CustomExp's backward is 2 exp(x): wrong in every dtype, so not a matter of precision
    report = _verify("custom_exp", ("bfloat16",), max_examples=10)
    d = _real(report)[0]
    assert (d.check, d.blame, d.diagnosis) == ("vjp", "torch", "mismatch")
    assert "the float32 run of this example diverges too (vjp, scaled)" in d.detail


def test_an_autocast_function_with_custom_bwd_is_clean_under_autocast():
    report = _verify("autocast_linear", ("autocast-bfloat16", "autocast-float16"))
    assert report.ok, str(report)


def test_a_backward_without_custom_bwd_raises_under_autocast_and_says_autocast_caused_it():
    report = _verify("autocast_linear_no_custom_bwd", ("autocast-bfloat16",), max_examples=3)
    (d,) = _real(report)
    assert (d.check, d.blame, d.diagnosis, d.reason) == ("error", "torch", "error", "autocast")
    assert "expected m1 and m2 to have the same dtype" in d.detail
    assert "autocast caused it" in d.detail


def test_the_same_function_is_clean_in_plain_bfloat16():
    # without autocast grad_output and the weight are both bfloat16
    assert _verify("autocast_linear_no_custom_bwd", ("bfloat16",), max_examples=5).ok


def test_a_float32_sigma_in_a_float64_backward_is_a_precision_finding_blamed_on_torch():
    report = _verify("comparator_network_float32_sigma", ("float64",), max_examples=20)
    (d,) = _real(report)
    assert (d.check, d.argument, d.blame, d.diagnosis) == ("vjp", 0, "torch", "precision")


def test_the_comparator_network_with_a_float64_sigma_is_clean_in_float64():
    assert _verify("comparator_network", ("float64",), max_examples=20).ok


@pytest.mark.parametrize("dtypes", [("float8",), ("autocast-float64",)])
def test_known_refuses_a_dtype_it_does_not_know(dtypes):
    with pytest.raises(ValueError, match="dtypes"):
        oracle.Known("wrong", dtypes=dtypes)


def test_known_takes_the_low_dtypes():
    assert oracle.Known("wrong", dtypes=("bfloat16", "autocast-float16")).expected_in("bfloat16")


def test_the_default_dtypes_stay_float32_and_float64():
    report = oracle.verify(
        _tanh_sum,
        _tanh_sum_jax,
        [tensor("n"), tensor("n")],
        max_examples=2,
        seed=0,
        devices=["cpu"],
    )
    assert [r.dtype for r in report.runs] == ["float32", "float64"]


def test_the_reproducer_of_a_bfloat16_finding_replays_it(tmp_path):
    # the float8 reduction off by more than a bfloat16 rounding (2**-7 relative) on argument 1
    report = _verify("scale_columns_fp8_reduce", ("bfloat16",), max_examples=3)
    (d,) = _real(report)
    script = tmp_path / "replay.py"
    script.write_text(d.reproducer)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    worst = float(done.stdout.rsplit("max |difference|:", 1)[1].split()[0])
    assert worst > 2.0**-7 * abs(d.expected)
