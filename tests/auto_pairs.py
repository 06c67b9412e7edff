r"""Functions for the automatic twin's tests (``jax_fn="auto"``), and pairs registered
with it for the command-line test.

Each backward here is correct; what varies is whether torchax can translate the
forward. They live in an importable module so that a reproducer can import them in a
subprocess. Importing this module does not import torchax: the twins are built when a
pair is verified.
"""

from __future__ import annotations

import torch

import oracle
from oracle import tensor
from tests import specimens as sp

_fn = sp._fn  # a Function from a forward and a backward (one tensor argument)


def _masked_square(x):
    # a boolean mask: the selected part's shape depends on the data
    y = torch.zeros_like(x)
    y[x > 0] = x[x > 0] ** 2
    return y


#: y = x^2 where x > 0, else 0; dy/dx = 2x (x > 0). Written with a boolean mask.
MaskedSquare = _fn(_masked_square, lambda x, g: g * 2 * x * (x > 0), "MaskedSquare")

#: y = 2x, computed through numpy: the automatic twin cannot follow it.
NumpyDouble = _fn(
    lambda x: torch.from_numpy(x.detach().numpy() * 2), lambda x, g: 2 * g, "NumpyDouble"
)


def _sum_scaled_backward(x, g):
    # y = x * s with s = sum(x): dL/dx = g s + sum(g x)
    return g * x.sum() + (g * x).sum()


#: y = x * sum(x), with the sum taken through .item(): the automatic twin cannot follow it.
ItemScale = _fn(lambda x: x * x.sum().item(), _sum_scaled_backward, "ItemScale")

#: the same, with the sum taken through .tolist()
ToListScale = _fn(
    lambda x: x * sum(x.sum(-1, keepdim=True).tolist()), _sum_scaled_backward, "ToListScale"
)

#: the same, with the sum taken through float(tensor)
FloatScale = _fn(lambda x: x * float(x.sum()), _sum_scaled_backward, "FloatScale")

#: y = 2x, through numpy after moving to the CPU (what code written for CUDA does)
CpuNumpyDouble = _fn(
    lambda x: torch.from_numpy(x.detach().cpu().numpy() * 2), lambda x, g: 2 * g, "CpuNumpyDouble"
)

#: the R factor of a QR decomposition by geqrf, which torchax 0.0.13 does not implement
#: (the backward is a placeholder: the twin fails before it matters)
Geqrf = _fn(lambda a: torch.geqrf(a)[0], lambda a, g: g, "Geqrf")

#: y = ln Gamma(x); dy/dx = digamma(x). torchax 0.0.13 computes lgamma in float32.
LogGamma = _fn(torch.lgamma, lambda x, g: g * torch.special.digamma(x), "LogGamma")


def _weights(x):
    # a tensor made inside the forward, with no device given: torch puts it on the CPU
    return torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)


#: y = x * [1, 2, ..., n], with the weights built in the forward; dy/dx = the weights.
RangeWeighted = _fn(lambda x: x * _weights(x), lambda x, g: g * _weights(x), "RangeWeighted")

#: a straight-through estimator: rounds forward, passes the gradient through unchanged
#: backward. Deliberate, and not the derivative of round (zero almost everywhere).
RoundSTE = _fn(torch.round, lambda x, g: g, "RoundSTE")

#: meant to be y = 2 sin x, but the forward forgets the 2; the backward is the derivative
#: of what the forward computes (cos x), so only a twin of the intended maths can tell.
ForgetsTheTwo = _fn(torch.sin, lambda x, g: g * torch.cos(x), "ForgetsTheTwo")


# --- pairs for the command line: one clean, one specimen, both with the automatic twin

oracle.twin("auto", inputs=[tensor("n")], name="cli_auto_sin", max_examples=10)(sp.GoodSin)
oracle.twin(
    "auto",
    inputs=[tensor("n", low=-3, high=3)],
    name="cli_auto_scaled_exp",
    max_examples=10,
    known_divergence=oracle.Known(
        "backward doubles the derivative",
        argument=0,
        check="vjp",
        diagnosis="scaled",
        factor=2.0,
        blame="torch",
    ),
)(sp.ScaledExp)
