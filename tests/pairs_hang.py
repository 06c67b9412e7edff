"""A registered pair whose backward hangs: the command line's and plugin's --timeout."""

from __future__ import annotations

import time

import jax.numpy as jnp
import torch

import oracle
from oracle import tensor


class HangingSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        while True:
            time.sleep(0.01)


oracle.twin(jnp.sin, inputs=[tensor("n")], name="cli_hanging_sin", max_examples=5)(HangingSin)
