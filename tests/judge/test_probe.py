"""oracle.judge.probe: finite differences and kinks on plain numpy phis, and the Probe's
float64 evaluations of both sides (tests/judge/test_probe_and_diagnosis.py has more)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracle.inputs.specs import TensorSpec
from oracle.judge.probe import Probe, agrees, coordinate_kinks, direction, rounding_noise, shift
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide


def test_shift_moves_one_argument_and_leaves_the_others():
    xs = [np.zeros(2), np.ones(2)]
    moved = shift(xs, 1, np.array([1.0, -1.0]), 0.5)
    assert moved[0] is xs[0] and moved[1].tolist() == [1.5, 0.5]
    assert xs[1].tolist() == [1.0, 1.0]


def test_direction_is_scaled_to_a_largest_element_of_one_and_finite():
    assert direction(np.array([2.0, -4.0])).tolist() == [0.5, -1.0]
    assert direction(np.array([np.nan, 0.5])).tolist() == [1.0, 0.5]  # non-finite: 1
    assert direction(np.zeros(2)).tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "estimate, err, claim, ok",
    [
        pytest.param(3.0, 1e-8, 3.0 + 1e-6, True, id="within-1e-5-relative"),
        pytest.param(3.0, 1e-8, 3.1, False, id="off"),
        pytest.param(3.0, 0.01, 3.1, True, id="within-20-errors"),
        pytest.param(3.0, 0.0, np.inf, False, id="infinite-claim"),
        pytest.param(np.nan, 0.0, 3.0, False, id="nan-estimate"),
    ],
)
def test_agrees_allows_20_error_estimates_and_1e_5_relative(estimate, err, claim, ok):
    assert agrees(estimate, err, claim) is ok


def test_coordinate_kinks_finds_the_coordinates_on_a_kink_with_their_one_sided_slopes():
    # phi = |x0| + |x1 - 1| + x2^2 at (0, 1, 0.5): kinks at coordinates 0 and 1 only
    phi = lambda xs: float(abs(xs[0][0]) + abs(xs[0][1] - 1) + xs[0][2] ** 2)  # noqa: E731
    xs = [np.array([0.0, 1.0, 0.5])]
    claims_t, claims_j = np.array([1.0, 1.0, 1.0]), np.array([-1.0, 0.0, 2.0])
    found = coordinate_kinks(phi, xs, 0, claims_t, claims_j)
    assert [idx for idx, _, _ in found] == [(0,), (1,)]
    assert found[0][1:] == pytest.approx((-1.0, 1.0))


def test_coordinate_kinks_skips_coordinates_where_the_claims_agree():
    phi = lambda xs: float(abs(xs[0][0]))  # noqa: E731
    assert coordinate_kinks(phi, [np.array([0.0])], 0, np.array([1.0]), np.array([1.0])) == []


class DoubledSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 4 * x * g


@pytest.fixture
def probe():
    specs = (TensorSpec(("n",)),)
    twin = TwinSide(lambda x: x * x, specs)
    p = Probe(
        TorchSide(DoubledSquare.apply, specs),
        twin,
        [np.array([1.0, -2.0])],
        [0],
        [np.array([0.5, 1.0])],
        "cpu",
    )
    yield p
    twin.release()


def test_the_probe_evaluates_both_sides_in_float64_at_a_moved_point(probe):
    t, j = probe.grads([np.array([3.0, 1.0])])
    assert t[0].tolist() == [6.0, 4.0] and j[0].tolist() == [3.0, 2.0]  # 4x ct vs 2x ct
    assert t[0].dtype == j[0].dtype == np.float64
    (g,) = probe.torch_grads(probe.x, [np.array([1.0, 1.0])])
    assert g.tolist() == [4.0, -8.0]


def test_phi_is_the_same_on_both_sides_when_the_forwards_agree(probe):
    # <ct, x^2> at (1, -2) = 0.5 + 4
    assert probe.phi(probe.x, "torch") == probe.phi(probe.x, "twin") == 4.5


def test_rounding_noise_is_at_least_100_ulps_of_the_largest_term(probe):
    phi = lambda xs: probe.phi(xs, "twin")  # noqa: E731
    noise = rounding_noise(probe, phi, probe.x, 0)
    # largest input 2 x largest cotangent 1, or phi = 4.5: 100 eps x 4.5
    assert noise >= 100 * np.finfo(np.float64).eps * 4.5
    assert noise < 1e-9
