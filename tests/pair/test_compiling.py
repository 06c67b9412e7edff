"""How the twin's programs are compiled (oracle.pair.compiling): fast-compiling options for
small programs on the CPU, XLA's defaults otherwise, and the same values either way."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from oracle.pair.compiling import SMALL_PROGRAM, options_for


def test_small_cpu_programs_compile_for_compile_time_and_large_ones_keep_the_defaults():
    assert options_for(True, "cpu") == {
        "xla_backend_optimization_level": 0,
        "xla_cpu_use_fusion_emitters": False,
    }
    assert options_for(False, "cpu") == {}
    # the CPU emitter's flag is not sent to another backend
    assert options_for(True, "cuda") == {"xla_backend_optimization_level": 0}
    assert SMALL_PROGRAM == 1 << 16


def _vjp(x, w, t, c):
    def f(x, w):
        z = x @ w
        return -(jax.nn.log_softmax(z, axis=-1) * t).sum(-1).mean() + jnp.sum(jnp.sin(w) * w)

    out, pull = jax.vjp(f, x, w)
    return out, pull(c)


def test_the_fast_options_compute_what_the_defaults_compute():
    rng = np.random.default_rng(0)
    for b, n, k in [(1, 1, 2), (3, 2, 5), (8, 3, 3)]:
        args = [
            rng.standard_normal((b, n)).astype(np.float32),
            rng.standard_normal((n, k)).astype(np.float32),
            rng.random((b, k)).astype(np.float32),
            np.float32(0.7),
        ]
        fast = jax.jit(_vjp, compiler_options=options_for(True, "cpu"))(*args)
        default = jax.jit(_vjp)(*args)
        leaves = zip(
            jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(default), strict=True
        )
        for a, d in leaves:
            np.testing.assert_allclose(np.asarray(a), np.asarray(d), rtol=1e-6, atol=1e-7)
