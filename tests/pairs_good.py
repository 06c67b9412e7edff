"""Registered pairs for the command-line and plugin tests: all as expected."""

from __future__ import annotations

import jax.numpy as jnp

import oracle
from oracle import tensor
from tests import specimens as sp

oracle.twin(jnp.sin, inputs=[tensor("n")], name="cli_good_sin", max_examples=30)(sp.GoodSin)
oracle.twin(
    jnp.exp,
    inputs=[tensor("n", low=-3, high=3)],
    name="cli_scaled_exp",
    known_divergence=oracle.Known(
        "backward doubles the derivative", argument=0, diagnosis="scaled", factor=2.0
    ),
)(sp.ScaledExp)
