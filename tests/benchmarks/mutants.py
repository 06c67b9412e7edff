r"""A public set of mutants: correct hand-written backward passes, each with one bug put in.

Every :class:`Mutant` names its category, the correct ``original``, the ``mutated`` torch
function, the JAX ``twin`` of the (unchanged) forward and the oracle input specs. The
mutation benchmark (``python tests/benchmarks/run.py``, table c) runs every tool on
every mutant and on every distinct original: a tool *detects* a mutant when it flags
it, and raises a *false alarm* when it flags an original.

Most functions are small ``torch.autograd.Function``\ s made by :func:`function` from a
forward and a backward written on plain tensors; a few come from the catalog in
``losses/`` (``double_sin``, ``matrix_power``, ``conditional_op``, ``exp_ratio``).

Categories: a constant factor, a flipped sign, a dropped term, a missing transpose,
grad_output ignored, a reduction over the wrong axis (or a mean where the broadcast
batch needs a sum), a wrong branch boundary, a bug only for large magnitudes
(overflow to NaN), a bug on one argument of several, a graph cut, and a wrong
constant (an approximate derivative, a typo in a constant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import torch
from torch.autograd import Function

from losses import (
    ConditionalOp,
    ExpRatioLoss,
    ExpRatioLossCutGraph,
    MatrixPower,
    MyCustomFunction,
    conditional_op_jax,
    double_sin_jax,
    exp_ratio_jax,
    matrix_power_jax,
)
from oracle import tensor

__all__ = ["Mutant", "MUTANTS", "CATEGORIES", "function", "originals"]

CATEGORIES = (
    "constant factor",
    "flipped sign",
    "dropped term",
    "missing transpose",
    "grad_output ignored",
    "wrong reduction axis",
    "wrong branch boundary",
    "large magnitude",
    "one argument of several",
    "graph cut",
    "wrong constant",
)


@dataclass(frozen=True)
class Mutant:
    name: str
    category: str
    #: the function the bug was put into, and its name (shared by several mutants)
    original: Callable
    original_name: str
    mutated: Callable
    twin: Callable
    inputs: tuple
    dims: dict[str, tuple[int, int]] | None
    #: one sentence: what is wrong
    bug: str
    #: the diagnosis a perfect oracle gives (``None``: any finding)
    expect: str | None = None


def function(name: str, forward: Callable, backward: Callable) -> Callable:
    """``Name.apply`` of a new ``torch.autograd.Function``.

    ``forward(*args)`` computes the output; ``backward(grad, *args)`` returns one gradient
    per argument (``None`` for the ones that get none). Tensor arguments are saved with
    ``save_for_backward``; the class is bound in this module under ``name`` so that the
    oracle's reproducers can import it.
    """

    def fwd(ctx: Any, *args: Any) -> torch.Tensor:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        ctx.save_for_backward(*tensors)
        ctx.layout = [None if isinstance(a, torch.Tensor) else a for a in args]
        return forward(*args)

    def bwd(ctx: Any, grad: torch.Tensor) -> tuple:
        saved = iter(ctx.saved_tensors)
        args = [next(saved) if a is None else a for a in ctx.layout]
        return tuple(backward(grad, *args))

    cls = type(
        name,
        (Function,),
        {
            "forward": staticmethod(fwd),
            "backward": staticmethod(bwd),
            "__module__": __name__,
            "__qualname__": name,
        },
    )
    globals()[name] = cls
    return cls.apply


_MUTANTS: list[Mutant] = []


def _add(
    original_name: str,
    original: Callable,
    twin: Callable,
    inputs: Sequence[Any],
    dims: dict | None,
    variants: Sequence[tuple[str, str, Callable, str, str | None]],
) -> None:
    for suffix, category, mutated, bug, expect in variants:
        assert category in CATEGORIES, category
        _MUTANTS.append(
            Mutant(
                f"{original_name}.{suffix}",
                category,
                original,
                original_name,
                mutated,
                twin,
                tuple(inputs),
                dims,
                bug,
                expect,
            )
        )


def _fn(name: str, forward: Callable) -> Callable[[Callable], Callable]:
    return lambda backward: function(name, forward, backward)


# --- x sin x: element-wise ---------------------------------------------------------------


def _x_sin(x):
    return x * torch.sin(x)


def _x_sin_jax(x):
    return x * jnp.sin(x)


_XS = _fn("XSinMut", _x_sin)
_add(
    "x_sin",
    _XS(lambda g, x: (g * (torch.sin(x) + x * torch.cos(x)),)),
    _x_sin_jax,
    [tensor("b n", low=-5.0, high=5.0)],
    None,
    [
        (
            "times_2",
            "constant factor",
            function(
                "XSinTimes2", _x_sin, lambda g, x: (2 * g * (torch.sin(x) + x * torch.cos(x)),)
            ),
            "the gradient is doubled",
            "scaled",
        ),
        (
            "sign",
            "flipped sign",
            function("XSinSign", _x_sin, lambda g, x: (-g * (torch.sin(x) + x * torch.cos(x)),)),
            "the gradient has the wrong sign",
            "sign_flipped",
        ),
        (
            "drop_x_cos",
            "dropped term",
            function("XSinDropTerm", _x_sin, lambda g, x: (g * torch.sin(x),)),
            "the product rule's x cos x term is dropped",
            None,
        ),
        (
            "no_grad_output",
            "grad_output ignored",
            function("XSinNoGrad", _x_sin, lambda g, x: (torch.sin(x) + x * torch.cos(x),)),
            "returns the local derivative without multiplying by grad_output",
            "ignores_grad_output",
        ),
    ],
)

# plain autograd, with part of the graph cut by .detach()
_add(
    "x_sin_plain",
    _x_sin,
    _x_sin_jax,
    [tensor("b n", low=-5.0, high=5.0)],
    None,
    [
        (
            "detach",
            "graph cut",
            lambda x: x * torch.sin(x).detach(),
            "sin(x) is detached, so the x cos x part of the gradient never flows",
            None,
        ),
    ],
)


# --- the catalog's double_sin (seed 000's MyCustomFunction) -------------------------------


class DoubleSinHalf(MyCustomFunction):
    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * input.cos()


class DoubleSinSign(MyCustomFunction):
    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return -grad_output * (input.cos() * 2)


_add(
    "double_sin",
    MyCustomFunction.apply,
    double_sin_jax,
    [tensor("b n", low=-50.0, high=50.0)],
    None,
    [
        (
            "half",
            "constant factor",
            DoubleSinHalf.apply,
            "the factor 2 of 2 sin x is lost in backward",
            "scaled",
        ),
        (
            "sign",
            "flipped sign",
            DoubleSinSign.apply,
            "backward returns -2 cos x grad_output",
            "sign_flipped",
        ),
    ],
)


# --- mean squared error: a reduction of two differentiated arguments ----------------------


def _mse(p, t):
    return torch.mean((p - t) ** 2)


def _mse_jax(p, t):
    return jnp.mean((p - t) ** 2)


def _mse_grads(scale_p=2.0, scale_t=-2.0, use_g=True, mean=True):
    def bwd(g, p, t):
        d = (p - t) / (p.numel() if mean else 1)
        gg = g if use_g else 1.0
        return scale_p * d * gg, scale_t * d * gg

    return bwd


_PT = [tensor("b n", low=-10.0, high=10.0), tensor("b n", low=-10.0, high=10.0)]
_add(
    "mse",
    function("MSEMut", _mse, _mse_grads()),
    _mse_jax,
    _PT,
    None,
    [
        (
            "no_two",
            "constant factor",
            function("MSENoTwo", _mse, _mse_grads(1.0, -1.0)),
            "the 2 of d(d^2) = 2d is dropped",
            "scaled",
        ),
        (
            "sum_not_mean",
            "constant factor",
            function("MSESumNotMean", _mse, _mse_grads(mean=False)),
            "backward forgets the 1/N of the mean (off by N)",
            "scaled",
        ),
        (
            "no_grad_output",
            "grad_output ignored",
            function("MSENoGrad", _mse, _mse_grads(use_g=False)),
            "backward ignores grad_output (right only when the loss is the last op with grad 1)",
            "ignores_grad_output",
        ),
        (
            "target_sign",
            "one argument of several",
            function("MSETargetSign", _mse, _mse_grads(2.0, 2.0)),
            "the target's gradient has the prediction's sign",
            "sign_flipped",
        ),
    ],
)


# --- smooth L1 (Huber, beta = 1) of two differentiated arguments ---------------------------


def _smooth_l1(p, t):
    d = p - t
    a = d.abs()
    return torch.where(a < 1, 0.5 * d * d, a - 0.5).mean()


def _smooth_l1_jax(p, t):
    d = p - t
    a = jnp.abs(d)
    return jnp.mean(jnp.where(a < 1, 0.5 * d * d, a - 0.5))


def _smooth_l1_bwd(boundary=1.0, target=True):
    def bwd(g, p, t):
        d = p - t
        local = torch.where(d.abs() < boundary, d, torch.sign(d))
        gp = g * local / d.numel()
        return gp, (-gp if target else None)

    return bwd


_add(
    "smooth_l1",
    function("SmoothL1Mut", _smooth_l1, _smooth_l1_bwd()),
    _smooth_l1_jax,
    [tensor("b n", low=-3.0, high=3.0), tensor("b n", low=-3.0, high=3.0)],
    None,
    [
        (
            "boundary_1.1",
            "wrong branch boundary",
            function("SmoothL1Boundary", _smooth_l1, _smooth_l1_bwd(boundary=1.1)),
            "backward switches from d to sign(d) at |d| = 1.1 instead of 1",
            None,
        ),
        (
            "target_none",
            "graph cut",
            function("SmoothL1TargetNone", _smooth_l1, _smooth_l1_bwd(target=False)),
            "backward returns None for the target, which requires grad",
            "disconnected",
        ),
    ],
)


# --- products: element-wise, batched matmul, Gram matrix ---------------------------------


def _mul(x, z):
    return x * z


def _mul_jax(x, z):
    return x * z


_add(
    "mul",
    function("MulMut", _mul, lambda g, x, z: (g * z, g * x)),
    _mul_jax,
    [tensor("b n", low=-3.0, high=3.0), tensor("b n", low=-3.0, high=3.0)],
    None,
    [
        (
            "grad_z_uses_z",
            "one argument of several",
            function("MulGradZ", _mul, lambda g, x, z: (g * z, g * z)),
            "the second argument's gradient is g * z (copied from the first's) instead of g * x",
            None,
        ),
    ],
)


def _matmul(a, b):
    return a @ b


def _matmul_jax(a, b):
    return a @ b


_SQ = [tensor("b k k", low=-3.0, high=3.0), tensor("b k k", low=-3.0, high=3.0)]
_add(
    "matmul",
    function("MatmulMut", _matmul, lambda g, a, b: (g @ b.mT, a.mT @ g)),
    _matmul_jax,
    _SQ,
    {"b": (1, 3), "k": (1, 6)},
    [
        (
            "grad_a_no_transpose",
            "missing transpose",
            function("MatmulGradA", _matmul, lambda g, a, b: (g @ b, a.mT @ g)),
            "grad A = G B instead of G B^T",
            None,
        ),
        (
            "grad_b_no_transpose",
            "one argument of several",
            function("MatmulGradB", _matmul, lambda g, a, b: (g @ b.mT, a @ g)),
            "grad B = A G instead of A^T G (grad A is right)",
            None,
        ),
    ],
)


def _gram(x):
    return x @ x.mT


def _gram_jax(x):
    return x @ jnp.swapaxes(x, -1, -2)


_add(
    "gram",
    function("GramMut", _gram, lambda g, x: ((g + g.mT) @ x,)),
    _gram_jax,
    [tensor("b m k", low=-3.0, high=3.0)],
    {"b": (1, 3), "m": (1, 6), "k": (1, 6)},
    [
        (
            "drop_transpose_term",
            "dropped term",
            function("GramDropTerm", _gram, lambda g, x: (g @ x,)),
            "grad X = G X, dropping the G^T X term of d(X X^T)",
            None,
        ),
    ],
)


class MatrixPowerNoTranspose(MatrixPower):
    """The catalog's correct MatrixPower, with A where its backward needs A^T."""

    @staticmethod
    def backward(ctx, grad_output):
        (matrix,) = ctx.saved_tensors
        n = ctx.exponent
        powers = [
            torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
        ]
        for _ in range(n - 1):
            powers.append(powers[-1] @ matrix)
        return sum(powers[i] @ grad_output @ powers[n - 1 - i] for i in range(n)), None


