r"""Purpose-built PyTorch functions, right and wrong, with their JAX twins.

Each wrong backward has exactly one defect, named in its docstring; the tests check
that the oracle flags it for that reason. They live in an importable module (not in
the test files) so that a reproducer can import them in a subprocess.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.linalg import matrix_power


def _fn(forward, backward, name):
    """A torch.autograd.Function from a forward and a backward (one tensor argument)."""

    def fwd(ctx, x):
        ctx.save_for_backward(x)
        return forward(x)

    def bwd(ctx, g):
        (x,) = ctx.saved_tensors
        return backward(x, g)

    return type(
        name,
        (torch.autograd.Function,),
        {"forward": staticmethod(fwd), "backward": staticmethod(bwd)},
    )


# --- matrix power: the seeds' simplified gradient, and a correct one -------------------


class MatrixPowerSimplified(torch.autograd.Function):
    """The seeds' simplified gradient: ``grad_output * n * A^(n-1)``, elementwise.
    Wrong for any non-diagonal A and n >= 2 (and for n = 1: it returns G * I)."""

    @staticmethod
    def forward(ctx, a, n):
        ctx.save_for_backward(a)
        ctx.n = n
        return matrix_power(a, n)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * (ctx.n * matrix_power(a, ctx.n - 1)), None


class MatrixPower(torch.autograd.Function):
    r""":math:`\partial \langle G, A^n\rangle / \partial A = \sum_{i<n} (A^T)^i G (A^T)^{n-1-i}`."""

    @staticmethod
    def forward(ctx, a, n):
        ctx.save_for_backward(a)
        ctx.n = n
        return matrix_power(a, n)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        n = ctx.n
        at = a.mT
        grad = torch.zeros_like(a)
        for i in range(n):
            grad = grad + matrix_power(at, i) @ g @ matrix_power(at, n - 1 - i)
        return grad, None


def matrix_power_twin(a, n):
    return jnp.linalg.matrix_power(a, n)


# --- one defect each --------------------------------------------------------------------

#: ``2 * exp(x) * g``: the derivative is doubled (diagnosis "scaled", factor 2).
ScaledExp = _fn(torch.exp, lambda x, g: 2 * torch.exp(x) * g, "ScaledExp")
#: ``-cos(x) * g`` for sin (diagnosis "sign_flipped").
FlippedSin = _fn(torch.sin, lambda x, g: -torch.cos(x) * g, "FlippedSin")
#: ``2 x`` for ``x**2`` without ``grad_output`` (diagnosis "ignores_grad_output").
SquareIgnoresGrad = _fn(lambda x: x * x, lambda x, g: 2 * x, "SquareIgnoresGrad")
#: softplus whose backward drops the negative half (diagnosis "zero").
SoftplusZeroNegative = _fn(
    torch.nn.functional.softplus,
    lambda x, g: g * torch.sigmoid(x) * (x > 0),
    "SoftplusZeroNegative",
)
#: a naive ``exp(x) / (1 + exp(x))**2``: inf/inf = NaN once exp overflows (diagnosis "nonfinite").
NaiveSigmoid = _fn(
    torch.sigmoid, lambda x, g: g * torch.exp(x) / (1 + torch.exp(x)) ** 2, "NaiveSigmoid"
)
#: ``cos(x) + 0.1`` for sin: off by a constant (diagnosis "mismatch").
ShiftedSin = _fn(torch.sin, lambda x, g: g * (torch.cos(x) + 0.1), "ShiftedSin")
#: a correct sin, for contrast.
GoodSin = _fn(torch.sin, lambda x, g: g * torch.cos(x), "GoodSin")


def _raise(x, g):
    raise RuntimeError("backward is not implemented for this branch")


#: a backward that raises (diagnosis "error", blame torch).
RaisingBackward = _fn(torch.sin, _raise, "RaisingBackward")


class MatVecTransposed(torch.autograd.Function):
    """``A @ x`` whose backward returns ``x g^T`` instead of ``g x^T`` (diagnosis "transposed")."""

    @staticmethod
    def forward(ctx, a, x):
        ctx.save_for_backward(a, x)
        return a @ x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        return torch.outer(x, g), a.mT @ g


def matvec_twin(a, x):
    return a @ x


class ScaledSecondArgument(torch.autograd.Function):
    """``a * b``: right for ``a``, doubled for ``b`` (a bug on one argument of several)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, 2 * g * a


def product_twin(a, b):
    return a * b


def cut_graph_loss(pred, target):
    """Routes the values through numpy and ``requires_grad_()``: the graph is cut."""
    values = torch.exp(pred).detach().cpu().numpy() / np.exp(target.detach().cpu().numpy())
    return torch.from_numpy(values).requires_grad_().mean()


def exp_ratio_loss(pred, target):
    return (torch.exp(pred) / torch.exp(target)).mean()


def exp_ratio_twin(pred, target):
    return (jnp.exp(pred) / jnp.exp(target)).mean()


def sin_twin_raises(x):
    raise ValueError("twin not written for this shape")


def square_twin_stopped(x):
    """A wrong twin: ``stop_gradient`` halves the gradient of ``x**2``."""
    return x * jax.lax.stop_gradient(x)


def square(x):
    return x * x


# --- kinks: both conventions are right --------------------------------------------------


def abs_loss(x):
    return x.abs().mean()


def abs_loss_twin(x):
    return jnp.abs(x).mean()


def hinge(pred, labels, margin):
    return torch.clamp(margin - labels * pred, min=0).mean()


def hinge_twin(pred, labels, margin):
    return jnp.maximum(0.0, margin - labels * pred).mean()


