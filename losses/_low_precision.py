r"""Functions written for the low dtypes (bfloat16, float16, autocast) and a float64 one
with a float32 constant: where a kernel's precision, not its formula, is the bug.

All compute the same thing as their twin in exact arithmetic and are clean in float32 and
float64 (except :class:`ComparatorNetworkFloat32Sigma`, whose bug is a float32 number in
a float64 backward). They are judged by the error budget (``oracle.judge.budget``): in a
low dtype torch's error against the float64 twin may be at most twice the error of the
twin run by JAX in that dtype, plus a floor of two ulps.

* :class:`ScaleColumns`: ``y = x * w`` (one weight per column), its weight gradient
  :math:`\partial L/\partial w_j = \sum_i g_{ij} x_{ij}` accumulated in float32 whatever
  the input dtype, as a kernel should. Clean in every dtype.
* :class:`ScaleColumnsLowAccumulator`: the same sum accumulated in the input dtype, one
  row at a time (an accumulator register kept in bfloat16): over 1024 rows each
  addition rounds to 8 (bfloat16) or 11 (float16) bits.
* :class:`ScaleColumnsFp8Reduce`: for 16-bit inputs, each row's contribution
  :math:`g_{ij} x_{ij}` is cast down to float8 (e5m2, as an FP8 gradient all-reduce does)
  before the reduction over rows; a dtype switch inside the kernel, like the published
  Triton GroupNorm that rounds its weight and bias gradients to bfloat16 for every input
  dtype but float32.
* :class:`AutocastLinear` / :class:`AutocastLinearNoCustomBwd`: ``x @ w`` under
  ``torch.autocast``, with ``torch.amp.custom_fwd`` and ``custom_bwd``; the second
  forgets ``custom_bwd``, so its backward runs outside autocast and multiplies the
  bfloat16 ``grad_output`` by the float32 weight: it raises under autocast only.
* :class:`ComparatorNetwork` / :class:`ComparatorNetworkFloat32Sigma`: a soft sorting
  network of normal-CDF comparators; the second keeps its steepness ``sigma`` as a
  float32 tensor in the backward of an otherwise float64 computation, so its float64
  gradients have float32's precision.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.scipy.stats as jstats
import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

import oracle
from oracle import tensor

__all__ = [
    "ScaleColumns",
    "ScaleColumnsLowAccumulator",
    "ScaleColumnsFp8Reduce",
    "scale_columns_jax",
    "AutocastLinear",
    "AutocastLinearNoCustomBwd",
    "linear_jax",
    "ComparatorNetwork",
    "ComparatorNetworkFloat32Sigma",
    "comparator_network_jax",
]

#: long reductions over rows: where an accumulator's precision shows
_ROWS = {"b": [128, 256], "n": (1, 4)}
#: an accumulator's rounding grows with the square root of the rows it adds, the naive
#: implementation's (a float32 accumulator) does not: 1024 rows make it 20 times larger
_LONG_ROWS = {"b": [1024], "n": (1, 4)}
_LOW_DTYPES = ("bfloat16", "float16")


def scale_columns_jax(x: jax.Array, w: jax.Array) -> jax.Array:
    """JAX twin of the ``ScaleColumns`` Functions."""
    return x * w


def _accumulate_fp32(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (
        (g.float() * x.float()).sum(0).to(x.dtype) if x.dtype != torch.float64 else (g * x).sum(0)
    )


class _ScaleColumnsBase(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def _weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def backward(cls, ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, w = ctx.saved_tensors
        return g * w, cls._weight_grad(g, x)


@oracle.twin(
    scale_columns_jax,
    inputs=[tensor("b n", low=-3.0, high=3.0), tensor("n", low=-3.0, high=3.0)],
    dims=_ROWS,
    name="scale_columns",
)
class ScaleColumns(_ScaleColumnsBase):
    r"""One weight per column, the weight gradient accumulated in float32.

    .. math::

        y_{ij} = x_{ij} w_j, \qquad
        \frac{\partial L}{\partial x_{ij}} = g_{ij} w_j, \qquad
        \frac{\partial L}{\partial w_j} = \sum_i g_{ij} x_{ij}
    """

    @staticmethod
    def _weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _accumulate_fp32(g, x)


@oracle.twin(
    scale_columns_jax,
    inputs=[tensor("b n", low=-3.0, high=3.0), tensor("n", low=-3.0, high=3.0)],
    dims=_LONG_ROWS,
    name="scale_columns_low_accumulator",
    known_divergence=oracle.Known(
        why="the weight gradient's sum over 1024 rows is accumulated in the input dtype, "
        "one row at a time: every addition rounds to bfloat16 or float16",
        argument=1,
        check="vjp",
        diagnosis="precision",
        blame="torch",
        dtypes=_LOW_DTYPES,
    ),
)
class ScaleColumnsLowAccumulator(_ScaleColumnsBase):
    """:class:`ScaleColumns` with the weight gradient's accumulator kept in the input
    dtype (exact enough in float32 and float64; the bug shows in the low dtypes)."""

    @staticmethod
    def _weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        acc = torch.zeros(x.shape[1:], dtype=x.dtype)
        for i in range(x.shape[0]):
            acc = acc + g[i] * x[i]  # rounds to x.dtype at every row
        return acc


@oracle.twin(
    scale_columns_jax,
    inputs=[tensor("b n", low=-3.0, high=3.0), tensor("n", low=-3.0, high=3.0)],
    dims=_ROWS,
    name="scale_columns_fp8_reduce",
    known_divergence=oracle.Known(
        why="for 16-bit inputs each row's contribution to the weight gradient is cast down "
        "to float8 (e5m2: 2 bits of mantissa) before the sum over rows",
        argument=1,
        check="vjp",
        diagnosis="precision",
        blame="torch",
        dtypes=_LOW_DTYPES,
    ),
)
class ScaleColumnsFp8Reduce(_ScaleColumnsBase):
    """:class:`ScaleColumns` whose 16-bit path casts the per-row products to float8 before
    the reduction (float32 and float64 take the exact path, as the kernel it copies
    picks its reduction dtype by the input dtype)."""

    @staticmethod
    def _weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float32, torch.float64):
            return _accumulate_fp32(g, x)
        terms = (g.float() * x.float()).to(torch.float8_e5m2)  # the gradient cast down early
        return terms.float().sum(0).to(x.dtype)


def linear_jax(x: jax.Array, w: jax.Array) -> jax.Array:
    """JAX twin of the ``AutocastLinear`` Functions."""
    return x @ w


@oracle.twin(
    linear_jax,
    inputs=[tensor("b k", low=-3.0, high=3.0), tensor("k n", low=-3.0, high=3.0)],
    dims={"b": (1, 8), "k": [4, 64], "n": (1, 4)},
    name="autocast_linear",
)
class AutocastLinear(Function):
    r"""``x @ w``, written for ``torch.autocast``: ``custom_fwd`` runs the forward under
    the caller's autocast (the matmul in bfloat16), ``custom_bwd`` runs the backward under
    the same autocast state, so ``grad_output`` (bfloat16) and the saved float32 weight
    are cast to one dtype before they meet.

    .. math::

        Y = X W, \qquad \frac{\partial L}{\partial X} = G W^T, \qquad
        \frac{\partial L}{\partial W} = X^T G
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, w = ctx.saved_tensors
        return g @ w.mT, x.mT @ g


