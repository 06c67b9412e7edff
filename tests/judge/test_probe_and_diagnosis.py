"""The verdict functions on hand-worked values (no torch, no twin: plain numpy phis)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oracle.judge.diagnosis import rounding_view
from oracle.judge.probe import directional_derivative, one_sided_gap
from oracle.judge.rounding import magnitudes_of_jaxpr
from oracle.pair.bridge import precision_scope

E0 = np.array([1.0])


def abs_phi(xs):
    return float(np.abs(xs[0]).sum())


def test_one_sided_gap_finds_the_kink_of_abs_at_0_with_slopes_minus_1_and_1():
    kink, plus, minus = one_sided_gap(abs_phi, [np.array([0.0])], 0, E0)
    assert kink
    assert plus == pytest.approx(1.0) and minus == pytest.approx(-1.0)  # d|x|/dx at 0+ and 0-


def test_one_sided_gap_sees_no_kink_of_abs_at_1():
    kink, plus, minus = one_sided_gap(abs_phi, [np.array([1.0])], 0, E0)
    assert not kink
    assert plus == pytest.approx(1.0) and minus == pytest.approx(1.0)


def test_richardson_extrapolation_is_exact_on_a_cubic_up_to_rounding():
    # phi(x) = x^3 + 2x: phi'(2) = 3*4 + 2 = 14; central differences err by h^2 phi'''/6 =
    # h^2, which Richardson's (4 D(h/2) - D(h)) / 3 cancels exactly for a cubic
    est, err = directional_derivative(
        lambda xs: float(xs[0][0] ** 3 + 2 * xs[0][0]), [np.array([2.0])], 0, E0
    )
    assert est == pytest.approx(14.0, rel=1e-9)
    assert err < 1e-6


def test_a_gap_within_rounding_of_large_terms_is_rounding_only():
    # p0 - 1 = -2.4e-14 from terms of size 1: a 4e-17 gap is 0.4 ulp of the terms
    view = rounding_view(np.array([-2.41348e-14]), np.array([-2.40918e-14]), np.array([1.0]))
    assert view.rounding_only and not view.precision_somewhere


def test_a_float32_level_gap_is_precision_when_the_terms_are_the_value():
    # a float32 constant: relative error 1e-8 = 0.08 eps32 of the element itself
    r = np.array([0.5, -2.0, 3.0])
    view = rounding_view(r * (1 + 1e-8), r, np.abs(r))
    assert view.precision_only and not view.rounding_only
    assert view.worst_level == pytest.approx(1e-8 / np.finfo(np.float32).eps, rel=1e-3)


def test_a_gross_error_is_neither_rounding_nor_only_precision():
    r = np.array([0.5, -2.0])
    view = rounding_view(2 * r, r, np.abs(r))
    assert not view.rounding_only and not view.precision_only


def test_term_magnitudes_see_through_cancellation():
    # f(x) = x0 - x1 at (1, 1): the value is 0, its terms are 1 and 1
    def f(x):
        return x[0] - x[1]

    with precision_scope("float64", "cpu"):
        closed = jax.make_jaxpr(f)(jnp.array([1.0, 1.0]))
        (mag,) = magnitudes_of_jaxpr(closed, [np.array([1.0, 1.0])])
    assert float(mag) == pytest.approx(2.0)


def test_term_magnitudes_of_a_saturated_softmax_gradient_are_of_order_one():
    def grad(x):
        return jax.grad(lambda x: -jax.nn.log_softmax(x)[0])(x)

    x = np.array([31.0, 0.0])
    with precision_scope("float64", "cpu"):
        closed = jax.make_jaxpr(grad)(jnp.asarray(x))
        (mag,) = magnitudes_of_jaxpr(closed, [x])
        value = np.asarray(grad(jnp.asarray(x)))
    assert abs(value[0]) < 1e-13  # p0 - 1 = -e^-31
    assert mag[0] >= 1.0  # made from terms of size 1
