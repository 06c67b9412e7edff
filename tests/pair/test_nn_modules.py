"""oracle.pair.nn_modules: an nn.Module as torch_fn, its trainable parameters
differentiated as leading arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import find
from hypothesis import strategies as st

from oracle.inputs.specs import Example, TensorSpec
from oracle.pair.nn_modules import module_pair
from oracle.report.records import Divergence

X = TensorSpec(("n",))


class Affine(torch.nn.Module):
    """scale * x + shift + offset, with a frozen parameter and a float32 buffer."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([2.0, 3.0]))
        self.shift = torch.nn.Parameter(torch.tensor(0.5))
        self.frozen = torch.nn.Parameter(torch.tensor(1.0), requires_grad=False)
        self.register_buffer("offset", torch.tensor(0.25))

    def forward(self, x):
        return self.scale * x + self.shift + self.frozen + self.offset


def twin(params, x):
    return params["scale"] * x + params["shift"] + 1.25


def test_a_module_without_trainable_parameters_is_an_ordinary_function():
    assert module_pair(torch.nn.ReLU(), twin, [X]) is None
    assert module_pair(lambda x: x, twin, [X]) is None


def test_the_trainable_parameters_lead_in_named_parameters_order_with_their_own_values():
    pair = module_pair(Affine(), twin, [X])
    assert pair.names == ["scale", "shift"]  # "frozen" is not trainable
    assert [s.shape for s in pair.specs] == [(2,), (), ("n",)]
    assert all(s.grad for s in pair.specs[:2])
    assert pair.fixed[0].tolist() == [2.0, 3.0] and pair.fixed[1] == 0.5
    assert pair.fixed[0].dtype == np.float64


def test_the_torch_side_calls_the_module_with_the_given_parameters_in_their_dtype():
    pair = module_pair(Affine(), twin, [X])
    scale = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    shift = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    out = pair.torch_fn(scale, shift, torch.tensor([4.0, 4.0], dtype=torch.float64))
    # 1 x 4 + 0 + 1 (frozen) + 0.25 (buffer), and -4 + 1.25; the buffer follows float64
    assert out.dtype == torch.float64 and out.tolist() == [5.25, -2.75]
    (g,) = torch.autograd.grad(out.sum(), [scale])
    assert g.tolist() == [4.0, 4.0]


def test_the_twin_receives_the_parameters_as_a_dict():
    seen = {}

    def spy(params, x):
        seen.update(params)
        return x

    pair = module_pair(Affine(), spy, [X])
    pair.jax_fn(np.ones(2), np.zeros(()), np.ones(2))
    assert list(seen) == ["scale", "shift"]


def test_param_specs_draw_a_parameter_instead_of_its_own_value():
    pair = module_pair(Affine(), twin, [X], {"shift": TensorSpec((), -1.0, 1.0, grad=False)})
    assert list(pair.fixed) == [0]  # scale only
    assert pair.specs[1].grad  # a drawn parameter is differentiated all the same


def test_the_strategy_puts_the_fixed_values_in_place_of_the_drawn_ones():
    pair = module_pair(Affine(), twin, [X])
    drawn = st.just(Example({"n": 2}, (np.zeros(2), np.zeros(()), np.ones(2)), 0))
    ex = find(pair.strategy(drawn), lambda e: True)
    assert ex.values[0].tolist() == [2.0, 3.0] and ex.values[1] == 0.5
    assert ex.values[2].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "param_specs, error, message",
    [
        pytest.param([X], TypeError, "param_specs must be a dict", id="not-a-dict"),
        pytest.param(
            {"bias": X},
            ValueError,
            "'bias' is not a trainable parameter .* scale, shift",
            id="unknown",
        ),
        pytest.param({"frozen": X}, ValueError, "'frozen' is not a trainable", id="frozen"),
        pytest.param(
            {"scale": 1.0},
            TypeError,
            r"param_specs\['scale'\] must be oracle.tensor",
            id="not-a-spec",
        ),
        pytest.param(
            {"scale": TensorSpec((3,))},
            ValueError,
            "has shape '3'; the parameter's shape is '2'",
            id="shape",
        ),
    ],
)
def test_param_specs_misuse_is_refused_with_the_parameters_named(param_specs, error, message):
    with pytest.raises(error, match=message):
        module_pair(Affine(), twin, [X], param_specs)


def test_param_specs_for_a_module_without_parameters_is_refused():
    with pytest.raises(
        ValueError, match="param_specs is for an nn.Module with trainable parameters"
    ):
        module_pair(torch.nn.ReLU(), twin, [X], {"w": X})


def test_a_second_pair_of_the_same_module_and_twin_reuses_the_callables():
    module = Affine()
    a, b = module_pair(module, twin, [X]), module_pair(module, twin, [X])
    assert a.torch_fn is b.torch_fn and a.jax_fn is b.jax_fn
    assert module_pair(Affine(), twin, [X]).torch_fn is not a.torch_fn


def test_rename_speaks_of_parameter_names_and_the_users_argument_indices():
    pair = module_pair(Affine(), twin, [X])
    on_scale = Divergence("vjp", 0, "torch", "scaled", "", "float32", "cpu")
    on_x = Divergence("vjp", 2, "torch", "scaled", "", "float32", "cpu")
    on_x.example = {"args": [np.zeros(2), 0.5, np.ones(2)], "kinds": ["p", "p", "x"]}
    pair.rename([on_scale, on_x])
    assert on_scale.argument == "scale" and on_x.argument == 0
    assert list(on_x.example["params"]) == ["scale", "shift"]
    assert len(on_x.example["args"]) == 1 and on_x.example["kinds"] == ["x"]
