"""Registered pairs for the command-line and plugin tests: outcomes not as declared."""

from __future__ import annotations

import jax.numpy as jnp

import oracle
from oracle import tensor
from tests import specimens as sp

# registered as clean, but its backward flips the sign: an unexpected divergence
oracle.twin(jnp.sin, inputs=[tensor("n")], name="cli_flipped_sin")(sp.FlippedSin)
# declared as a known divergence, but its backward is right: a missed specimen
oracle.twin(
    jnp.cos,
    inputs=[tensor("n")],
    name="cli_not_actually_wrong",
    known_divergence="claims to be wrong",
    max_examples=30,
)(lambda x: x.cos())
