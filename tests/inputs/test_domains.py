"""Input domains, mapped tensors and dimension size lists: each draws what it promises,
in float32 as in float64, shrinks to its simplest member, and reaches both sides."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import find, given, settings

import oracle
from oracle import tensor
from oracle.inputs.domains import DISTINCT_SPREAD, POSITIVE_FLOOR, SPD_MARGIN
from oracle.inputs.specs import example_strategy, normalize_dims, normalize_inputs

CPU = {"devices": ["cpu"], "seed": 0}
F32_EPS = float(np.finfo(np.float32).eps)


def _strategy(spec, dims):
    specs = normalize_inputs([spec])
    return example_strategy(specs, normalize_dims(specs, dims))


def _drawn(spec, dims, n=40):
    """``n`` drawn values of ``spec`` (hypothesis's own search, derandomised)."""
    out = []

    @settings(max_examples=n, database=None, derandomize=True)
    @given(_strategy(spec, dims))
    def collect(ex):
        out.append(ex.values[0])

    collect()
    return out


def _as_float32_is_exact(a):
    # both dtypes must see the same values: the float64 array holds float32 numbers
    return np.array_equal(a.astype(np.float32).astype(np.float64), a)


def test_positive_values_are_above_the_floor_when_low_is_not_positive():
    for a in _drawn(tensor("b n", domain="positive"), {}):
        assert _as_float32_is_exact(a)
        assert np.all(a >= np.float32(POSITIVE_FLOOR)) and np.all(a <= 10.0)


def test_positive_values_keep_a_positive_low():
    for a in _drawn(tensor("n", low=2.0, high=3.0, domain="positive"), {}):
        assert np.all((a >= 2.0) & (a <= 3.0))


def test_spd_matrices_are_symmetric_and_factor_in_float32():
    for a in _drawn(tensor("b k k", domain="spd"), {"k": (1, 6), "b": (1, 2)}):
        assert _as_float32_is_exact(a)
        assert np.array_equal(a, np.swapaxes(a, -1, -2))  # symmetric to the bit
        a32 = torch.from_numpy(a.astype(np.float32))
        torch.linalg.cholesky(a32)  # raises if float32 rounding made it indefinite
        eig = np.linalg.eigvalsh(a)
        assert np.all(eig > 0)
        # the margin bounds the condition number by 1 + k / SPD_MARGIN (oracle/domains.py)
        k = a.shape[-1]
        assert np.all(eig.max(-1) / eig.min(-1) <= (1 + k / SPD_MARGIN) * (1 + 1e-6))


def test_orthogonal_matrices_are_orthogonal_to_float32_precision():
    for q in _drawn(tensor("b k k", domain="orthogonal"), {"k": (1, 6), "b": (1, 2)}):
        assert _as_float32_is_exact(q)
        k = q.shape[-1]
        q32 = q.astype(np.float32)
        gram32 = np.swapaxes(q32, -1, -2) @ q32  # computed in float32
        # each entry rounded once (2^-24 relative) and a k-term float32 sum
        np.testing.assert_allclose(
            gram32, np.broadcast_to(np.eye(k), gram32.shape), atol=4 * k * F32_EPS
        )


def test_simplex_rows_are_positive_and_sum_to_one_in_float32():
    for p in _drawn(tensor("b n", domain="simplex"), {"n": (1, 8)}):
        assert _as_float32_is_exact(p)
        assert np.all(p > 0)
        n = p.shape[-1]
        sums32 = p.astype(np.float32).sum(-1, dtype=np.float32)
        np.testing.assert_allclose(sums32, 1.0, atol=2 * n * F32_EPS)


def test_distinct_values_never_tie_in_float32_and_keep_their_gap():
    for a in _drawn(tensor("b n", low=-1.0, high=1.0, domain="distinct"), {}):
        assert _as_float32_is_exact(a)
        flat = np.sort(a.astype(np.float32).ravel())
        assert np.unique(flat).size == flat.size
        if flat.size > 1:
            # gaps drawn in [1, DISTINCT_SPREAD], scaled to the range (oracle/domains.py)
            least = 2.0 / (DISTINCT_SPREAD * (flat.size + 1))
            assert np.diff(flat.astype(np.float64)).min() >= least * (1 - 1e-5)
        assert np.all((a >= -1.0) & (a <= 1.0))


def test_distinct_values_come_in_every_order_not_only_sorted():
    # a sorted input would hide a wrong permutation in a sort's backward
    drawn = _drawn(tensor("n", domain="distinct"), {"n": 4}, n=30)
    assert any(np.any(np.diff(a) < 0) for a in drawn)


def _minimal(spec, dims, condition=lambda ex: True):
    return find(
        _strategy(spec, dims), condition, settings=settings(database=None, derandomize=True)
    ).values[0]


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        # B = 0 gives A = SPD_MARGIN I
        pytest.param("spd", np.float32(SPD_MARGIN) * np.eye(3), id="spd-to-scaled-identity"),
        # Q of a zero matrix is I
        pytest.param("orthogonal", np.eye(3), id="orthogonal-to-identity"),
        # zero logits give the uniform distribution
        pytest.param("simplex", np.full((3, 3), np.float32(1 / 3)), id="simplex-to-uniform"),
        # hypothesis's simplest float in [1e-3, 10] is 1
        pytest.param("positive", np.ones((3, 3)), id="positive-to-ones"),
    ],
)
def test_a_domain_shrinks_to_its_simplest_member(domain, expected):
    found = _minimal(tensor("k k", domain=domain), {"k": 3})
    np.testing.assert_array_equal(found, expected)