_add(
    "matrix_power",
    MatrixPower.apply,
    matrix_power_jax,
    [tensor("b k k", low=-2.0, high=2.0), 3],
    {"b": (1, 3), "k": (1, 5)},
    [
        (
            "no_transpose",
            "missing transpose",
            MatrixPowerNoTranspose.apply,
            "sums A^i G A^(n-1-i) instead of (A^T)^i G (A^T)^(n-1-i)",
            None,
        ),
    ],
)


def _cumsum(x):
    return torch.cumsum(x, -1)


def _cumsum_jax(x):
    return jnp.cumsum(x, -1)


def _rev_cumsum(g):
    return torch.flip(torch.cumsum(torch.flip(g, (-1,)), -1), (-1,))


_add(
    "cumsum",
    function("CumsumMut", _cumsum, lambda g, x: (_rev_cumsum(g),)),
    _cumsum_jax,
    [tensor("b n", low=-3.0, high=3.0)],
    None,
    [
        (
            "forward_cumsum",
            "missing transpose",
            function("CumsumNoTranspose", _cumsum, lambda g, x: (torch.cumsum(g, -1),)),
            "backward applies cumsum itself, not its transpose (the reversed cumsum)",
            None,
        ),
    ],
)


# --- softmax, logsumexp, normalisation: reductions along one axis --------------------------


