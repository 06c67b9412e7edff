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
        return jittered(twin, [x], "cpu", [cot], (EPS, 2.0**-133, 3.4e38))


def test_a_sum_of_squares_is_rounded_once_per_operation():
    # x * x, then one reduce_sum: each result moved by half bfloat16's spacing at its
    # magnitude (at most eps/2 of it), so at most (1 + eps/2)**2 - 1 from the exact value;
    # the gradient 2 x g (two multiplications) the same
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


def test_near_zero_a_rounding_moves_by_half_the_smallest_subnormal():
    # float16's subnormals are 2**-24 apart: exp(-12) = 6.1e-6 keeps about 7 bits, so a
    # rounding moves it by 2**-25 = 3e-8, half a percent (eps/2 would be 0.05 percent)
    twin = TwinSide(lambda x: jnp.exp(x), normalize_inputs([tensor("n")]))
    x = np.array([-12.0])
    limits = (2.0**-10, 2.0**-24, 65504.0)
    with precision_scope("float64", "cpu"):
        samples = jittered(twin, [x], "cpu", [np.array([1.0])], limits, draws=1)
    ((out,), _) = samples[0]
    assert abs(abs(out[0] - np.exp(-12.0)) - 2.0**-25) < 1e-12


def test_past_the_largest_number_a_rounding_overflows():
    # exp(12) = 162755 is past float16's 65504: the formula exp(p) / exp(t) gives 0 there
    twin = TwinSide(lambda p, t: jnp.exp(p) / jnp.exp(t), normalize_inputs([tensor("n")] * 2))
    limits = (2.0**-10, 2.0**-24, 65504.0)
    with precision_scope("float64", "cpu"):
        samples = jittered(
            twin, [np.array([0.0]), np.array([12.0])], "cpu", [np.array([1.0])], limits, draws=1
        )
    ((out,), _) = samples[0]
    assert out[0] == 0.0