def max_dim(x):
    return torch.max(x, dim=1).values


def max_dim_twin(x):
    return jnp.max(x, axis=1)


def clamp(x):
    return torch.clamp(x, -1.0, 1.0)


def clamp_twin(x):
    return jnp.clip(x, -1.0, 1.0)


def row_norm(x):
    return torch.linalg.vector_norm(x, dim=1)


def row_norm_twin(x):
    return jnp.linalg.norm(x, axis=1)


def sparsemax(z):
    """Sparsemax (Martins & Astudillo, 2016) along the last axis, by sorting."""
    zs, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = torch.cumsum(zs, dim=-1)
    support = (1 + k * zs > cs).to(z.dtype)
    n = support.sum(dim=-1, keepdim=True)
    tau = (torch.gather(cs, -1, n.long() - 1) - 1) / n
    return torch.clamp(z - tau, min=0)


def sparsemax_twin(z):
    zs = -jnp.sort(-z, axis=-1)
    k = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = jnp.cumsum(zs, axis=-1)
    support = (1 + k * zs > cs).astype(z.dtype)
    n = support.sum(axis=-1, keepdims=True)
    tau = (jnp.take_along_axis(cs, n.astype(jnp.int32) - 1, axis=-1) - 1) / n
    return jnp.maximum(z - tau, 0.0)


# --- bugs next to kinks -----------------------------------------------------------------

#: |x| whose backward is wrong only below -1 (the kink is at 0).
AbsWrongBelowMinusOne = _fn(
    torch.abs,
    lambda x, g: g * torch.where(x < -1, torch.full_like(x, 0.5), torch.sign(x)),
    "AbsWrongBelowMinusOne",
)


def _huber(x, delta=1.0):
    return torch.where(x.abs() <= delta, 0.5 * x * x, delta * (x.abs() - 0.5 * delta))


#: Huber (delta 1) whose backward clips at 2 instead of 1: wrong for 1 < |x| < 2.
HuberWrongBoundary = _fn(_huber, lambda x, g: g * torch.clamp(x, -2.0, 2.0), "HuberWrongBoundary")
#: Huber with the right backward.
Huber = _fn(_huber, lambda x, g: g * torch.clamp(x, -1.0, 1.0), "Huber")


def huber_twin(x):
    return jnp.where(jnp.abs(x) <= 1.0, 0.5 * x * x, jnp.abs(x) - 0.5)


# --- ill-conditioned but correct --------------------------------------------------------


def cross_entropy(logits, target):
    return torch.nn.functional.cross_entropy(logits, target)


def cross_entropy_twin(logits, target):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, target[:, None], axis=-1).mean()


# --- dependable verdicts: precision, nondeterminism, grad_output, kinks ----------------

_C = 0.1234567891234  # not representable in float32: a float32 copy of it is off by ~1e-9


def _c_sin_twin(x):
    return jnp.sin(x) * _C


Float32Constant = _fn(
    lambda x: torch.sin(x) * _C,
    lambda x, g: g * torch.cos(x) * torch.tensor(_C, dtype=torch.float32),
    "Float32Constant",
)
Float32Constant.__doc__ = """Keeps the constant of its backward as a float32 tensor: a
float64 run gets float64 gradients with float32 precision (errors of ~1e-8)."""

NdarrayRoundTrip = _fn(
    torch.exp,
    lambda x, g: g * torch.Tensor(np.exp(x.detach().cpu().numpy())).to(x.dtype),
    "NdarrayRoundTrip",
)
NdarrayRoundTrip.__doc__ = """Computes exp(x) in numpy and wraps it in ``torch.Tensor``,
which is float32: float64 gradients with float32 precision."""


def float32_forward(x):
    """Returns a float32 output whatever the input's dtype."""
    return torch.sin(x).float()


NoisyBackward = _fn(
    torch.sin, lambda x, g: g * torch.cos(x) + 1e-3 * torch.randn_like(x), "NoisyBackward"
)
NoisyBackward.__doc__ = "Adds random noise to a right gradient: nondeterministic."


class SometimesDoubled(torch.autograd.Function):
    """Right on four calls in five, doubled on the fifth (state kept between calls)."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        SometimesDoubled.calls += 1
        return g * torch.cos(x) * (2.0 if SometimesDoubled.calls % 5 == 0 else 1.0)


AddsTerm = _fn(torch.sin, lambda x, g: g * torch.cos(x) + 0.1 * x, "AddsTerm")
AddsTerm.__doc__ = "Multiplies by grad_output, then adds a term that does not depend on it."

SignOverAbs = _fn(torch.abs, lambda x, g: g * x / x.abs(), "SignOverAbs")
SignOverAbs.__doc__ = """|x| with the backward ``x / |x|``: NaN at 0, where both one-sided
slopes (-1 and 1, times grad_output) are finite."""


def saturated_cross_entropy(logits):
    """Cross-entropy with target 0 over logits whose softmax saturates (built in torch)."""
    target = torch.zeros(logits.shape[:-1], dtype=torch.int64)
    return torch.nn.functional.cross_entropy(logits, target)


def saturated_cross_entropy_twin(logits):
    return -jnp.mean(jax.nn.log_softmax(logits, axis=-1)[..., 0])


def compiled_differs_twin(x):
    """sin(x) run eagerly, sin(x) + 1e-3 when traced for compilation: stands for a twin
    that XLA compiles to a different result than running it op by op."""
    if isinstance(x, jax.core.Tracer):
        return jnp.sin(x) + 1e-3
    return jnp.sin(x)
