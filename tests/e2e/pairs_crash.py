"""Registered pairs whose user code ends the process in one way or another, and a right
one: the command line's ``--isolate`` and the plugin's ``--oracle-isolate``."""

from __future__ import annotations

import ctypes
import os
import sys

import jax.numpy as jnp
import torch

import oracle
from oracle import tensor


class RightSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


class ExitingSin(RightSin):
    """Calls ``sys.exit(0)`` in its forward."""

    @staticmethod
    def forward(ctx, x):
        sys.exit(0)


class HardExitingSin(RightSin):
    """Ends the process at once (no exception, no cleanup) in its forward."""

    @staticmethod
    def forward(ctx, x):
        os._exit(7)


class SegfaultingSin(RightSin):
    """Reads through a null pointer in its backward, as a broken native kernel would."""

    @staticmethod
    def backward(ctx, g):
        ctypes.string_at(0)
        return g


_INPUTS = [tensor("n", low=-3, high=3)]
oracle.twin(jnp.sin, inputs=_INPUTS, name="e2e_exits", max_examples=5)(ExitingSin)
oracle.twin(jnp.sin, inputs=_INPUTS, name="e2e_os_exit", max_examples=5)(HardExitingSin)
oracle.twin(jnp.sin, inputs=_INPUTS, name="e2e_segfault", max_examples=5)(SegfaultingSin)
oracle.twin(jnp.sin, inputs=_INPUTS, name="e2e_right", max_examples=5)(RightSin)
