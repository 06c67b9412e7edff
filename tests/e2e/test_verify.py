"""oracle.verify end to end: the findings issue #2 requires, and no false alarms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import oracle
from oracle import integers, tensor
from tests import specimens as sp

CPU = {"devices": ["cpu"], "seed": 0}


def findings(report, **match):
    return [d for d in report.findings if all(getattr(d, k) == v for k, v in match.items())]


def test_flags_the_seeds_simplified_matrix_power_gradient_on_argument_0_in_both_dtypes():
    report = oracle.verify(
        sp.MatrixPowerSimplified.apply,
        sp.matrix_power_twin,
        [tensor("k k", low=-2, high=2), 3],
        dims={"k": (1, 5)},
        **CPU,
    )
    assert not report.ok
    for dtype in ("float32", "float64"):
        (d,) = findings(report, dtype=dtype)
        assert (d.check, d.argument, d.blame) == ("vjp", 0, "torch")
        # the shrunk example is a non-trivial matrix: a 1x1 one has the right gradient
        assert d.example["args"][0].shape[0] >= 2


def test_a_correct_hand_written_matrix_power_backward_passes():
    report = oracle.verify(
        sp.MatrixPower.apply,
        sp.matrix_power_twin,
        [tensor("b k k", low=-2, high=2), 3],
        dims={"k": (1, 5), "b": (1, 3)},
        max_examples=60,
        **CPU,
    )
    assert report.ok, report


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_correct_matrix_power_passes_for_every_exponent(n):
    report = oracle.verify(
        sp.MatrixPower.apply,
        sp.matrix_power_twin,
        [tensor("k k", low=-1.5, high=1.5), n],
        dims={"k": (1, 4)},
        max_examples=30,
        **CPU,
    )
    assert report.ok, report


def test_flags_a_backward_that_ignores_grad_output():
    # x*x summed would pass loss.sum().backward(): grad_output is all ones there
    report = oracle.verify(
        sp.SquareIgnoresGrad.apply, sp.square, [tensor("n", low=-3, high=3)], **CPU
    )
    assert {d.diagnosis for d in report.findings} == {"ignores_grad_output"}
    assert {d.dtype for d in report.findings} == {"float32", "float64"}


def test_a_backward_that_raises_is_an_error_finding_and_the_run_goes_on():
    report = oracle.verify(sp.RaisingBackward.apply, jnp.sin, [tensor("n")], **CPU)
    # one finding per dtype: the float64 run still happened after the float32 one failed
    assert [(d.dtype, d.check, d.blame, d.diagnosis) for d in report.findings] == [
        ("float32", "error", "torch", "error"),
        ("float64", "error", "torch", "error"),
    ]
    assert "RuntimeError" in report.findings[0].detail
    assert "not implemented for this branch" in report.findings[0].detail


def test_a_twin_that_raises_is_an_error_finding_blamed_on_the_twin():
    report = oracle.verify(sp.GoodSin.apply, sp.sin_twin_raises, [tensor("n")], **CPU)
    assert [(d.check, d.blame) for d in report.findings] == [("error", "twin")] * 2
    assert "ValueError: twin not written" in report.findings[0].detail


def test_flags_a_loss_that_cuts_its_own_graph_as_disconnected():
    report = oracle.verify(
        sp.cut_graph_loss,
        sp.exp_ratio_twin,
        [tensor("n", low=-3, high=3), tensor("n", low=-3, high=3)],
        **CPU,
    )
    assert not report.ok
    diags = {(d.argument, d.diagnosis, d.blame) for d in report.findings if d.check == "vjp"}
    assert diags == {(0, "disconnected", "torch"), (1, "disconnected", "torch")}
    # the jvp, which does not depend on the vjp, sees the same cut: a zero tangent
    assert {d.check for d in report.findings} <= {"vjp", "jvp"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_false_alarm_on_an_ill_conditioned_exp_ratio_over_minus_20_to_20(dtype):
    report = oracle.verify(
        sp.exp_ratio_loss,
        sp.exp_ratio_twin,
        [tensor("n", low=-20, high=20), tensor("n", low=-20, high=20)],
        dims={"n": (1, 64)},
        dtypes=[dtype],
        max_examples=200,
        **CPU,
    )
    assert report.ok, report


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_false_alarm_on_cross_entropy_over_logits_in_minus_50_to_50(dtype):
    report = oracle.verify(
        sp.cross_entropy,
        sp.cross_entropy_twin,
        [tensor("b c", low=-50, high=50), integers("b", low=0, high="c")],
        dims={"c": (2, 10), "b": (1, 16)},
        dtypes=[dtype],
        max_examples=200,
        **CPU,
    )
    assert report.ok, report


def test_a_bug_on_one_argument_of_several_is_reported_on_that_argument_only():
    report = oracle.verify(
        sp.ScaledSecondArgument.apply, sp.product_twin, [tensor("n"), tensor("n")], **CPU
    )
    assert {(d.argument, d.diagnosis, d.factor) for d in report.findings} == {(1, "scaled", 2.0)}


def test_the_same_seed_gives_the_same_report():
    a = oracle.verify(
        sp.ScaledExp.apply, jnp.exp, [tensor("n", low=-3, high=3)], seed=7, devices=["cpu"]
    )
    b = oracle.verify(
        sp.ScaledExp.apply, jnp.exp, [tensor("n", low=-3, high=3)], seed=7, devices=["cpu"]
    )
    assert a.to_dict()["divergences"] == b.to_dict()["divergences"]
    assert [r.examples for r in a.runs] == [r.examples for r in b.runs]


def test_leaves_global_settings_as_they_were():
    torch.manual_seed(123)
    before_rng = torch.random.get_rng_state()
    before = (
        jax.config.jax_enable_x64,
        torch.get_default_dtype(),
        jax.config.jax_default_matmul_precision,
        torch.backends.cuda.matmul.allow_tf32,
    )
    oracle.verify(sp.ScaledExp.apply, jnp.exp, [tensor("n", low=-3, high=3)], **CPU)
    after = (
        jax.config.jax_enable_x64,
        torch.get_default_dtype(),
        jax.config.jax_default_matmul_precision,
        torch.backends.cuda.matmul.allow_tf32,
    )
    assert after == before
    assert torch.equal(torch.random.get_rng_state(), before_rng)
    assert jnp.asarray(1.0).dtype == jnp.float32  # x64 was scoped to the float64 run


def test_values_respect_bounds_and_named_dimensions_are_shared():
    seen = []

    def torch_fn(x, y, idx):
        seen.append((x.detach().numpy().copy(), y.shape, idx.numpy().copy()))
        return x.sum() + y.sum()

    def twin(x, y, idx):
        return x.sum() + y.sum()

    oracle.verify(
        torch_fn,
        twin,
        [tensor("b n", low=-3, high=2), tensor("n"), integers("b", low=0, high="n")],
        dims={"n": (2, 5)},
        dtypes=["float64"],
        max_examples=30,
        **CPU,
    )
    assert seen
    for x, yshape, idx in seen:
        assert x.min() >= -3 and x.max() <= 2
        assert yshape == (x.shape[1],)  # "n" is one size across arguments
        assert idx.shape == (x.shape[0],) and (idx >= 0).all() and (idx < x.shape[1]).all()
        assert 2 <= x.shape[1] <= 5


def test_a_constant_output_structure_mismatch_is_a_forward_finding():
    report = oracle.verify(
        lambda x: (x * 2, x), lambda x: x * 2, [tensor("n")], dtypes=["float64"], **CPU
    )
    (d,) = report.findings
    assert d.check == "forward" and "2 output(s)" in d.detail


def test_a_wrong_forward_is_reported_first_as_a_forward_finding():
    report = oracle.verify(
        lambda x: x * 2, lambda x: x * 3, [tensor("n")], dtypes=["float64"], **CPU
    )
    # hypothesis shrinks each kind of failure on its own: the forward one shrinks to an
    # example where the outputs differ, the gradient one (2 vs 3) to x = 0
    assert report.findings[0].check == "forward"
    assert np.any(report.findings[0].example["args"][0] != 0)


def test_assert_twins_raises_assertion_error_with_the_report():
    with pytest.raises(AssertionError, match=r"\[oracle\].*scaled"):
        oracle.assert_twins(sp.ScaledExp.apply, jnp.exp, [tensor("n", low=-3, high=3)], **CPU)
    oracle.assert_twins(sp.GoodSin.apply, jnp.sin, [tensor("n")], max_examples=20, **CPU)


def test_report_to_dict_is_json_serialisable():
    import json

    report = oracle.verify(sp.ScaledExp.apply, jnp.exp, [tensor("n", low=-3, high=3)], **CPU)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["divergences"][0]["diagnosis"] == "scaled"
    assert data["divergences"][0]["example"]["args"][0]["dtype"] == "float64"


def test_user_tolerances_replace_the_rule():
    # a 1% error passes with rtol=0.05 and fails with the default rule
    fn = sp._fn(torch.sin, lambda x, g: g * torch.cos(x) * 1.01, "SinOnePercent")
    assert oracle.verify(fn.apply, jnp.sin, [tensor("n")], rtol=0.05, atol=1e-6, **CPU).ok
    assert not oracle.verify(fn.apply, jnp.sin, [tensor("n")], **CPU).ok


def test_large_inputs_are_filled_with_many_distinct_values():
    seen = []

    def torch_fn(x):
        seen.append(np.unique(x.detach().numpy()).size / x.numel())
        return x * 1.0

    oracle.verify(
        torch_fn,
        lambda x: x * 1.0,
        [tensor("n")],
        dims={"n": (20000, 20000)},
        dtypes=["float32"],
        max_examples=5,
        checks=["vjp"],  # the contract check also calls torch_fn on expanded copies
        **CPU,
    )
    # hypothesis's arrays() alone would repeat one fill value over most of the array
    assert min(seen) > 0.9
