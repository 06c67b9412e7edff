"""Registered pairs for the Ctrl-C tests: a quick right pair, then a slow right pair."""

from __future__ import annotations

import time

import jax.numpy as jnp
import torch

import oracle
from oracle import tensor


class QuickSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


class SlowSin(QuickSin):
    """Right, and slow: each forward sleeps, so a run of many examples takes minutes."""

    @staticmethod
    def forward(ctx, x):
        time.sleep(0.05)
        ctx.save_for_backward(x)
        return torch.sin(x)


oracle.twin(jnp.sin, inputs=[tensor("n")], name="e2e_quick_sin", max_examples=5)(QuickSin)
oracle.twin(jnp.sin, inputs=[tensor("n")], name="e2e_slow_sin", max_examples=100000)(SlowSin)
