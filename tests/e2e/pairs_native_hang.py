"""A registered pair that hangs where the time limit cannot reach: ``--isolate`` kills it."""

from __future__ import annotations

import signal
import time

import jax.numpy as jnp

import oracle
from oracle import tensor

from .pairs_crash import RightSin


class NativeHangSin(RightSin):
    """Hangs in its backward where the time limit's alarm cannot reach it (as a kernel
    spinning in native code would: here the alarm is ignored)."""

    @staticmethod
    def backward(ctx, g):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(3600)
        return g


oracle.twin(jnp.sin, inputs=[tensor("n")], name="e2e_native_hang", max_examples=5)(NativeHangSin)
