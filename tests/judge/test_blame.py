"""Blame, kinks and diagnosis (issue #3): each wrong backward caught for the right reason,
each legitimate kink left alone."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import torch

import oracle
from oracle import choice, tensor
from oracle.vocabulary import EXTRA
from tests import specimens as sp

CPU = {"devices": ["cpu"], "seed": 0}


def only(report):
    """The one kind of first-order finding the report shows, the same in every dtype
    run (the checks beyond the vjp may show the same defect in their own mode: a graph
    cut inside gives a zero jvp too)."""
    kinds = {
        (d.check, d.argument, d.blame, d.diagnosis) for d in report.findings if d.check not in EXTRA
    }
    assert len(kinds) == 1, report
    return kinds.pop()


@pytest.mark.parametrize(
    ("torch_fn", "twin", "inputs", "expected"),
    [
        pytest.param(
            sp.ScaledExp.apply,
            jnp.exp,
            [tensor("n", low=-3, high=3)],
            ("vjp", 0, "torch", "scaled"),
            id="scaled",
        ),
        pytest.param(
            sp.FlippedSin.apply,
            jnp.sin,
            [tensor("n")],
            ("vjp", 0, "torch", "sign_flipped"),
            id="sign_flipped",
        ),
        pytest.param(
            sp.MatVecTransposed.apply,
            sp.matvec_twin,
            [tensor("k k"), tensor("k")],
            ("vjp", 0, "torch", "transposed"),
            id="transposed",
        ),
        pytest.param(
            sp.SoftplusZeroNegative.apply,
            lambda x: jnp.logaddexp(x, 0.0),
            [tensor("n")],
            ("vjp", 0, "torch", "zero"),
            id="zero",
        ),
        pytest.param(
            sp.cut_graph_loss,
            sp.exp_ratio_twin,
            [tensor("n", low=-3, high=3), tensor("n", grad=False)],
            ("vjp", 0, "torch", "disconnected"),
            id="disconnected",
        ),
        pytest.param(
            sp.SquareIgnoresGrad.apply,
            sp.square,
            [tensor("n")],
            ("vjp", 0, "torch", "ignores_grad_output"),
            id="ignores_grad_output",
        ),
        pytest.param(
            sp.NaiveSigmoid.apply,
            lambda x: 1 / (1 + jnp.exp(-x)),
            [tensor("n", low=750, high=1000)],
            ("vjp", 0, "torch", "nonfinite"),
            id="nonfinite",
        ),
        pytest.param(
            sp.RaisingBackward.apply,
            jnp.sin,
            [tensor("n")],
            ("error", None, "torch", "error"),
            id="error",
        ),
        pytest.param(
            sp.ShiftedSin.apply,
            jnp.sin,
            [tensor("n")],
            ("vjp", 0, "torch", "mismatch"),
            id="mismatch",
        ),
    ],
)
def test_each_wrong_backward_is_classified_and_blamed_on_torch(torch_fn, twin, inputs, expected):
    report = oracle.verify(torch_fn, twin, inputs, **CPU)
    assert {d.dtype for d in report.findings} == {"float32", "float64"}
    assert only(report) == expected


def test_scaled_reports_the_factor():
    # CustomExp / SmoothRound in the seeds: 2 x the true derivative
    report = oracle.verify(sp.ScaledExp.apply, jnp.exp, [tensor("n", low=-3, high=3)], **CPU)
    assert {d.factor for d in report.findings} == {2.0}
    assert "2 x the reference on every element" in report.findings[0].detail


def test_a_wrong_twin_with_a_correct_backward_is_blamed_on_the_twin():
    report = oracle.verify(sp.square, sp.square_twin_stopped, [tensor("n")], **CPU)
    assert {(d.blame, d.argument) for d in report.findings} == {("twin", 0)}


def safe_sqrt(x):
    return torch.where(x > 0, torch.where(x > 0, x, 1.0).sqrt(), 0.0)


def test_a_twin_with_nan_gradients_is_blamed_on_the_twin():
    def twin_nan(x):  # the jnp.where trap: the untaken branch's NaN gradient leaks through
        return jnp.where(x > 0, jnp.sqrt(x), 0.0)

    def twin_safe(x):  # the double-where fix
        return jnp.where(x > 0, jnp.sqrt(jnp.where(x > 0, x, 1.0)), 0.0)

    report = oracle.verify(safe_sqrt, twin_nan, [tensor("n", low=-2, high=2)], **CPU)
    assert {(d.blame, d.diagnosis) for d in report.findings} == {("twin", "nonfinite")}
    assert oracle.verify(safe_sqrt, twin_safe, [tensor("n", low=-2, high=2)], **CPU).ok


KINKS = [
    pytest.param(sp.abs_loss, sp.abs_loss_twin, [tensor("n", low=-2, high=2)], {}, id="abs-at-0"),
    pytest.param(
        sp.hinge,
        sp.hinge_twin,
        [choice("n", [-1.0, 1.0, 0.5, 2.0], grad=True), choice("n", [-1.0, 1.0]), 1.0],
        {},
        id="hinge-at-margin",
    ),
    pytest.param(
        sp.max_dim, sp.max_dim_twin, [choice("b n", [0.0, 1.0, 2.0], grad=True)], {}, id="max-ties"
    ),
    pytest.param(
        sp.clamp,
        sp.clamp_twin,
        [choice("n", [-1.0, 1.0, 0.5, -2.0], grad=True)],
        {},
        id="clamp-bounds",
    ),
    pytest.param(
        sp.row_norm,
        sp.row_norm_twin,
        [choice("b n", [0.0, 0.0, 1.5, -2.0], grad=True)],
        {},
        id="norm-of-zero-row",
    ),
    pytest.param(
        sp.sparsemax,
        sp.sparsemax_twin,
        [choice("b n", [0.0, 0.5, 1.0, -0.5, 1.5], grad=True)],
        {"n": (2, 5)},
        id="sparsemax-support-boundary",
    ),
]


@pytest.mark.parametrize(("torch_fn", "twin", "inputs", "dims"), KINKS)
def test_kinks_are_not_flagged_over_200_examples(torch_fn, twin, inputs, dims):
    report = oracle.verify(torch_fn, twin, inputs, dims=dims or None, max_examples=200, **CPU)
    assert report.ok, report
    # the inputs are built to sit on kinks often: the kinks were met, and listed
    assert all(r.kinks > 0 for r in report.runs), report.runs
    assert report.kinks and all(d.blame == "kink" for d in report.kinks)


def test_a_bug_only_below_minus_one_next_to_a_kink_at_zero_is_flagged():
    report = oracle.verify(
        sp.AbsWrongBelowMinusOne.apply, jnp.abs, [tensor("n", low=-3, high=3)], **CPU
    )
    assert {(d.blame, d.argument) for d in report.findings} == {("torch", 0)}
    for d in report.findings:
        assert (d.example["args"][0] < -1).any()


def test_a_huber_backward_with_its_boundary_at_2_instead_of_1_is_flagged():
    report = oracle.verify(
        sp.HuberWrongBoundary.apply, sp.huber_twin, [tensor("n", low=-4, high=4)], **CPU
    )
    assert {(d.blame, d.argument) for d in report.findings} == {("torch", 0)}
    for d in report.findings:
        x = abs(d.example["args"][0])
        assert (x > 1).any()  # beyond 1 the backward is wrong; within it, right


def test_the_correct_huber_backward_passes():
    report = oracle.verify(
        sp.Huber.apply, sp.huber_twin, [tensor("n", low=-4, high=4)], max_examples=150, **CPU
    )
    assert report.ok, report
