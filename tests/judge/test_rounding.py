"""oracle.judge.rounding: the magnitude of the terms behind each value, on hand-worked
jaxprs (sums add magnitudes, products multiply them, other primitives propagate to first
order), and through a twin's vjp."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oracle.inputs.specs import TensorSpec
from oracle.judge.rounding import magnitudes_of_jaxpr, term_magnitudes
from oracle.pair.bridge import precision_scope
from oracle.pair.twin_side import TwinSide


def magnitudes(f, *args):
    args = [
        np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
        for a in args
    ]
    with precision_scope("float64", "cpu"):
        closed = jax.make_jaxpr(f)(*args)
        return magnitudes_of_jaxpr(closed, args)


def test_a_product_of_differences_keeps_the_size_of_its_terms():
    # (a - b) * c at a = b = 3, c = -2: the value is 0; |a| + |b| = 6, times |c| = 12
    (mag,) = magnitudes(lambda a, b, c: (a - b) * c, 3.0, 3.0, -2.0)
    assert float(mag) == 12.0


def test_a_dot_product_sums_the_magnitudes_of_its_products():
    # (1, -2) . (3, 1.5) = 0; |1 x 3| + |-2 x 1.5| = 6
    (mag,) = magnitudes(jnp.dot, [1.0, -2.0], [3.0, 1.5])
    assert float(mag) == 6.0


def test_moving_data_moves_the_magnitudes():
    (mag,) = magnitudes(
        lambda a, b: (a - b).T.reshape(-1), [[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))
    )
    assert mag.tolist() == [2.0, 4.0, 3.0, 5.0]  # |a| + |b|, transposed and flattened


def test_a_division_divides_by_the_divisors_value():
    # (a - b) / d at a = b = 4, d = -2: 8 / 2
    (mag,) = magnitudes(lambda a, b, d: (a - b) / d, 4.0, 4.0, -2.0)
    assert float(mag) == 4.0


def test_another_primitive_adds_its_first_order_propagation():
    # exp(a - b) at a = b = 1: |exp 0| + |exp'(0)| x (|a| + |b|) = 1 + 2
    (mag,) = magnitudes(lambda a, b: jnp.exp(a - b), 1.0, 1.0)
    assert float(mag) == pytest.approx(3.0)


def test_a_magnitude_is_never_below_the_value_itself():
    (mag,) = magnitudes(lambda a: a * a, -3.0)
    assert float(mag) == 9.0


def test_a_non_float_output_has_no_magnitude():
    mags = magnitudes(lambda x: (x * 2, jnp.argmax(x)), [1.0, 3.0])
    assert mags[0].tolist() == [2.0, 6.0] and mags[1] is None


def test_term_magnitudes_of_a_twins_gradient():
    # d/dx sum((x - 1)^2) x ct = 2 (x - 1) ct; at x = 1 the gradient is 0, its terms are
    # 2 x (|x| + 1) x |ct| = 4 x 0.5 = 2
    twin = TwinSide(lambda x: (x - 1.0) ** 2, (TensorSpec(("n",)),))
    with precision_scope("float64", "cpu"):
        (mag,) = term_magnitudes(twin, [np.array([1.0, 3.0])], "cpu", [np.array([0.5, 0.5])])
    assert mag[0] == pytest.approx(2.0)
    assert mag[1] >= 2.0  # the gradient itself there: 2 x 2 x 0.5
    twin.release()


def test_a_twins_rounding_model_is_one_compiled_program_per_signature_with_the_same_values():
    # op by op, each primitive of the model was a compilation of its own at each new shape
    # (a run over ill-conditioned float32 inputs spent half its time in them)
    def twin_fn(x, y):
        return jnp.sum(jnp.tanh(x) * y) / jnp.sqrt(jnp.sum(x**2) + 1.0)

    twin = TwinSide(twin_fn, (TensorSpec(("n",)), TensorSpec(("n",))))
    compiled: list[str] = []

    def count(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(count)
    rng = np.random.default_rng(0)
    counts: list[int] = []
    try:
        with precision_scope("float64", "cpu"):
            for n in (3, 3, 3, 5):
                x, y = rng.normal(size=n), rng.normal(size=n)
                before = len(compiled)
                got = term_magnitudes(twin, [x, y], "cpu", [np.array(0.7)])
                counts.append(len(compiled) - before)
                grads = lambda x, y: jax.vjp(twin_fn, x, y)[1](jnp.asarray(0.7))  # noqa: E731
                eager = magnitudes_of_jaxpr(jax.make_jaxpr(grads)(x, y), [x, y])
                for g, e in zip(got, eager[-2:], strict=True):
                    np.testing.assert_allclose(g, e, rtol=1e-12)
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
        twin.release()
    # one program for the first signature, none for it again, one for the next
    assert counts == [1, 0, 0, 1]