@oracle.twin(
    linear_jax,
    inputs=[tensor("b k", low=-3.0, high=3.0), tensor("k n", low=-3.0, high=3.0)],
    dims={"b": (1, 8), "k": [4, 64], "n": (1, 4)},
    name="autocast_linear_no_custom_bwd",
    known_divergence=oracle.Known(
        why="custom_fwd without custom_bwd: under autocast the backward runs outside it and "
        "multiplies the bfloat16 grad_output by the float32 weight, which raises",
        check="error",
        diagnosis="error",
        blame="torch",
        dtypes=("autocast-bfloat16", "autocast-float16"),
    ),
)
class AutocastLinearNoCustomBwd(Function):
    """:class:`AutocastLinear` without ``@torch.amp.custom_bwd`` on its backward: right in
    every dtype, raises under autocast."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, w = ctx.saved_tensors
        return g @ w.mT, x.mT @ g


# --- a soft sorting network ----------------------------------------------------------

_SIGMA = 0.1  # the comparators' steepness (not a float32 number: 0.1 rounds)


def _pairs(n: int) -> list[tuple[int, int]]:
    """The comparators of an odd-even transposition network on n wires, layer by layer."""
    return [(i, i + 1) for layer in range(n) for i in range(layer % 2, n - 1, 2)]


def comparator_network_jax(x: jax.Array) -> jax.Array:
    """JAX twin of the ``ComparatorNetwork`` Functions: each comparator mixes its two
    wires with ``p = Phi((b - a) / sigma)``: ``min = p a + (1 - p) b``,
    ``max = p b + (1 - p) a``."""
    for i, j in _pairs(x.shape[-1]):
        a, b = x[..., i], x[..., j]
        p = jstats.norm.cdf((b - a) / _SIGMA)
        x = x.at[..., i].set(p * a + (1 - p) * b).at[..., j].set(p * b + (1 - p) * a)
    return x


def _cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2.0))


class _ComparatorNetworkBase(Function):
    r"""Forward through every comparator, saving its inputs; backward through them in
    reverse. For one comparator with :math:`z = (b - a)/\sigma`, :math:`p = \Phi(z)`,
    :math:`p' = \varphi(z)/\sigma` and outputs :math:`u = pa + (1-p)b`,
    :math:`v = pb + (1-p)a`, with incoming gradients :math:`g_u, g_v`:

    .. math::

        \frac{\partial L}{\partial a} = p g_u + (1-p) g_v - p' (a - b)(g_u - g_v), \qquad
        \frac{\partial L}{\partial b} = (1-p) g_u + p g_v + p' (a - b)(g_u - g_v)
    """

    @staticmethod
    def _sigma(like: torch.Tensor) -> Any:
        return _SIGMA

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        saved = []
        x = x.clone()
        for i, j in _pairs(x.shape[-1]):
            a, b = x[..., i].clone(), x[..., j].clone()
            saved += [a, b]
            p = _cdf((b - a) / _SIGMA)
            x[..., i], x[..., j] = p * a + (1 - p) * b, p * b + (1 - p) * a
        ctx.save_for_backward(*saved)
        return x

    @classmethod
    @once_differentiable  # the saved wires carry no graph: no second derivative
    def backward(cls, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        saved = ctx.saved_tensors
        g = g.clone()
        pairs = _pairs(g.shape[-1])
        for k in reversed(range(len(pairs))):
            i, j = pairs[k]
            a, b = saved[2 * k], saved[2 * k + 1]
            sigma = cls._sigma(a)
            z = (b - a) / sigma
            p = _cdf(z)
            dp = torch.exp(-0.5 * z * z) / (sigma * math.sqrt(2.0 * math.pi))
            gu, gv = g[..., i].clone(), g[..., j].clone()
            mixed = dp * (a - b) * (gu - gv)
            g[..., i] = p * gu + (1 - p) * gv - mixed
            g[..., j] = (1 - p) * gu + p * gv + mixed
        return g


@oracle.twin(
    comparator_network_jax,
    inputs=[tensor("b n", low=-1.0, high=1.0)],
    dims={"n": (2, 6)},
    name="comparator_network",
)
class ComparatorNetwork(_ComparatorNetworkBase):
    __doc__ = "A soft odd-even sorting network of normal-CDF comparators.\n\n" + (
        _ComparatorNetworkBase.__doc__ or ""
    )


@oracle.twin(
    comparator_network_jax,
    inputs=[tensor("b n", low=-1.0, high=1.0)],
    dims={"n": (2, 6)},
    name="comparator_network_float32_sigma",
    known_divergence=oracle.Known(
        why="the backward keeps sigma as a float32 tensor (0.1 rounds to 0.10000000149): "
        "its float64 gradients have float32's precision",
        argument=0,
        check="vjp",
        diagnosis="precision",
        blame="torch",
        dtypes=("float64",),
    ),
)
class ComparatorNetworkFloat32Sigma(_ComparatorNetworkBase):
    """:class:`ComparatorNetwork` whose backward reads ``sigma`` from a float32 tensor, as a
    published differentiable sorting network keeps its steepness: in float64, every
    comparator's derivative is off in the 8th digit."""

    @staticmethod
    def _sigma(like: torch.Tensor) -> Any:
        return torch.tensor([_SIGMA], dtype=torch.float32)