def _softmax(x):
    return torch.softmax(x, -1)


def _softmax_jax(x):
    return jax.nn.softmax(x, axis=-1)


def _softmax_bwd(axis=-1, drop=False):
    def bwd(g, x):
        y = torch.softmax(x, -1)
        if drop:
            return (y * g,)
        return (y * (g - (g * y).sum(axis, keepdim=True)),)

    return bwd


_add(
    "softmax",
    function("SoftmaxMut", _softmax, _softmax_bwd()),
    _softmax_jax,
    [tensor("b n", low=-10.0, high=10.0)],
    None,
    [
        (
            "sum_axis_0",
            "wrong reduction axis",
            function("SoftmaxAxis", _softmax, _softmax_bwd(axis=0)),
            "the sum of g * y runs over the batch axis instead of the softmax axis",
            None,
        ),
        (
            "drop_sum",
            "dropped term",
            function("SoftmaxDropSum", _softmax, _softmax_bwd(drop=True)),
            "backward returns y * g, dropping the - y sum(g y) term",
            None,
        ),
    ],
)


def _logsumexp(x):
    return torch.logsumexp(x, -1)


def _logsumexp_jax(x):
    return jax.nn.logsumexp(x, axis=-1)


_add(
    "logsumexp",
    function("LogsumexpMut", _logsumexp, lambda g, x: (g[..., None] * torch.softmax(x, -1),)),
    _logsumexp_jax,
    [tensor("b n", low=-10.0, high=10.0)],
    None,
    [
        (
            "no_grad_output",
            "grad_output ignored",
            function("LogsumexpNoGrad", _logsumexp, lambda g, x: (torch.softmax(x, -1),)),
            "returns softmax(x) without multiplying by grad_output",
            "ignores_grad_output",
        ),
        (
            "softmax_axis_0",
            "wrong reduction axis",
            function(
                "LogsumexpAxis", _logsumexp, lambda g, x: (g[..., None] * torch.softmax(x, 0),)
            ),
            "the softmax in backward normalises over the batch axis",
            None,
        ),
    ],
)


