r"""Element-wise ``torch.autograd.Function``\ s with a hand-written backward.

From seed 000 (``MyCustomFunction``) and seed 004 (``CustomExp``, ``ConditionalOp``,
``SmoothRound``). Each class is the seed's code; its JAX twin is the forward alone, and
``jax.vjp`` of the twin is what the hand-written ``backward`` is checked against.
``SmoothRound`` is kept as the seed wrote it, a specimen whose backward is off by a
factor of 2; ``SmoothRoundCorrected`` beside it has the right one.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import torch
from torch.autograd import Function

import oracle
from oracle import tensor

__all__ = [
    "MyCustomFunction",
    "double_sin_jax",
    "CustomExp",
    "custom_exp_jax",
    "ConditionalOp",
    "conditional_op_jax",
    "SmoothRound",
    "SmoothRoundCorrected",
    "smooth_round_jax",
]

# alpha, the sharpness of SmoothRound, drawn as a float32-representable number so that
# the float32 and float64 runs of one example use the same value.
_ALPHA = st.floats(1.0, 20.0, width=32)


def double_sin_jax(input: jax.Array) -> jax.Array:
    """JAX twin of :class:`MyCustomFunction`."""
    return jnp.sin(input) * 2


@oracle.twin(double_sin_jax, inputs=[tensor("b n", low=-50.0, high=50.0)], name="double_sin")
class MyCustomFunction(Function):
    r"""Seed 000's ``MyCustomFunction``: twice the sine, with its derivative by hand.

    .. math::

        y = 2 \sin x, \qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \cdot 2 \cos x
    """

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input)
        return input.sin() * 2

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (input,) = ctx.saved_tensors
        return grad_output * (input.cos() * 2)


def custom_exp_jax(x: jax.Array) -> jax.Array:
    """JAX twin of :class:`CustomExp`: the exponential, whose derivative is itself."""
    return jnp.exp(x)


@oracle.twin(
    custom_exp_jax,
    # exp overflows float32 beyond x ~ 88; [-20, 20] keeps every value and gradient finite.
    inputs=[tensor("b n", low=-20.0, high=20.0)],
    known_divergence=oracle.Known(
        why="CustomExp's backward returns 2 exp(x) grad_output on purpose; d exp(x)/dx is exp(x)",
        argument=0,
        check="vjp",
        diagnosis="scaled",
        factor=2.0,
        blame="torch",
    ),
    name="custom_exp",
)
class CustomExp(Function):
    r"""Seed 004's ``CustomExp``, a specimen: its derivative is doubled on purpose.

    .. math::

        y = e^{x}, \qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\, e^{x}

    What is wrong: ``backward`` returns :math:`2 e^{x} \partial L / \partial y`, twice the
    derivative above. The seed does this deliberately ("Modified derivative: instead of
    exp(x), use 2*exp(x)") to show that ``backward`` is free to return anything; the
    oracle must report it as ``scaled`` with factor 2. The correct backward is the
    derivative above, which is what ``torch.exp`` already does.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return 2 * torch.exp(x) * grad_output


def conditional_op_jax(x: jax.Array) -> jax.Array:
    """JAX twin of :class:`ConditionalOp`."""
    return jnp.where(x > 0, x * 2, x * 0.5)


@oracle.twin(
    conditional_op_jax, inputs=[tensor("b n", low=-50.0, high=50.0)], name="conditional_op"
)
class ConditionalOp(Function):
    r"""Seed 004's ``ConditionalOp``: slope 2 for positive inputs, 1/2 otherwise.

    .. math::

        y = \begin{cases} 2x & x > 0 \\ x/2 & x \le 0 \end{cases}, \qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \cdot
        \begin{cases} 2 & x > 0 \\ 1/2 & x \le 0 \end{cases}

    :math:`x = 0` is a kink; the backward takes the left slope there, as
    ``jnp.where(x > 0, ...)`` does.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        y = torch.zeros_like(x)
        y[x > 0] = x[x > 0] * 2
        y[x <= 0] = x[x <= 0] * 0.5
        return y

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        grad_input = torch.zeros_like(x)
        grad_input[x > 0] = grad_output[x > 0] * 2
        grad_input[x <= 0] = grad_output[x <= 0] * 0.5
        return grad_input


def smooth_round_jax(x: jax.Array, alpha: float | jax.Array = 10.0) -> jax.Array:
    """JAX twin of :class:`SmoothRound` and :class:`SmoothRoundCorrected`."""
    return 0.5 + 0.5 * jnp.tanh(alpha * (x - 0.5))


# The values it rounds, in [0, 1] as in the seed's example. With alpha <= 20 that keeps
# |alpha (x - 1/2)| <= 10: further out, 0.5 + 0.5 tanh and 1 - tanh^2 are differences of
# nearly equal numbers, and one ulp of tanh (torch's and XLA's differ by that) is then
# more than the float64 tolerance of the tiny result.
_SMOOTH_ROUND_INPUTS = [tensor("b n", low=0.0, high=1.0), _ALPHA]


@oracle.twin(
    smooth_round_jax,
    inputs=_SMOOTH_ROUND_INPUTS,
    known_divergence=oracle.Known(
        why="SmoothRound's backward drops the factor 0.5 of the forward's 0.5 tanh(...)",
        argument=0,
        check="vjp",
        diagnosis="scaled",
        factor=2.0,
        blame="torch",
    ),
    name="smooth_round",
)
class SmoothRound(Function):
    r"""Seed 004's ``SmoothRound`` as written, a specimen: its gradient is twice too large.

    .. math::

        y = \tfrac12 + \tfrac12 \tanh\big(\alpha (x - \tfrac12)\big), \qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \cdot
        \tfrac12\, \alpha \big(1 - \tanh^2(\alpha (x - \tfrac12))\big)

    What is wrong: ``backward`` returns
    :math:`\alpha (1 - \tanh^2(\alpha (x - \frac12)))\, \partial L / \partial y`, without the
    factor :math:`\frac12` that multiplies the tanh in the forward, so every gradient is
    doubled. :class:`SmoothRoundCorrected` restores it.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return 0.5 + 0.5 * torch.tanh(alpha * (x - 0.5))

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        return grad_output * alpha * (1 - torch.tanh(alpha * (x - 0.5)) ** 2), None


@oracle.twin(smooth_round_jax, inputs=_SMOOTH_ROUND_INPUTS, name="smooth_round_corrected")
class SmoothRoundCorrected(SmoothRound):
    r""":class:`SmoothRound` with the factor :math:`\frac12` restored in ``backward``.

    .. math::

        y = \tfrac12 + \tfrac12 \tanh\big(\alpha (x - \tfrac12)\big), \qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \cdot
        \tfrac12\, \alpha \big(1 - \tanh^2(\alpha (x - \tfrac12))\big)
        = \frac{\partial L}{\partial y} \cdot
        \frac{\alpha}{2 \cosh^2(\alpha (x - \tfrac12))}

    The forward is inherited unchanged. ``backward`` evaluates the second form: the
    oracle found that the seed's :math:`1 - \tanh^2` loses most of its digits in float32
    once :math:`|\alpha (x - \frac12)| \gtrsim 5`, where :math:`\tanh^2` rounds to a
    neighbour of 1.
    """

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        # 1 / cosh^2 instead of 1 - tanh^2: no cancellation near tanh = +-1; cosh overflows
        # to inf for |z| > ~89 in float32, and 1 / inf^2 = 0 is the right limit there.
        return grad_output * 0.5 * alpha / torch.cosh(alpha * (x - 0.5)) ** 2, None
