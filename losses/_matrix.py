r"""The matrix power: seed 001's simplified backward, a correct one, and the loss using it.

Seed 001's ``SpectralNormalizationFunction`` computes :math:`A^n` and, in ``backward``,
multiplies the incoming gradient *element-wise* by :math:`n A^{n-1}`: the scalar power
rule, which is not the derivative of a matrix power (matrices do not commute). It is
kept as the specimen ``matrix_power_simplified``; :class:`MatrixPower` is the correct
hand-written backward, and :class:`MatrixPowerLoss` is seed 001's ``CustomLoss`` with
its random matrix turned into an input so that the oracle can draw it and differentiate
with respect to it.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import torch
import torch.nn as nn
from torch import autograd
from torch.linalg import matrix_power

import oracle
from oracle import tensor

__all__ = [
    "MatrixPower",
    "SpectralNormalizationFunction",
    "matrix_power_jax",
    "MatrixPowerLoss",
    "matrix_power_loss",
    "matrix_power_loss_jax",
]

# Entries in [-2, 2] and k <= 5 keep A^5 below about 1e5, well inside float32; b batches
# the matrices (torch.linalg.matrix_power and the backward below accept "... k k").
_MATRIX = tensor("b k k", low=-2.0, high=2.0)
_MATRIX_DIMS = {"b": (1, 3), "k": (1, 5)}


def matrix_power_jax(matrix: jax.Array, exponent: int) -> jax.Array:
    """JAX twin of :class:`MatrixPower` and :class:`SpectralNormalizationFunction`."""
    return jnp.linalg.matrix_power(matrix, exponent)


@oracle.twin(
    matrix_power_jax,
    inputs=[_MATRIX, st.integers(0, 5)],
    dims=_MATRIX_DIMS,
    name="matrix_power",
)
class MatrixPower(autograd.Function):
    r"""The matrix power :math:`A^n` (batched over leading dimensions), correct backward.

    .. math::

        Y = A^n, \qquad
        \frac{\partial L}{\partial A} = \sum_{i=0}^{n-1} (A^\top)^i\, G\, (A^\top)^{n-1-i},
        \quad G = \frac{\partial L}{\partial Y}

    from :math:`dY = \sum_i A^i\, dA\, A^{n-1-i}` and
    :math:`\langle G, A^i\, dA\, A^{j} \rangle = \langle (A^\top)^i G (A^\top)^j, dA \rangle`.
    For :math:`n = 0`, :math:`Y = I` and the gradient is zero.
    """

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor, exponent: int) -> torch.Tensor:
        ctx.save_for_backward(matrix)
        ctx.exponent = exponent
        return matrix_power(matrix, exponent)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (matrix,) = ctx.saved_tensors
        n = ctx.exponent
        if n == 0:
            return torch.zeros_like(matrix), None
        # (A^T)^0 .. (A^T)^(n-1), computed once and reused on both sides of G.
        eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
        powers = [eye.expand_as(matrix)]
        for _ in range(n - 1):
            powers.append(powers[-1] @ matrix.mT)
        grad_matrix = sum(powers[i] @ grad_output @ powers[n - 1 - i] for i in range(n))
        return grad_matrix, None


@oracle.twin(
    matrix_power_jax,
    # From 1: at n = 0 the seed's backward would invert A (matrix_power(A, -1)), which
    # raises on the singular matrices hypothesis likes to draw; see the docstring.
    inputs=[_MATRIX, st.integers(1, 5)],
    dims=_MATRIX_DIMS,
    known_divergence=oracle.Known(
        why="the backward multiplies grad_output element-wise by n A^(n-1), the scalar power "
        "rule, instead of summing (A^T)^i G (A^T)^(n-1-i)",
        argument=0,
        check="vjp",
        blame="torch",
    ),
    name="matrix_power_simplified",
)
class SpectralNormalizationFunction(autograd.Function):
    r"""Seed 001's ``SpectralNormalizationFunction`` as written, a specimen.

    .. math::

        Y = A^n, \qquad
        \frac{\partial L}{\partial A} = \sum_{i=0}^{n-1} (A^\top)^i\, G\, (A^\top)^{n-1-i}

    What is wrong: ``backward`` returns :math:`G \odot n A^{n-1}`, the incoming gradient
    multiplied *element-wise* by the scalar power rule. That is the derivative above only
    for :math:`1 \times 1` matrices (and at :math:`n = 1` it even drops every off-diagonal
    entry of :math:`G`). The seed calls it "a first-order derivative approximation"; it
    is not an approximation of the derivative. At :math:`n = 0` it also calls
    ``matrix_power(A, -1)``, an inverse, so it raises for singular :math:`A` where the
    gradient is simply zero. :class:`MatrixPower` is the correct version.
    """

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor, exponent: int) -> torch.Tensor:
        powered_matrix = matrix_power(matrix, exponent)
        ctx.save_for_backward(matrix)
        ctx.exponent = exponent
        return powered_matrix

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (matrix,) = ctx.saved_tensors
        exponent = ctx.exponent
        grad_matrix = grad_output * (exponent * matrix_power(matrix, exponent - 1))
        return grad_matrix, None


class MatrixPowerLoss(nn.Module):
    r"""Seed 001's ``CustomLoss``, with its matrix passed in instead of drawn inside.

    .. math::

        L = \frac{1}{N} \sum_j (p_j - t_j)\, (M^2)_{00}, \qquad
        \frac{\partial L}{\partial p_j} = \frac{(M^2)_{00}}{N}, \quad
        \frac{\partial L}{\partial M} = \frac{1}{N}\sum_j (p_j - t_j)\,
        \big(e_0 e_0^\top M^\top + M^\top e_0 e_0^\top\big)

    The seed builds ``matrix = torch.randn(3, 3)`` inside ``forward``, which makes the loss
    random and leaves nothing to differentiate the matrix with respect to; here it is the
    third argument. :math:`M^2` goes through :class:`SpectralNormalizationFunction`, so the
    gradients for the prediction and the target are right (autograd's, through
    :math:`(M^2)_{00}` as a constant factor), while the matrix's is wrong: the simplified
    backward gives :math:`2 c M_{00}` at entry :math:`(0, 0)`, with
    :math:`c = \frac1N \sum_j (p_j - t_j)`, and zero everywhere else, where the derivative
    above is :math:`c M_{j0}` at :math:`(0, j)` and :math:`c M_{0i}` at :math:`(i, 0)`.
    """

    def __init__(self, exponent: int = 2):
        super().__init__()
        self.exponent = exponent

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, matrix: torch.Tensor
    ) -> torch.Tensor:
        powered_matrix = SpectralNormalizationFunction.apply(matrix, self.exponent)
        return torch.mean((prediction - target) * powered_matrix[0, 0])


def matrix_power_loss_jax(prediction: jax.Array, target: jax.Array, matrix: jax.Array) -> jax.Array:
    """JAX twin of :func:`matrix_power_loss`."""
    powered_matrix = jnp.linalg.matrix_power(matrix, 2)
    return jnp.mean((prediction - target) * powered_matrix[0, 0])


@oracle.twin(
    matrix_power_loss_jax,
    inputs=[
        tensor("b n", low=-10.0, high=10.0),
        tensor("b n", low=-10.0, high=10.0),
        tensor("k k", low=-2.0, high=2.0),
    ],
    dims={"k": (1, 5)},
    known_divergence=oracle.Known(
        why="the matrix goes through SpectralNormalizationFunction, whose backward is the "
        "element-wise scalar power rule; prediction and target are differentiated by autograd",
        argument=2,
        check="vjp",
        blame="torch",
    ),
    name="matrix_power_loss",
)
def matrix_power_loss(
    prediction: torch.Tensor, target: torch.Tensor, matrix: torch.Tensor
) -> torch.Tensor:
    """:class:`MatrixPowerLoss` as a function of all three inputs (exponent 2, as in the seed)."""
    return MatrixPowerLoss()(prediction, target, matrix)
