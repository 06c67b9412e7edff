"""oracle.pair.outputs: argument kinds, the random cotangents, torch outputs flattened."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracle.inputs.specs import ChoiceSpec, ConstantSpec, IntegersSpec, TensorSpec
from oracle.pair.outputs import cotangents_for, flatten_torch, layout_of


def test_layout_of_sorts_arguments_into_diff_array_scalar_and_static():
    specs = [
        TensorSpec(("n",), grad=True),
        TensorSpec(("n",), grad=False),
        IntegersSpec(("n",), 0, 3),
        ChoiceSpec(("n",), (1.0, 2.0), grad=True),
        ConstantSpec(0.5),
        ConstantSpec(3),
        ConstantSpec("mean"),
    ]
    values = [None, None, None, None, 0.5, 3, "mean"]
    assert layout_of(specs, values) == (
        "diff",
        "array",
        "array",
        "diff",
        "scalar",
        "static",
        "static",
    )


def test_cotangents_are_the_same_for_the_same_seed_and_differ_for_another():
    shapes = [(3, 2), None, (4,)]
    a, b, c = cotangents_for(shapes, 7), cotangents_for(shapes, 7), cotangents_for(shapes, 8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
    assert not np.array_equal(a[0], c[0])


def test_cotangents_are_float32_in_minus_one_to_one_and_none_for_non_float_outputs():
    out = cotangents_for([(50,), None, ()], 0)
    assert out[1] is None
    assert out[0].dtype == np.float32 and out[0].shape == (50,)
    assert out[2].shape == ()
    assert np.all(out[0] >= -1) and np.all(out[0] < 1)


@pytest.mark.parametrize("seed", range(20))
def test_a_cotangent_is_never_all_ones(seed):
    # all ones would let a backward that ignores grad_output pass on a summed loss
    (ct,) = cotangents_for([(1,)], seed)
    assert not np.all(ct == 1)
    # and not a constant either across a few elements
    (ct,) = cotangents_for([(4,)], seed)
    assert len(set(ct.tolist())) > 1


def test_flatten_torch_orders_tuples_in_place_and_dicts_by_key():
    a, b, c = torch.zeros(1), torch.ones(2), torch.full((3,), 2.0)
    leaves = flatten_torch({"z": a, "a": (b, [c])})
    assert [t.shape for t in leaves] == [(2,), (3,), (1,)]


def test_flatten_torch_turns_a_python_number_into_a_tensor_without_gradient():
    (leaf,) = flatten_torch(2.5)
    assert isinstance(leaf, torch.Tensor) and leaf.item() == 2.5 and not leaf.requires_grad


def test_flatten_torch_names_what_it_cannot_flatten():
    with pytest.raises(TypeError, match="returned str; expected a tensor"):
        flatten_torch("loss")
