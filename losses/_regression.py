r"""Regression losses built from differentiable torch operations (seeds 000, 001, 003).

Every one of these is differentiated by autograd (no hand-written backward); the oracle
checks that the composition does what its twin says, including at its kinks.
Hyper-parameters that the seeds pass to ``__init__`` are drawn per example: each
``nn.Module`` is registered through a function that builds it from that argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import torch
import torch.nn as nn

import oracle
from oracle import tensor

__all__ = [
    "ProxyLoss",
    "proxy_round_l1",
    "proxy_round_l1_jax",
    "ScaledMSELoss",
    "scaled_mse",
    "scaled_mse_jax",
    "ThresholdedLoss",
    "thresholded_mse",
    "thresholded_mse_jax",
    "WeightedMSE",
    "weighted_mse",
    "weighted_mse_jax",
    "SigmoidWeightedAbsLoss",
    "sigmoid_weighted_abs_jax",
]

# A prediction and a target of the same shape, both differentiated (the losses below are
# as much functions of the target as of the prediction).
_PAIR = [tensor("b n", low=-50.0, high=50.0), tensor("b n", low=-50.0, high=50.0)]


def _positive_float(low: float, high: float) -> st.SearchStrategy[float]:
    # float32-representable: the float32 and float64 runs of one example then use the
    # same hyper-parameter, and a seed that builds a float32 tensor from it loses nothing.
    return st.floats(low, high, width=32)


class ProxyLoss(nn.Module):
    r"""Seed 000's ``ProxyLoss``: L1 plus a penalty toward the rounded input.

    .. math::

        L_k = \frac1N \sum_i |x_i - t_i| + \tfrac12 |x_k - \operatorname{round}(x_k)|,
        \qquad
        \frac{\partial L_k}{\partial x_i} = \frac{\operatorname{sign}(x_i - t_i)}{N}
        + \tfrac12 [i = k] \operatorname{sign}(x_k - \operatorname{round}(x_k))

    (``round`` has derivative zero almost everywhere.) The seed adds the scalar L1 mean
    to the *unreduced* penalty, so the loss has the shape of the input, and the seed's
    own ``loss.backward()`` raises ("grad can be implicitly created only for scalar
    outputs"). The oracle feeds a cotangent and checks the function as written; to train
    with it, reduce it (``.mean()``). Kinks: :math:`x_i = t_i`, integers and
    half-integers.
    """

    def __init__(self):
        super().__init__()
        self.l1_loss = torch.nn.L1Loss()

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        external_result = self.non_differentiable_func(input)
        loss = self.l1_loss(input, target) + 0.5 * torch.abs(input - external_result)
        return loss

    def non_differentiable_func(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)


def proxy_round_l1_jax(input: jax.Array, target: jax.Array) -> jax.Array:
    """JAX twin of :class:`ProxyLoss` (``jnp.round`` rounds half to even, as torch does)."""
    return jnp.mean(jnp.abs(input - target)) + 0.5 * jnp.abs(input - jnp.round(input))


@oracle.twin(proxy_round_l1_jax, inputs=_PAIR, name="proxy_round_l1")
def proxy_round_l1(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:class:`ProxyLoss` as a function."""
    return ProxyLoss()(input, target)


class ScaledMSELoss(nn.Module):
    r"""Seed 001's ``ScaledMSELoss``: squared errors larger than 1 in size are scaled.

    .. math::

        L = \frac1N \sum_i s_i d_i^2, \quad d_i = p_i - t_i, \quad
        s_i = \begin{cases} s & |d_i| > 1 \\ 1 & \text{otherwise} \end{cases}, \qquad
        \frac{\partial L}{\partial p_i} = -\frac{\partial L}{\partial t_i} = \frac{2 s_i d_i}{N}

    :math:`|d_i| = 1` is a jump of the loss (from :math:`d^2` to :math:`s d^2`), not only
    of its gradient; both sides take the lower branch there.
    """

    def __init__(self, scale_factor: float):
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        squared_error = (prediction - target) ** 2
        scaling = torch.where(
            torch.abs(prediction - target) > 1, self.scale_factor, torch.tensor(1.0)
        )
        return torch.mean(squared_error * scaling)


def scaled_mse_jax(
    prediction: jax.Array, target: jax.Array, scale_factor: float | jax.Array
) -> jax.Array:
    """JAX twin of :func:`scaled_mse`."""
    squared_error = (prediction - target) ** 2
    scaling = jnp.where(jnp.abs(prediction - target) > 1, scale_factor, 1.0)
    return jnp.mean(squared_error * scaling)


@oracle.twin(
    scaled_mse_jax,
    # The seed's torch.tensor(1.0) makes `scaling` float32 even for float64 inputs; a
    # float32-representable scale_factor keeps that exact.
    inputs=[*_PAIR, _positive_float(0.5, 4.0)],
    name="scaled_mse",
)
def scaled_mse(prediction: torch.Tensor, target: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """:class:`ScaledMSELoss` with its ``scale_factor`` as an argument."""
    return ScaledMSELoss(scale_factor)(prediction, target)


class ThresholdedLoss(nn.Module):
    r"""Seed 001's ``ThresholdedLoss``: squared error, smoothly cut off beyond a threshold.

    .. math::

        L = \frac1N \sum_i \sigma\big(20(\tau - |d_i|)\big)\, d_i^2, \quad d_i = p_i - t_i,
        \qquad
        \frac{\partial L}{\partial p_i} = \frac1N \Big(2 d_i\, \sigma_i
        - 20 \operatorname{sign}(d_i)\, \sigma_i (1 - \sigma_i)\, d_i^2\Big)

    with :math:`\sigma_i = \sigma(20(\tau - |d_i|))`, and
    :math:`\partial L / \partial t_i = -\partial L / \partial p_i`. The kink of :math:`|d|`
    at 0 is multiplied by :math:`d^2`, so the loss is smooth there.
    """

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        absolute_diff = torch.abs(prediction - target)
        cut_off_mask = torch.sigmoid(20 * (self.threshold - absolute_diff))
        return torch.mean(cut_off_mask * (prediction - target) ** 2)


def thresholded_mse_jax(
    prediction: jax.Array, target: jax.Array, threshold: float | jax.Array
) -> jax.Array:
    """JAX twin of :func:`thresholded_mse`."""
    absolute_diff = jnp.abs(prediction - target)
    cut_off_mask = jax.nn.sigmoid(20 * (threshold - absolute_diff))
    return jnp.mean(cut_off_mask * (prediction - target) ** 2)


@oracle.twin(
    thresholded_mse_jax,
    # Most differences fall well inside or well beyond the threshold with a wide range;
    # [-5, 5] puts many of them on the sigmoid's slope, where the gradient is subtle.
    inputs=[
        tensor("b n", low=-5.0, high=5.0),
        tensor("b n", low=-5.0, high=5.0),
        _positive_float(0.125, 3.0),
    ],
    name="thresholded_mse",
)
def thresholded_mse(
    prediction: torch.Tensor, target: torch.Tensor, threshold: float
) -> torch.Tensor:
    """:class:`ThresholdedLoss` with its ``threshold`` as an argument."""
    return ThresholdedLoss(threshold)(prediction, target)


class WeightedMSE(nn.Module):
    r"""Seed 003's ``WeightedMSE``: squared errors weighted per sample.

    .. math::

        L = \frac1N \sum_i w_i (p_i - t_i)^2, \qquad
        \frac{\partial L}{\partial p_i} = -\frac{\partial L}{\partial t_i}
        = \frac{2 w_i (p_i - t_i)}{N}

    The weights broadcast against the predictions, so they must have a shape that lines
    up with them. In the seed they do not: ``weights`` has shape ``(10,)`` and the
    predictions ``(10, 1)``, so the product is a ``(10, 10)`` matrix and the mean gives
    every sample the *average* weight; the per-sample weighting is lost without an
    error. Give the weights the predictions' shape (``(10, 1)``), as the catalog does.
    """

    def __init__(self, weights: Sequence[float] | torch.Tensor):
        super().__init__()
        # as_tensor: no copy (and no warning) when given a tensor; a buffer so that
        # .to(device) moves it. The seed's requires_grad=False is the default.
        self.register_buffer("weights", torch.as_tensor(weights))

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        loss = torch.mean(self.weights * (y_pred - y_true) ** 2)
        return loss


def weighted_mse_jax(y_pred: jax.Array, y_true: jax.Array, weights: jax.Array) -> jax.Array:
    """JAX twin of :func:`weighted_mse`."""
    return jnp.mean(weights * (y_pred - y_true) ** 2)


@oracle.twin(
    weighted_mse_jax,
    inputs=[
        tensor("b n", low=-50.0, high=50.0),
        tensor("b n", low=-50.0, high=50.0),
        # non-negative per-sample weights, not learned (the seed's are 1, 2 or 3)
        tensor("b n", low=0.0, high=3.0, grad=False),
    ],
    name="weighted_mse",
)
def weighted_mse(y_pred: torch.Tensor, y_true: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:class:`WeightedMSE` built from ``weights`` of the predictions' shape."""
    return WeightedMSE(weights)(y_pred, y_true)


def sigmoid_weighted_abs_jax(y_pred: jax.Array, y_true: jax.Array) -> jax.Array:
    """JAX twin of :class:`SigmoidWeightedAbsLoss`."""
    diff = jnp.abs(y_pred - y_true)
    return jnp.mean(jax.nn.sigmoid(diff) * diff)


@oracle.twin(sigmoid_weighted_abs_jax, inputs=_PAIR, name="sigmoid_weighted_abs")
class SigmoidWeightedAbsLoss(nn.Module):
    r"""Seed 003's ``CustomLoss`` (renamed: seed 001 has a ``CustomLoss`` too).

    .. math::

        L = \frac1N \sum_i \sigma(|d_i|)\, |d_i|, \quad d_i = p_i - t_i, \qquad
        \frac{\partial L}{\partial p_i} = \frac{\operatorname{sign}(d_i)}{N}
        \Big(\sigma(|d_i|) + |d_i|\, \sigma(|d_i|)\big(1 - \sigma(|d_i|)\big)\Big)

    and :math:`\partial L / \partial t_i = -\partial L / \partial p_i`. :math:`d_i = 0` is a
    kink (slopes :math:`\pm\frac12`).
    """

    def __init__(self):
        super().__init__()
        self.activation = nn.Sigmoid()

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        diff = torch.abs(y_pred - y_true)
        weighted_diff = self.activation(diff) * diff
        loss = torch.mean(weighted_diff)
        return loss