def _l2_normalize(x):
    return x / x.norm(dim=-1, keepdim=True)


def _l2_normalize_jax(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def _l2_bwd(axis=-1):
    def bwd(g, x):
        r = x.norm(dim=-1, keepdim=True)
        y = x / r
        return ((g - y * (g * y).sum(axis, keepdim=True)) / r,)

    return bwd


# positive entries: no zero row, where the direction is undefined
_add(
    "l2_normalize",
    function("L2NormalizeMut", _l2_normalize, _l2_bwd()),
    _l2_normalize_jax,
    [tensor("b n", low=0.5, high=3.0)],
    None,
    [
        (
            "sum_axis_0",
            "wrong reduction axis",
            function("L2NormalizeAxis", _l2_normalize, _l2_bwd(axis=0)),
            "the projection's sum of g * y runs over the batch axis",
            None,
        ),
    ],
)


def _linear(x, w, b):
    return x @ w + b


def _linear_jax(x, w, b):
    return x @ w + b


def _linear_bwd(bias_mean=False, weight_mean=False):
    def bwd(g, x, w, b):
        gw = x.T @ g
        if weight_mean:
            gw = gw / x.shape[0]
        return g @ w.T, gw, (g.mean(0) if bias_mean else g.sum(0))

    return bwd


_add(
    "linear",
    function("LinearMut", _linear, _linear_bwd()),
    _linear_jax,
    [
        tensor("b i", low=-3.0, high=3.0),
        tensor("i o", low=-3.0, high=3.0),
        tensor("o", low=-3.0, high=3.0),
    ],
    None,
    [
        (
            "bias_mean",
            "wrong reduction axis",
            function("LinearBiasMean", _linear, _linear_bwd(bias_mean=True)),
            "the bias, broadcast over the batch, gets the batch mean of g instead of its sum",
            "scaled",
        ),
        (
            "weight_mean",
            "wrong reduction axis",
            function("LinearWeightMean", _linear, _linear_bwd(weight_mean=True)),
            "the weight's gradient is averaged over the batch instead of summed",
            "scaled",
        ),
    ],
)


# --- branches --------------------------------------------------------------------------------


def _clamp(x):
    return torch.clamp(x, -1.0, 1.0)


def _clamp_jax(x):
    return jnp.clip(x, -1.0, 1.0)


_add(
    "clamp",
    function("ClampMut", _clamp, lambda g, x: (g * (x.abs() < 1),)),
    _clamp_jax,
    [tensor("b n", low=-3.0, high=3.0)],
    None,
    [
        (
            "boundary_2",
            "wrong branch boundary",
            function("ClampBoundary", _clamp, lambda g, x: (g * (x.abs() < 2),)),
            "the gradient passes for |x| < 2 although the clamp is at 1",
            None,
        ),
    ],
)


class ConditionalOpBoundary(ConditionalOp):
    """The catalog's ConditionalOp with the backward's branch at 1 instead of 0."""

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return torch.where(x > 1, grad_output * 2, grad_output * 0.5)


_add(
    "conditional_op",
    ConditionalOp.apply,
    conditional_op_jax,
    [tensor("b n", low=-50.0, high=50.0)],
    None,
    [
        (
            "boundary_1",
            "wrong branch boundary",
            ConditionalOpBoundary.apply,
            "backward switches slopes at x = 1, the forward at x = 0",
            None,
        ),
    ],
)


# --- large magnitudes: a backward that overflows where the forward does not ------------------
# The inputs reach 1000, beyond float64's exp overflow (709) as well as float32's (88).

_BIG = [tensor("b n", low=-1000.0, high=1000.0)]


def _softplus(x):
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def _softplus_jax(x):
    return jnp.logaddexp(x, 0.0)


_add(
    "softplus",
    function("SoftplusMut", _softplus, lambda g, x: (g * torch.sigmoid(x),)),
    _softplus_jax,
    _BIG,
    None,
    [
        (
            "naive_sigmoid",
            "large magnitude",
            function(
                "SoftplusNaive", _softplus, lambda g, x: (g * torch.exp(x) / (1 + torch.exp(x)),)
            ),
            "backward computes exp(x) / (1 + exp(x)): inf / inf = NaN for large x",
            "nonfinite",
        ),
    ],
)


def _logistic(x):
    return torch.sigmoid(x)


def _logistic_bwd(g, x):
    y = torch.sigmoid(x)
    return (g * y * (1 - y),)


_add(
    "logistic",
    function("LogisticMut", _logistic, _logistic_bwd),
    jax.nn.sigmoid,
    _BIG,
    None,
    [
        (
            "naive_derivative",
            "large magnitude",
            function(
                "LogisticNaive",
                _logistic,
                lambda g, x: (g * torch.exp(-x) / (1 + torch.exp(-x)) ** 2,),
            ),
            "backward computes exp(-x) / (1 + exp(-x))^2: inf / inf = NaN for very negative x",
            "nonfinite",
        ),
    ],
)


def _logcosh(x):
    a = x.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


def _logcosh_jax(x):
    a = jnp.abs(x)
    return a + jnp.log1p(jnp.exp(-2 * a)) - math.log(2.0)


_add(
    "logcosh",
    function("LogcoshMut", _logcosh, lambda g, x: (g * torch.tanh(x),)),
    _logcosh_jax,
    _BIG,
    None,
    [
        (
            "naive_tanh",
            "large magnitude",
            function(
                "LogcoshNaive",
                _logcosh,
                lambda g, x: (g * (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),),
            ),
            "backward computes tanh as (e^x - e^-x) / (e^x + e^-x): inf / inf = NaN for large |x|",
            "nonfinite",
        ),
    ],
)


# --- wrong constants -------------------------------------------------------------------------

_SQRT_2PI = math.sqrt(2 * math.pi)
_C = math.sqrt(2 / math.pi)


def _gelu(x):
    # erfc, not the textbook 1 + erf(x / sqrt 2): that sum cancels for x < -3 and loses
    # three digits of float32 (the oracle flags it as a forward mismatch)
    return 0.5 * x * torch.erfc(-x / math.sqrt(2))


def _gelu_tanh_grad(x, k=0.044715):
    t = torch.tanh(_C * (x + k * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _C * (1 + 3 * k * x * x)


_add(
    "gelu",
    function(
        "GeluMut",
        _gelu,
        lambda g, x: (
            g * (0.5 * torch.erfc(-x / math.sqrt(2)) + x * torch.exp(-x * x / 2) / _SQRT_2PI),
        ),
    ),
    lambda x: jax.nn.gelu(x, approximate=False),
    [tensor("b n", low=-6.0, high=6.0)],
    None,
    [
        (
            "tanh_backward",
            "wrong constant",
            function("GeluTanhBackward", _gelu, lambda g, x: (g * _gelu_tanh_grad(x),)),
            "the exact (erf) GELU's backward uses the tanh approximation's derivative (off by up to 9e-4)",
            None,
        ),
    ],
)


def _gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(_C * (x + 0.044715 * x**3)))


_add(
    "gelu_tanh",
    function("GeluTanhMut", _gelu_tanh, lambda g, x: (g * _gelu_tanh_grad(x),)),
    lambda x: jax.nn.gelu(x, approximate=True),
    [tensor("b n", low=-6.0, high=6.0)],
    None,
    [
        (
            "constant_typo",
            "wrong constant",
            function("GeluTanhTypo", _gelu_tanh, lambda g, x: (g * _gelu_tanh_grad(x, k=0.0447),)),
            "backward uses 0.0447 for 0.044715 (off by at most 1e-5: below float32's tolerance)",
            None,
        ),
    ],
)


# --- graph cuts --------------------------------------------------------------------------------

_add(
    "exp_ratio",
    ExpRatioLoss(),
    exp_ratio_jax,
    [tensor("b n", low=-20.0, high=20.0), tensor("b n", low=-20.0, high=20.0)],
    None,
    [
        (
            "cut_graph",
            "graph cut",
            ExpRatioLossCutGraph(),
            "the catalog's specimen: exponentials computed in numpy, requires_grad_() on a new leaf",
            "disconnected",
        ),
    ],
)


def _sum_normalize(x):
    return x / x.sum()


def _sum_normalize_jax(x):
    return x / jnp.sum(x)


_add(
    "sum_normalize",
    _sum_normalize,
    _sum_normalize_jax,
    [tensor("b n", low=0.5, high=3.0)],
    None,
    [
        (
            "item",
            "graph cut",
            lambda x: x / x.sum().item(),
            "the normaliser goes through .item(): its share of the gradient is lost",
            None,
        ),
    ],
)


MUTANTS: tuple[Mutant, ...] = tuple(_MUTANTS)


def originals() -> dict[str, Mutant]:
    """One mutant per distinct original (its first), by the original's name."""
    out: dict[str, Mutant] = {}
    for m in MUTANTS:
        out.setdefault(m.original_name, m)
    return out