def test_distinct_values_shrink_to_sorted_and_evenly_spaced():
    found = _minimal(tensor("n", low=0.0, high=5.0, domain="distinct"), {"n": 4})
    # equal gaps (all drawn at 1) over [0, 5] with n + 1 = 5 of them: 1, 2, 3, 4
    np.testing.assert_array_equal(found, [1.0, 2.0, 3.0, 4.0])


def test_map_transforms_the_drawn_array_and_may_change_its_shape():
    spec = tensor("n", low=-2.0, high=2.0).map(np.exp).map(lambda a: np.outer(a, a))
    for a in _drawn(spec, {"n": (1, 4)}):
        n = a.shape[0]
        assert a.shape == (n, n) and np.all(a > 0)
        assert _as_float32_is_exact(a)  # the mapped value is rounded to float32 too


def test_map_applies_after_the_domain():
    for a in _drawn(tensor("n", domain="simplex").map(np.log), {}):
        # logs of probabilities: all negative (or 0 for n = 1), exp sums to 1
        assert np.all(a <= 0)
        np.testing.assert_allclose(np.exp(a).sum(), 1.0, rtol=1e-5)


class _AbsForPositives(torch.autograd.Function):
    """|x| with the derivative of x: right only where x > 0."""

    @staticmethod
    def forward(ctx, x):
        return x.abs()

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_a_function_is_checked_on_the_mapped_values():
    # the backward is right for positive x only: on exp-mapped inputs it passes
    spec = tensor("n", low=-3.0, high=3.0).map(np.exp)
    report = oracle.verify(_AbsForPositives.apply, jnp.abs, [spec], max_examples=30, **CPU)
    assert report.ok, str(report)


def test_the_mapped_value_is_what_is_differentiated_and_shown():
    # negated by the map: every value is negative, where the backward's sign is wrong;
    # the shrunk example holds the mapped (negative) values, not the drawn ones
    spec = tensor("n", low=0.5, high=3.0).map(np.negative)
    report = oracle.verify(_AbsForPositives.apply, jnp.abs, [spec], max_examples=30, **CPU)
    real = [d for d in report.divergences if d.blame != "kink"]
    assert {d.dtype for d in real} == {"float32", "float64"}
    for d in real:
        assert (d.check, d.argument, d.blame) == ("vjp", 0, "torch")
        assert np.all(d.example["args"][0] < 0)


def test_a_map_that_raises_is_reported_with_its_name_and_the_exception():
    def broken(a):
        raise ZeroDivisionError("no")

    report = oracle.verify(
        lambda x: x, lambda x: x, [tensor("n").map(broken)], dtypes="float64", max_examples=5, **CPU
    )
    (d,) = report.divergences
    assert d.check == "error"
    assert d.detail.startswith("an input spec failed on a drawn value")  # not the oracle's
    assert (
        ".map(test_a_map_that_raises_is_reported_with_its_name_and_the_exception.<locals>.broken)"
        in d.detail
    )
    assert "ZeroDivisionError: no" in d.detail


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        pytest.param(
            lambda a: "text", r"returned str; expected an array of floats", id="not-an-array"
        ),
        pytest.param(
            lambda a: a * 1e39,
            r"returned non-finite values \(or values beyond float32",
            id="beyond-float32",
        ),
        pytest.param(lambda a: a / 0.0, r"returned non-finite values", id="nan-or-inf"),
    ],
)
def test_a_map_returning_no_usable_floats_is_reported(fn, message):
    import re

    with np.errstate(all="ignore"):
        report = oracle.verify(
            lambda x: x,
            lambda x: x,
            [tensor("n", low=1, high=2).map(fn)],
            dtypes="float64",
            max_examples=5,
            **CPU,
        )
    (d,) = report.divergences
    assert d.check == "error" and re.search(message, d.detail), d.detail


def test_dims_list_draws_only_the_listed_sizes_and_each_of_them():
    seen = {a.shape[0] for a in _drawn(tensor("h"), {"h": [4, 6, 8]}, n=40)}
    assert seen == {4, 6, 8}


def test_dims_range_object_gives_sizes_with_a_stride():
    seen = {a.shape[0] for a in _drawn(tensor("h"), {"h": range(2, 9, 3)}, n=30)}
    assert seen == {2, 5, 8}


def test_dims_list_bounds_integers_by_its_smallest_and_largest_sizes():
    from oracle import integers

    specs = normalize_inputs([tensor("b c"), integers("b", low=0, high="c")])
    bounds = normalize_dims(specs, {"c": [3, 5]})
    assert tuple(bounds["c"]) == (3, 5)
    with pytest.raises(ValueError, match=r"can be empty"):
        normalize_dims(specs, {"c": [0, 5]})


class _NegativeEntropy(torch.autograd.Function):
    """sum_i p_i log p_i over the last axis; d/dp_i = log p_i + 1 (defined for p > 0)."""

    @staticmethod
    def forward(ctx, p):
        ctx.save_for_backward(p)
        return (p * p.log()).sum(-1)

    @staticmethod
    def backward(ctx, grad):
        (p,) = ctx.saved_tensors
        return grad.unsqueeze(-1) * (p.log() + 1)


def test_a_function_on_the_simplex_is_checked_without_reparametrising_it():
    # on raw tensors in [-10, 10] the log would be NaN on both sides: the domain is the input
    report = oracle.verify(
        _NegativeEntropy.apply,
        lambda p: (p * jnp.log(p)).sum(-1),
        [tensor("b n", domain="simplex")],
        max_examples=30,
        **CPU,
    )
    assert report.ok, str(report)
    assert all(r.examples == 30 and r.rejected == 0 for r in report.runs)
