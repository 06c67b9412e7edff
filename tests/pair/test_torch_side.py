"""oracle.pair.torch_side: torch's forward and autograd.grad on one example, as numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracle.inputs.specs import ConstantSpec, IntegersSpec, TensorSpec
from oracle.pair.factories import Factory
from oracle.pair.guard import SideError
from oracle.pair.torch_side import TorchSide

X = TensorSpec(("n",), grad=True)
Y = TensorSpec(("n",), grad=True)
W = TensorSpec(("n",), grad=False)
X_VALUE = np.array([1.0, 2.0, 3.0])
CT = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def test_returns_outputs_and_the_vector_jacobian_product_with_the_cotangent():
    side = TorchSide(lambda x: x * x, [X])
    out = side.run([X_VALUE], "float64", "cpu", [CT])
    assert out.leaves[0].tolist() == [1.0, 4.0, 9.0]
    # d(x^2) = 2x, times the cotangent
    np.testing.assert_allclose(out.grads[0], 2 * X_VALUE * CT)
    assert out.connected == [True]
    assert out.grads[0].dtype == np.float64


def test_gradients_only_for_differentiated_arguments():
    side = TorchSide(
        lambda x, w, i, c: (x * w)[i] * c, [X, W, IntegersSpec(("k",), 0, 2), ConstantSpec(3.0)]
    )
    w = np.array([2.0, 3.0, 4.0])
    out = side.run(
        [X_VALUE, w, np.array([0, 2]), 3.0], "float32", "cpu", [np.ones(2, np.float32) * 0.5]
    )
    assert len(out.grads) == 1  # x only: w has grad=False, i and c are no tensors to differentiate
    # (x * w)[[0, 2]] * 3 with cotangent 0.5: 1.5 * w at 0 and 2, nothing at 1
    np.testing.assert_allclose(out.grads[0], [3.0, 0.0, 6.0])
    assert out.grads[0].dtype == np.float32


def test_an_input_the_output_does_not_depend_on_gets_none():
    side = TorchSide(lambda x, y: x.sin(), [X, Y])
    out = side.run([X_VALUE, X_VALUE], "float64", "cpu", [CT])
    assert out.grads[0] is not None and out.grads[1] is None


def test_a_disconnected_output_gives_no_gradient_at_all():
    side = TorchSide(lambda x: x.detach() * 2, [X])
    out = side.run([X_VALUE], "float64", "cpu", [CT])
    assert out.connected == [False] and out.grads == [None]


def test_an_integer_output_is_not_connected_and_gets_no_cotangent():
    side = TorchSide(lambda x: (x * 2, x.argmax()), [X])
    out = side.run([X_VALUE], "float64", "cpu", [CT, None])
    assert out.connected == [True, False]
    assert out.leaves[1] == 2
    np.testing.assert_allclose(out.grads[0], 2 * CT)


def test_backward_false_runs_the_forward_only():
    calls = []

    class Spy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    out = TorchSide(Spy.apply, [X]).run([X_VALUE], "float64", "cpu", [CT], backward=False)
    assert out.grads == [None] and calls == []
    assert out.leaves[0].tolist() == X_VALUE.tolist()


@pytest.mark.parametrize(
    "fn, stage",
    [
        pytest.param(lambda x: x[10], "forward", id="forward-raises"),
        pytest.param(lambda x: "not a tensor", "forward", id="unflattenable-output"),
    ],
)
def test_a_failing_forward_is_a_torch_side_error(fn, stage):
    with pytest.raises(SideError) as info:
        TorchSide(fn, [X]).run([X_VALUE], "float64", "cpu", [CT])
    assert (info.value.side, info.value.stage) == ("torch", stage)


def test_a_failing_backward_is_a_torch_side_error_at_the_backward():
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            raise ValueError("no")

    with pytest.raises(SideError) as info:
        TorchSide(Broken.apply, [X]).run([X_VALUE], "float64", "cpu", [CT])
    assert (info.value.side, info.value.stage) == ("torch", "backward")


def test_a_factory_is_built_for_the_dtype_under_test():
    built = []

    def build(dtype, device):
        built.append((dtype, device))
        return lambda x: x * torch.ones(3, dtype=dtype)

    side = TorchSide(Factory(build), [X])
    out = side.run([X_VALUE], "float32", "cpu", [CT])
    assert out.leaves[0].dtype == np.float32
    side.run([X_VALUE], "float32", "cpu", [CT])
    assert built == [(torch.float32, "cpu")]  # built once per dtype and device


def test_phi_is_the_cotangent_dot_the_output_in_float64():
    side = TorchSide(lambda x: (x * x, x.argmax()), [X])
    ct = np.array([1.0, 0.5, -1.0])
    # <ct, x^2> = 1 + 2 - 9
    assert side.phi([X_VALUE], "cpu", [ct, None]) == -6.0
