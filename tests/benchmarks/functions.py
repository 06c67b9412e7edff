r"""The three functions the cost tables time, each with a correct hand-written backward.

* ``x_sin``: element-wise, :math:`y = x \sin x`, :math:`\bar x = \bar y (\sin x + x \cos x)`.
* ``smooth_l1``: a reduction, the mean smooth-L1 (Huber, :math:`\beta = 1`) of
  :math:`d = p - t`; :math:`\bar p = \bar L\, \mathrm{clip}(d / \beta, -1, 1) / N`. The
  target is not differentiated (as in training).
* ``gram``: a batched matrix function, :math:`Y_b = X_b X_b^\top`,
  :math:`\bar X_b = (\bar Y_b + \bar Y_b^\top) X_b`.

:func:`shapes_for` picks dimension sizes that put about ``n`` elements in the
differentiated input, so that all three are timed at the same sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import torch
from torch.autograd import Function

from oracle import tensor

__all__ = ["Bench", "BENCHES", "XSin", "SmoothL1Mean", "Gram", "shapes_for"]


class XSin(Function):
    r""":math:`y = x \sin x`, :math:`\bar x = \bar y (\sin x + x \cos x)`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (torch.sin(x) + x * torch.cos(x))


def x_sin_jax(x: jax.Array) -> jax.Array:
    return x * jnp.sin(x)


class SmoothL1Mean(Function):
    r"""Mean smooth-L1 with :math:`\beta = 1`:
    :math:`L = \frac1N \sum_i \ell(p_i - t_i)`, :math:`\ell(d) = d^2/2` for :math:`|d| < 1`,
    :math:`|d| - 1/2` otherwise; :math:`\bar p = \bar L\, \mathrm{clip}(d, -1, 1) / N`."""

    @staticmethod
    def forward(ctx: Any, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = pred - target
        ctx.save_for_backward(d)
        a = d.abs()
        return torch.where(a < 1, 0.5 * d * d, a - 0.5).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (d,) = ctx.saved_tensors
        g = grad * d.clamp(-1, 1) / d.numel()
        return g, -g


def smooth_l1_jax(pred: jax.Array, target: jax.Array) -> jax.Array:
    d = pred - target
    a = jnp.abs(d)
    return jnp.mean(jnp.where(a < 1, 0.5 * d * d, a - 0.5))


class Gram(Function):
    r"""Batched :math:`Y = X X^\top`, :math:`\bar X = (\bar Y + \bar Y^\top) X`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x @ x.mT

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return (grad + grad.mT) @ x


def gram_jax(x: jax.Array) -> jax.Array:
    return x @ jnp.swapaxes(x, -1, -2)


@dataclass(frozen=True)
class Bench:
    name: str
    kind: str
    torch_fn: Any
    jax_fn: Any
    inputs: tuple


BENCHES = (
    Bench("x_sin", "element-wise", XSin.apply, x_sin_jax, (tensor("n", low=-3.0, high=3.0),)),
    Bench(
        "smooth_l1",
        "reduction",
        SmoothL1Mean.apply,
        smooth_l1_jax,
        (tensor("n", low=-3.0, high=3.0), tensor("n", low=-3.0, high=3.0, grad=False)),
    ),
    Bench("gram", "batched matrix", Gram.apply, gram_jax, (tensor("b k k", low=-3.0, high=3.0),)),
)

_K = 16


def shapes_for(bench: Bench, n: int) -> dict[str, int]:
    """Dimension sizes that give the differentiated input about ``n`` elements."""
    if bench.name != "gram":
        return {"n": n}
    if n < _K * _K:
        # too small for one 16 x 16 matrix: one k x k matrix with k^2 close to n
        return {"b": 1, "k": max(1, round(n**0.5))}
    return {"b": max(1, round(n / (_K * _K))), "k": _K}


def elements(bench: Bench, sizes: dict[str, int]) -> int:
    """Elements of the (first) differentiated input at ``sizes``."""
    total = 1
    for d in bench.inputs[0].shape:
        total *= sizes[d] if isinstance(d, str) else d
    return total
