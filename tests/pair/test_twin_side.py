"""oracle.pair.twin_side: the JAX twin's forward and vjp on one example, compiled once
per signature, with its fall-backs for twins that cannot be traced as they are."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from oracle.inputs.specs import ConstantSpec, IntegersSpec, TensorSpec
from oracle.pair import twin_side
from oracle.pair.bridge import precision_scope
from oracle.pair.guard import SideError
from oracle.pair.twin_side import TwinSide

X = TensorSpec(("n",), grad=True)
X_VALUE = np.array([1.0, -2.0, 3.0])
CT = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def _run(side, values, dtype="float64", cots=(CT,)):
    with precision_scope(dtype, "cpu"):
        return side.run(values, dtype, "cpu", list(cots))


def test_returns_outputs_and_the_vjp_with_the_cotangent_in_the_dtype():
    out = _run(TwinSide(lambda x: x * x, [X]), [X_VALUE])
    assert out.leaves[0].tolist() == [1.0, 4.0, 9.0]
    np.testing.assert_allclose(out.grads[0], 2 * X_VALUE * CT)  # d(x^2) = 2x
    assert out.leaves[0].dtype == out.grads[0].dtype == np.float64
    assert out.connected == [True]


def test_float32_runs_give_float32_results():
    out = _run(TwinSide(lambda x: x * x, [X]), [X_VALUE], "float32")
    assert out.leaves[0].dtype == out.grads[0].dtype == np.float32


def test_an_integer_output_is_not_connected_and_takes_no_cotangent():
    out = _run(TwinSide(lambda x: (x * 3, jnp.argmax(x)), [X]), [X_VALUE], cots=(CT, None))
    assert out.connected == [True, False]
    np.testing.assert_allclose(out.grads[0], 3 * CT)


def test_the_twin_is_traced_once_per_signature():
    traces = []

    def twin(x):
        traces.append(x.shape)  # runs when JAX traces, not when the program runs
        return x * 2

    side = TwinSide(twin, [X])
    _run(side, [X_VALUE])
    _run(side, [X_VALUE + 1])
    assert traces == [(3,)]
    _run(side, [np.ones(2)], cots=(np.ones(2, np.float32),))
    assert traces == [(3,), (2,)]


def test_a_twin_branching_on_a_float_hyper_parameter_gets_it_as_a_static_value():
    def twin(x, alpha):
        return x * 2 if alpha > 0 else -x  # Python control flow on the value

    side = TwinSide(twin, [X, ConstantSpec(0.5)])
    np.testing.assert_allclose(_run(side, [X_VALUE, 0.5]).grads[0], 2 * CT)
    np.testing.assert_allclose(_run(side, [X_VALUE, -0.5]).grads[0], -CT)
    assert side._static_scalars and not side._eager


def test_a_twin_with_a_boolean_mask_runs_eagerly_and_its_shapes_follow_the_data():
    def twin(x):
        return x[x > 0] * 3  # a data-dependent shape: no jax.jit can trace it

    side = TwinSide(twin, [X])
    with precision_scope("float64", "cpu"):
        assert side.output_shapes([X_VALUE], "float64", "cpu") == [(2,)]
        assert side.output_shapes([-X_VALUE], "float64", "cpu") == [(1,)]
    out = _run(side, [X_VALUE], cots=(np.array([1.0, -1.0], np.float32),))
    assert side._eager
    assert out.leaves[0].tolist() == [3.0, 9.0]
    assert out.grads[0].tolist() == [3.0, 0.0, -3.0]


def test_output_shapes_are_none_for_non_float_outputs():
    side = TwinSide(lambda x, i: (x[i], i * 2), [X, IntegersSpec(("k",), 0, 2)])
    with precision_scope("float32", "cpu"):
        assert side.output_shapes([X_VALUE, np.array([0, 1])], "float32", "cpu") == [(2,), None]


def test_output_shapes_are_traced_once_for_float32_and_float64():
    traced = []

    def twin(x):
        traced.append(x.dtype)
        return x[:2] * 2

    side = TwinSide(twin, [X])
    for dtype in ("float32", "float64", "float32"):
        with precision_scope(dtype, "cpu"):
            assert side.output_shapes([X_VALUE], dtype, "cpu") == [(2,)]
    assert traced == [jnp.float32]  # shapes do not change with the float dtype
    with precision_scope("float16", "cpu"):
        assert side.output_shapes([X_VALUE], "float16", "cpu") == [(2,)]
    assert len(traced) == 2  # a low dtype is traced on its own
    side.release()


def test_a_twin_that_raises_is_a_twin_side_error():
    def twin(x):
        raise ValueError("no twin today")

    with pytest.raises(SideError) as info:
        _run(TwinSide(twin, [X]), [X_VALUE])
    assert info.value.side == "twin" and isinstance(info.value.exc, ValueError)


def test_forward_and_phi_are_in_float64():
    side = TwinSide(lambda x: x * x, [X])
    with precision_scope("float64", "cpu"):
        (out,) = side.forward([X_VALUE], "cpu")
        # <ct, x^2> = 1 x 1 + 1 x 4 + 0.5 x 9
        phi = side.phi([X_VALUE], "cpu", [np.array([1.0, 1.0, 0.5])])
    assert out.dtype == np.float64 and out.tolist() == [1.0, 4.0, 9.0]
    assert phi == 9.5


def test_release_keeps_the_programs_for_a_later_side_of_the_same_twin():
    traces = []

    def twin(x):
        traces.append(1)
        return x + 1

    side = TwinSide(twin, [X])
    _run(side, [X_VALUE])
    side.release()
    _run(TwinSide(twin, [X]), [X_VALUE])  # a later verify of the same twin
    assert len(traces) == 1  # nothing traced or compiled again
    twin_side.release_all()
    _run(TwinSide(twin, [X]), [X_VALUE])
    assert len(traces) == 2  # freed: compiled again
