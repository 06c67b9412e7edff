"""The JAX internals the oracle relies on (oracle/pair/jax_internals.py): they still exist
and do what the oracle uses them for; fails loudly when a JAX release renames them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from oracle.pair import jax_internals


def test_the_staging_caches_exist_and_can_be_cleared():
    caches = jax_internals.staging_caches()
    assert len(caches) == 2 and all(callable(c.cache_clear) for c in caches)
    jax.make_jaxpr(lambda x: x * 2.0)(jnp.ones(3))  # something in them
    jax_internals.forget_traces()
    assert all(c.cache_info().currsize == 0 for c in caches if hasattr(c, "cache_info"))


def test_x64_global_reads_the_global_flag_not_the_scope_in_force():
    before = jax_internals.x64_global()
    with jax.enable_x64(not before):
        # the scope's value is in force...
        assert bool(jax.config.jax_enable_x64) is (not before)
        # ...but the global flag is unchanged
        assert jax_internals.x64_global() is before
    assert jax_internals.x64_global() is before


def test_a_twin_closing_over_a_float64_constant_runs_in_both_modes_after_forget_traces():
    w = np.array([1.5, 2.0])  # float64: canonicalised to float32 outside x64

    def f(x):
        return x * w

    with jax.enable_x64(False):
        assert jnp.asarray(f(jnp.ones(2, jnp.float32))).dtype == jnp.float32
    jax_internals.forget_traces()
    with jax.enable_x64(True):
        assert jnp.asarray(f(jnp.ones(2, jnp.float64))).dtype == jnp.float64


def test_matmul_precision_global_reads_the_global_value_not_the_scope_in_force():
    before = jax_internals.matmul_precision_global()
    with jax.default_matmul_precision("highest"):
        assert jax.config.jax_default_matmul_precision == "highest"
        assert jax_internals.matmul_precision_global() == before
    jax_internals.set_matmul_precision_global("bfloat16")
    try:
        assert jax_internals.matmul_precision_global() == "bfloat16"
    finally:
        jax_internals.set_matmul_precision_global(before)
    assert jax_internals.matmul_precision_global() == before
