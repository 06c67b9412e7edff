"""The twin's formula under random rounding (oracle.judge.jitter): each operation that
computes is rounded once by eps/2, a reduction once as a whole."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from oracle import tensor
from oracle.inputs.specs import normalize_inputs
from oracle.judge.jitter import jittered
from oracle.pair.bridge import precision_scope
from oracle.pair.twin_side import TwinSide

EPS = 2.0**-7  # bfloat16's


def _samples(fn, x, cot):
    twin = TwinSide(fn, normalize_inputs([tensor("n")]))
    with precision_scope("float64", "cpu"):
        return jittered(twin, [x], "cpu", [cot], EPS)


def test_a_sum_of_squares_is_rounded_once_per_operation():
    # x * x, then one reduce_sum: at most (1 + eps/2)**2 - 1 from the exact value, and the
    # gradient 2 x g (two multiplications) the same
    x = np.array([1.0, 2.0, 3.0])
    samples = _samples(lambda x: jnp.sum(x * x), x, np.array(0.5))
    assert len(samples) == 3
    bound = (1 + EPS / 2) ** 2 - 1
    for (out,), (grad,) in samples:
        assert abs(out - 14.0) <= bound * 14.0 and out != 14.0
        assert np.all(np.abs(grad - x) <= bound * np.abs(x) * 1.0001)


def test_an_ill_conditioned_intermediate_spreads_as_far_as_its_conditioning():
    # tanh's derivative from its rounded output, 1 - tanh(4)**2 = 1.3e-3: a rounding of
    # tanh(4) = 0.9993 by eps/2 moves it by 4e-3, three times its own size
    x = np.array([4.0])
    exact = 1 - np.tanh(4.0) ** 2
    samples = _samples(lambda x: jnp.sum(jnp.tanh(x)), x, np.array(1.0))
    spread = max(float(np.max(np.abs(g - exact))) for _, (g,) in samples)
    assert spread > exact
