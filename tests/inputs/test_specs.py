"""Input specs: misuse gets a clear error naming the argument; good specs draw what they say."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import oracle
from oracle import choice, integers, tensor
from oracle.inputs.specs import (
    dimension_sizes,
    example_strategy,
    normalize_dims,
    normalize_inputs,
    size_combinations,
)


def _ok(x):
    return x * 1.0


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        pytest.param(
            lambda: tensor("b n", low=3, high=3),
            ValueError,
            r"low=3.0 must be less than high=3.0",
            id="tensor-low-not-below-high",
        ),
        pytest.param(
            lambda: tensor("b n!"), ValueError, r"malformed entry 'n!'", id="malformed-shape"
        ),
        pytest.param(
            lambda: tensor(3), TypeError, r"shape must be a string", id="shape-not-a-string"
        ),
        pytest.param(
            lambda: tensor("n", low=float("nan")),
            ValueError,
            r"low=nan must be finite",
            id="nan-bound",
        ),
        pytest.param(
            lambda: tensor("n", grad="yes"),
            TypeError,
            r"grad must be True or False",
            id="grad-not-bool",
        ),
        pytest.param(
            lambda: integers("b", low=5, high=2),
            ValueError,
            r"low=5 must be less than high=2",
            id="integers-low-not-below-high",
        ),
        pytest.param(
            lambda: integers("b", low=0, high=2.5),
            TypeError,
            r"high must be an int or a dimension name",
            id="integers-float-bound",
        ),
        pytest.param(
            lambda: choice("n", []),
            ValueError,
            r"values must be a non-empty sequence",
            id="empty-choice",
        ),
        pytest.param(
            lambda: choice("n", [0.1]),
            ValueError,
            r"not exactly representable in float32",
            id="choice-not-float32",
        ),
    ],
)
def test_a_bad_spec_raises_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"inputs": [tensor("b n"), integers("b", low=0, high="m")]},
            ValueError,
            r"inputs\[1\].*high='m', a dimension that no input's shape uses; expected one of: b, n",
            id="bound-names-unknown-dimension",
        ),
        pytest.param(
            {"inputs": [tensor("n")], "dims": {"k": (1, 3)}},
            ValueError,
            r"dims: 'k' is not a dimension of any input; the inputs use: n",
            id="dims-unknown-name",
        ),
        pytest.param(
            {"inputs": [tensor("n")], "dims": {"n": (4, 2)}},
            ValueError,
            r"dims\['n'\]=\(4, 2\): expected 0 <= min <= max",
            id="dims-reversed",
        ),
        pytest.param(
            {"inputs": [tensor("n")], "dims": {"n": "big"}},
            TypeError,
            r"dims\['n'\] must be an int or a \(min, max\) pair",
            id="dims-not-a-pair",
        ),
        pytest.param(
            {"inputs": [tensor("b c"), integers("b", low=0, high="c")], "dims": {"c": (0, 3)}},
            ValueError,
            r"inputs\[1\].*can be empty",
            id="integers-range-can-be-empty",
        ),
        pytest.param(
            {"inputs": [tensor("n")], "dtypes": ("float8",)},
            ValueError,
            r"dtypes: unknown dtype 'float8'; expected one of 'float32', 'float64', 'bfloat16', "
            r"'float16', 'autocast-bfloat16', 'autocast-float16'",
            id="unknown-dtype",
        ),
        pytest.param(
            {"inputs": [tensor("n")], "devices": ["tpu"]},
            ValueError,
            r"devices: unknown device 'tpu'",
            id="unknown-device",
        ),
        pytest.param(
            {"inputs": [tensor("n")], "max_examples": 0},
            ValueError,
            r"max_examples=0 must be at least 1",
            id="zero-examples",
        ),
        pytest.param({"inputs": "n"}, TypeError, r"inputs must be a list", id="inputs-not-a-list"),
        pytest.param(
            {"inputs": [tensor("n")], "rtol": -1.0},
            ValueError,
            r"rtol must be a non-negative number",
            id="negative-rtol",
        ),
    ],
)
def test_verify_rejects_misuse_up_front(kwargs, error, message):
    inputs = kwargs.pop("inputs")
    with pytest.raises(error, match=message):
        oracle.verify(_ok, _ok, inputs, **kwargs)


def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    from oracle.pair.bridge import available_devices

    if "cuda" in available_devices():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match=r"devices: 'cuda' was asked for, but"):
        oracle.verify(_ok, jnp.asarray, [tensor("n")], devices=["cuda"])


def test_a_function_that_is_not_callable_is_named():
    with pytest.raises(TypeError, match=r"jax_fn must be callable"):
        oracle.verify(_ok, "jnp.sin", [tensor("n")])


def test_dimension_sizes_keep_the_three_smallest_and_the_largest():
    assert dimension_sizes(1, 4) == [1, 2, 3, 4]
    assert dimension_sizes(1, 100) == [1, 2, 3, 100]
    assert dimension_sizes(0, 8) == [0, 1, 2, 8]
    assert dimension_sizes(5, 5) == [5]


def test_several_dimensions_draw_from_a_pool_not_the_product():
    sizes = [1, 2, 3, 8]
    assert size_combinations([sizes]) == [(1,), (2,), (3,), (8,)]
    two = size_combinations([sizes, sizes])
    assert two == [(1, 1), (2, 1), (1, 2), (2, 2), (2, 3), (3, 2), (1, 8), (8, 1), (8, 8)]
    three = size_combinations([sizes] * 3)
    assert len(three) == 11 and len(set(three)) == 11  # not 64
    assert three[0] == (1, 1, 1) and three[-1] == (8, 8, 8)  # simplest first (shrinking)
    # what hand-written backward passes get wrong is in it: a size-1 broadcast against a
    # full one each way, and every dimension distinct (transposed axes)
    for i in range(3):
        assert tuple(1 if d == i else 8 for d in range(3)) in three
    assert any(len(set(c)) == 3 for c in three)
    # explicit sizes are kept as given
    assert size_combinations([[2, 5], sizes]) == [
        (2, 1),
        (5, 1),
        (2, 2),
        (5, 2),
        (5, 3),
        (2, 8),
        (5, 8),
    ]


@settings(max_examples=80, derandomize=True, database=None)
@given(
    example_strategy(normalize_inputs([tensor("a b c")]), {"a": (1, 8), "b": (1, 8), "c": (1, 8)})
)
def test_drawn_sizes_are_combinations_of_the_pool(ex):
    pool = size_combinations([dimension_sizes(1, 8)] * 3)
    assert (ex.dims["a"], ex.dims["b"], ex.dims["c"]) in pool
    assert ex.values[0].shape == (ex.dims["a"], ex.dims["b"], ex.dims["c"])


SPECS = normalize_inputs(
    [tensor("b n", low=-2, high=3), integers("b", low=0, high="n"), choice("n", [-1.0, 1.0]), 7]
)
BOUNDS = normalize_dims(SPECS, {"n": (2, 5)})


@settings(max_examples=60, derandomize=True, database=None)
@given(example_strategy(SPECS, BOUNDS))
def test_drawn_examples_honour_every_spec(ex):
    x, idx, labels, const = ex.values
    b, n = ex.dims["b"], ex.dims["n"]
    assert x.shape == (b, n) and idx.shape == (b,) and labels.shape == (n,)
    assert 2 <= n <= 5
    assert x.min() >= -2 and x.max() <= 3
    assert np.all(x.astype(np.float32).astype(np.float64) == x)  # float32-representable
    assert idx.dtype == np.int64 and (idx >= 0).all() and (idx < n).all()
    assert set(np.unique(labels)) <= {-1.0, 1.0}
    assert const == 7
