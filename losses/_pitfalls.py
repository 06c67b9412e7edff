r"""Seed 002's pitfalls: what keeps the autograd graph intact and what cuts it.

The seed claims that a loss must call ``requires_grad_()`` on its intermediate results
"or the graph will be disconnected". It need not: every result computed from tensors
that require grad is already in the graph, and ``requires_grad_()`` on it does nothing.
Once a value has left the graph (``.detach()``, ``.numpy()``, ``.item()``,
``torch.no_grad()``), ``requires_grad_()`` cannot bring it back: it makes a new leaf, and
no gradient reaches the inputs. The intact losses (``exp_ratio``, ``max_concat``) sit
beside the pitfalls that cut them; the pitfalls are specimens that the oracle must flag.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import oracle
from oracle import tensor

__all__ = [
    "ExpRatioLoss",
    "ExpRatioLossCutGraph",
    "exp_ratio_jax",
    "max_concat",
    "max_concat_indices",
    "max_concat_jax",
    "no_grad_l1",
    "no_grad_l1_jax",
]

# exp overflows float32 beyond ~88; the ratio of two exponentials in [-20, 20] reaches
# e^40 ~ 2e17, still far inside it.
_EXP_PAIR = [tensor("b n", low=-20.0, high=20.0), tensor("b n", low=-20.0, high=20.0)]
# Two score tables with the same batch and different widths, concatenated along dim 1.
_CONCAT_PAIR = [tensor("b n", low=-50.0, high=50.0), tensor("b m", low=-50.0, high=50.0)]


def exp_ratio_jax(preds: jax.Array, targets: jax.Array) -> jax.Array:
    """JAX twin of :class:`ExpRatioLoss` and :class:`ExpRatioLossCutGraph`."""
    return jnp.mean(jnp.exp(preds) / jnp.exp(targets))


@oracle.twin(exp_ratio_jax, inputs=_EXP_PAIR, name="exp_ratio")
class ExpRatioLoss(nn.Module):
    r"""Seed 002's exp/div loss, with the graph intact, reduced by a mean.

    .. math::

        L = \frac1N \sum_i \frac{e^{p_i}}{e^{t_i}}, \qquad
        \frac{\partial L}{\partial p_i} = -\frac{\partial L}{\partial t_i}
        = \frac1N \frac{e^{p_i}}{e^{t_i}}

    The seed's ``.requires_grad_()`` is kept; it is a no-op here, since the quotient
    already requires grad. Dividing two exponentials (rather than taking
    :math:`e^{p - t}`) is the seed's formula: each overflows on its own beyond 88 in
    float32, though their ratio might not.
    """

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        preds = torch.exp(preds)
        targets = torch.exp(targets)
        divided_calc = torch.div(preds, targets).requires_grad_()
        return divided_calc.mean()


@oracle.twin(
    exp_ratio_jax,
    inputs=_EXP_PAIR,
    known_divergence=oracle.Known(
        why="the exponentials are computed in numpy on detached values; requires_grad_() "
        "then makes a new leaf, so no gradient reaches preds or targets",
        check="vjp",
        diagnosis="disconnected",
    ),
    name="exp_ratio_cut_graph",
)
class ExpRatioLossCutGraph(nn.Module):
    r"""Seed 002's pitfall, a specimen: the exp/div loss computed off the graph.

    .. math::

        L = \frac1N \sum_i \frac{e^{p_i}}{e^{t_i}}, \qquad
        \frac{\partial L}{\partial p_i} = -\frac{\partial L}{\partial t_i}
        = \frac1N \frac{e^{p_i}}{e^{t_i}}

    What is wrong: the inputs go through ``.detach().cpu().numpy()`` (the seed's way to
    keep a value out of the feedback loop) and come back with ``torch.as_tensor``; the
    seed's ``requires_grad_()`` then makes the quotient a new leaf that requires grad.
    The forward value is right, ``backward()`` runs without an error, and
    ``preds.grad`` stays ``None``: the model would never learn.
    """

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        device = preds.device
        preds = torch.as_tensor(np.exp(preds.detach().cpu().numpy()), device=device)
        targets = torch.as_tensor(np.exp(targets.detach().cpu().numpy()), device=device)
        divided_calc = torch.div(preds, targets).requires_grad_()
        return divided_calc.mean()


def max_concat_jax(array_first: jax.Array, array_second: jax.Array) -> jax.Array:
    """JAX twin of :func:`max_concat` and :func:`max_concat_indices`: the values."""
    cat_array = jnp.concatenate((array_first, array_second), axis=1)
    return jnp.max(cat_array, axis=1) - 1


@oracle.twin(max_concat_jax, inputs=_CONCAT_PAIR, name="max_concat")
def max_concat(array_first: torch.Tensor, array_second: torch.Tensor) -> torch.Tensor:
    r"""Seed 002's concatenation and row maximum, using the max's *values*.

    .. math::

        q_i = \max_j\, [a \,|\, b]_{ij} - 1, \qquad
        \frac{\partial q_i}{\partial [a \,|\, b]_{ij}} = [j = j^*_i], \quad
        j^*_i = \operatorname{argmax}_j [a \,|\, b]_{ij}

    Returns the vector :math:`q` (the seed's ``q_error``), one entry per row. Ties are
    kinks: ``torch.max(dim)`` sends the whole gradient to one of the tied entries,
    ``jnp.max`` shares it among them. The seed's ``.requires_grad_()`` on the
    concatenation is kept; like every ``requires_grad_()`` on a result that already
    requires grad, it is a no-op (the seed's claim that concatenation needs it is wrong).
    """
    cat_array = torch.cat((array_first, array_second), 1).requires_grad_()
    maxed_array = cat_array.max(1)
    q_error = torch.sub(maxed_array.values, 1)
    return q_error


@oracle.twin(
    max_concat_jax,
    inputs=_CONCAT_PAIR,
    known_divergence=oracle.Known(
        why="the max's indices (int64, no gradient) are used instead of its values",
        diagnosis=("error", "disconnected"),
    ),
    name="max_concat_indices",
)
def max_concat_indices(array_first: torch.Tensor, array_second: torch.Tensor) -> torch.Tensor:
    r"""Seed 002's "most common mistake", a specimen: the max's indices, not its values.

    .. math::

        q_i = \max_j\, [a \,|\, b]_{ij} - 1, \qquad
        \frac{\partial q_i}{\partial [a \,|\, b]_{ij}} = [j = j^*_i]

    What is wrong: ``maxed_array.indices`` replaces ``maxed_array.values``, so the
    result is :math:`j^*_i - 1`, an int64 tensor of positions that carries no gradient:
    the loss is neither the intended value nor differentiable.
    """
    cat_array = torch.cat((array_first, array_second), 1).requires_grad_()
    maxed_array = cat_array.max(1)
    q_error = torch.sub(maxed_array.indices, 1)
    return q_error


def no_grad_l1_jax(pred: jax.Array, target: jax.Array) -> jax.Array:
    """JAX twin of :func:`no_grad_l1`: the L1 loss it reports."""
    return jnp.mean(jnp.abs(target - pred))


@oracle.twin(
    no_grad_l1_jax,
    inputs=[tensor("b n", low=-50.0, high=50.0), tensor("b n", low=-50.0, high=50.0)],
    known_divergence=oracle.Known(
        why="the L1 loss is computed under torch.no_grad() and read with .item(): a "
        "monitoring value, with no graph back to pred or target",
        diagnosis=("disconnected", "error"),
    ),
    name="no_grad_l1",
)
def no_grad_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Seed 002's monitoring L1 loss, used as if it were the loss: a specimen.

    .. math::

        L = \frac1N \sum_i |t_i - p_i|, \qquad
        \frac{\partial L}{\partial p_i} = -\frac{\partial L}{\partial t_i}
        = \frac{\operatorname{sign}(p_i - t_i)}{N}

    What is wrong: the seed computes it as a running total,
    ``with torch.no_grad(): calculated_loss += loss_function(target, pred).item()``, to
    *keep track of* the L1 error without training on it. That is right for monitoring;
    returned as the loss, it is a number with no graph behind it, so no gradient
    reaches ``pred``. (Note the seed's ``(target, pred)`` argument order; L1 is
    symmetric, so it does not matter here.)
    """
    calculated_loss = 0.0
    with torch.no_grad():
        calculated_loss += F.l1_loss(target, pred).item()
    return torch.tensor(calculated_loss, dtype=pred.dtype, device=pred.device)
