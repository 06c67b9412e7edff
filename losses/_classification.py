r"""Classification losses: class-weighted cross-entropy (seed 000) and a hinge (seed 003).

Seed 000's ``WeightedCrossEntropyLoss`` means to weight each class, but it passes the
per-*sample* weights ``weights[targets]`` as ``F.cross_entropy``'s ``weight=``, which
``F.cross_entropy`` reads as one weight per *class*. It is kept as the specimen
``weighted_cross_entropy_seed``; :class:`ClassWeightedCrossEntropyLoss` does what it
means to do.
"""

from __future__ import annotations

from collections.abc import Sequence

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import torch
import torch.nn as nn
import torch.nn.functional as F

import oracle
from oracle import choice, integers, tensor

__all__ = [
    "WeightedCrossEntropyLoss",
    "weighted_cross_entropy_seed",
    "ClassWeightedCrossEntropyLoss",
    "weighted_cross_entropy",
    "weighted_cross_entropy_jax",
    "HingeLossMargin",
    "hinge_margin",
    "hinge_margin_jax",
]

# Logits over a wide range, a batch of b samples, c classes (at least two), and one
# positive weight per class: pre-computed weights, never differentiated.
_CE_INPUTS = [
    tensor("b c", low=-50.0, high=50.0),
    integers("b", low=0, high="c"),
    tensor("c", low=0.05, high=1.0, grad=False),
]
_CE_DIMS = {"b": (1, 8), "c": (2, 6)}


def weighted_cross_entropy_jax(
    inputs: jax.Array, targets: jax.Array, weights: jax.Array
) -> jax.Array:
    r"""JAX twin of both cross-entropies: the class-weighted mean the seed means.

    The seed's intent, "per-sample weights ``weights[targets]``", and torch's per-class
    ``weight=`` are the same loss when written out, so one twin serves both.
    """
    log_probs = jax.nn.log_softmax(inputs, axis=-1)
    nll = -jnp.take_along_axis(log_probs, targets[:, None], axis=-1)[:, 0]
    sample_weights = weights[targets]
    return jnp.sum(sample_weights * nll) / jnp.sum(sample_weights)


class WeightedCrossEntropyLoss(nn.Module):
    r"""Seed 000's ``WeightedCrossEntropyLoss`` as written, a specimen.

    What it means to compute, with :math:`w` one weight per class:

    .. math::

        L = \frac{\sum_i w_{t_i}\, \ell_i}{\sum_i w_{t_i}}, \quad
        \ell_i = -\log \operatorname{softmax}(x_i)_{t_i}, \qquad
        \frac{\partial L}{\partial x_{ic}} =
        \frac{w_{t_i}\big(\operatorname{softmax}(x_i)_c - [c = t_i]\big)}{\sum_k w_{t_k}}

    What is wrong: it passes ``weights[targets]`` (one weight per *sample*, length
    :math:`b`) as ``F.cross_entropy(..., weight=)``, which expects one weight per *class*
    (length :math:`C`). When :math:`b \ne C`, ``F.cross_entropy`` raises ("weight tensor
    should be defined either for all C classes"); when :math:`b = C` it silently weights
    sample :math:`i` by :math:`w_{t_{t_i}}`, a different loss. The weights are also stored
    as float32, so any float64 input raises a dtype error. ``torch.no_grad()`` around the
    lookup changes nothing: the weights never needed a gradient.
    :class:`ClassWeightedCrossEntropyLoss` is the corrected version.
    """

    def __init__(self, weights: Sequence[float]):
        super().__init__()
        # A buffer rather than a plain attribute (the seed's), so that .to(device) moves it.
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            weighted_targets = self.weights[targets]
        loss = F.cross_entropy(inputs, targets, weight=weighted_targets)
        return loss


@oracle.twin(
    weighted_cross_entropy_jax,
    inputs=_CE_INPUTS,
    dims=_CE_DIMS,
    known_divergence=oracle.Known(
        why="per-sample weights weights[targets] are passed as F.cross_entropy's per-class "
        "weight=: an error when batch != classes (and in float64), a different loss when equal",
        check=("error", "forward"),
    ),
    name="weighted_cross_entropy_seed",
)
def weighted_cross_entropy_seed(
    inputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """:class:`WeightedCrossEntropyLoss` built from ``weights`` (a list, as in the seed)."""
    return WeightedCrossEntropyLoss(weights.tolist()).to(inputs.device)(inputs, targets)


class ClassWeightedCrossEntropyLoss(nn.Module):
    r"""Seed 000's weighted cross-entropy as it means to be: one weight per class.

    .. math::

        L = \frac{\sum_i w_{t_i}\, \ell_i}{\sum_i w_{t_i}}, \quad
        \ell_i = -\log \operatorname{softmax}(x_i)_{t_i}, \qquad
        \frac{\partial L}{\partial x_{ic}} =
        \frac{w_{t_i}\big(\operatorname{softmax}(x_i)_c - [c = t_i]\big)}{\sum_k w_{t_k}}

    The per-class weights go to ``F.cross_entropy(..., weight=)`` directly, in the dtype
    of the logits.
    """

    def __init__(self, weights: Sequence[float] | torch.Tensor):
        super().__init__()
        self.register_buffer("weights", torch.as_tensor(weights))

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(inputs, targets, weight=self.weights.to(inputs))


@oracle.twin(
    weighted_cross_entropy_jax, inputs=_CE_INPUTS, dims=_CE_DIMS, name="weighted_cross_entropy"
)
def weighted_cross_entropy(
    inputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """:class:`ClassWeightedCrossEntropyLoss` built from the per-class ``weights``."""
    return ClassWeightedCrossEntropyLoss(weights)(inputs, targets)


class HingeLossMargin(nn.Module):
    r"""Seed 003's ``HingeLossMargin``: a hinge with labels in :math:`\{-1, 1\}`.

    .. math::

        L = \frac1N \sum_i \max(0,\ 1 - y_i p_i + m), \qquad
        \frac{\partial L}{\partial p_i} = -\frac{y_i}{N}\,[1 - y_i p_i + m > 0]

    :math:`y_i p_i = 1 + m` is a kink: ``torch.max`` of two tensors (``torch.maximum``)
    splits the gradient in half there, ``jnp.maximum`` too; both are valid subgradients.
    """

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        loss = torch.max(torch.tensor(0.0), 1 - y_true * y_pred + self.margin)
        loss = torch.mean(loss)
        return loss


def hinge_margin_jax(
    y_pred: jax.Array, y_true: jax.Array, margin: float | jax.Array = 1.0
) -> jax.Array:
    """JAX twin of :func:`hinge_margin`."""
    return jnp.mean(jnp.maximum(0.0, 1 - y_true * y_pred + margin))


@oracle.twin(
    hinge_margin_jax,
    inputs=[
        tensor("b", low=-5.0, high=5.0),
        choice("b", [-1.0, 1.0]),
        # float32-representable, so that both dtypes see the same margin
        st.floats(0.0, 2.0, width=32),
    ],
    dims={"b": (1, 16)},
    name="hinge_margin",
)
def hinge_margin(y_pred: torch.Tensor, y_true: torch.Tensor, margin: float) -> torch.Tensor:
    """:class:`HingeLossMargin` with its ``margin`` as an argument."""
    return HingeLossMargin(margin)(y_pred, y_true)
