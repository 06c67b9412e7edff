"""oracle.pictures: the three curves through a finding, and its picture, on a hand-made
finding (no search)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from oracle.inputs.specs import TensorSpec
from oracle.pictures import line_data, plot, plot_divergence
from oracle.report.records import Divergence, Report, RunSummary

SPECS = (TensorSpec(("n",), -3.0, 3.0),)


class DoubledExp(torch.autograd.Function):
    """exp whose backward doubles the derivative."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return 2 * g * y


def finding(replay=True, check="vjp"):
    d = Divergence(check, 0, "torch", "scaled", "x2", "float64", "cpu", name="exp")
    if replay:
        d.replay_data = {
            "torch_fn": DoubledExp.apply,
            "jax_fn": jnp.exp,
            "specs": SPECS,
            "values": [np.array([0.5, -1.0])],
            "cotangent_seed": 3,
        }
    return d


def test_line_data_shows_torch_at_twice_the_twin_and_finite_differences_on_the_twin():
    data = line_data(finding(), points=5)
    # a line through the example (s = 0 in the middle), half its largest element wide or 0.5
    np.testing.assert_allclose(data["s"], [-0.5, -0.25, 0.0, 0.25, 0.5])
    np.testing.assert_allclose(data["torch"], 2 * data["twin"], rtol=1e-12)
    np.testing.assert_allclose(data["fd"], data["twin"], rtol=1e-6)
    assert np.all(np.diff(np.abs(data["twin"])) != 0)  # exp changes along the line


def test_a_finding_without_an_example_cannot_be_drawn():
    with pytest.raises(ValueError, match="exp: this finding carries no example to plot"):
        line_data(finding(replay=False))


def test_a_report_without_a_gradient_finding_cannot_be_drawn(tmp_path):
    report = Report("exp", [RunSummary("float64", "cpu")], [finding(check="forward")])
    with pytest.raises(ValueError, match="exp: no gradient divergence to plot"):
        plot(report, str(tmp_path / "x.png"))


def test_the_picture_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_divergence(finding(), str(tmp_path / "exp.png"), points=3)
    assert open(path, "rb").read()[:4] == b"\x89PNG"
