"""Input specs from jaxtyping annotations when ``inputs`` is omitted."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import torch

import oracle
from oracle.inputs.annotations import ANNOTATED_INT_HIGH, specs_from_annotations
from oracle.inputs.specs import IntegersSpec, TensorSpec

jaxtyping = pytest.importorskip(
    "jaxtyping", reason="jaxtyping is the optional extra gradient-oracle[types]"
)
Float, Int, Bool = jaxtyping.Float, jaxtyping.Int, jaxtyping.Bool
Tensor = torch.Tensor

CPU = {"devices": ["cpu"], "seed": 0, "max_examples": 15}


def weighted_rows(x: Float[Tensor, "b n"], w: Int[Tensor, "b"], scale: float = 2.0) -> Tensor:
    return x.sum(-1) * w * scale


def weighted_rows_jax(x, w):
    return x.sum(-1) * w * 2.0


def test_float_and_int_annotations_become_tensor_and_integers_specs():
    specs = specs_from_annotations(weighted_rows)
    # the defaulted float hyper-parameter keeps its default: two specs, not three
    assert specs == [
        TensorSpec(("b", "n")),
        IntegersSpec(("b",), 0, ANNOTATED_INT_HIGH),
    ]


def test_verify_without_inputs_checks_an_annotated_function():
    report = oracle.verify(weighted_rows, weighted_rows_jax, **CPU)
    assert report.ok, str(report)
    assert sum(r.examples for r in report.runs) > 2


class _Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Float[Tensor, "3 n"]) -> Tensor:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x**2 * grad  # wrong on purpose: d x^3 / dx = 3 x^2


def test_a_function_forward_is_read_past_its_ctx_and_its_bug_is_found():
    assert specs_from_annotations(_Cube.apply) == [TensorSpec((3, "n"))]
    report = oracle.verify(_Cube.apply, lambda x: x**3, **CPU)
    real = [d for d in report.divergences if d.blame != "kink"]
    assert real and all((d.argument, d.blame) == (0, "torch") for d in real), str(report)


class _Shift(torch.nn.Module):
    def forward(self, x: Float[Tensor, "#b n"]) -> Tensor:
        return x + 1.0


def test_a_module_forward_is_read_and_broadcastable_names_draw_full_sizes():
    assert specs_from_annotations(_Shift()) == [TensorSpec(("b", "n"))]


def test_a_registered_pair_may_take_its_inputs_from_annotations(monkeypatch):
    from oracle import registration

    # register into a copy: the pair does not outlive the test
    monkeypatch.setattr(registration, "_REGISTRY", dict(registration._REGISTRY))
    oracle.twin(weighted_rows_jax, name="annotated_weighted_rows")(weighted_rows)
    pair = oracle.registry()["annotated_weighted_rows"]
    assert [type(s) for s in pair.inputs] == [TensorSpec, IntegersSpec]
    assert pair.verify(**CPU).ok


def _variadic(x: Float[Tensor, "*batch n"]):
    return x


def _anonymous(x: Float[Tensor, "_ n"]):
    return x


def _expression(x: Float[Tensor, "n+1"]):
    return x


def _boolean(x: Float[Tensor, "n"], mask: Bool[Tensor, "n"]):
    return x * mask


def _unannotated(x, y: Float[Tensor, "n"]):
    return x * y


def _nothing(x=None, y=1.0):
    return x


def _after_default(x: Float[Tensor, "n"], alpha=1.0, y: Float[Tensor, "n"] = None):
    return x


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        pytest.param(
            _variadic, r"parameter 'x' of _variadic: the dimension '\*batch'", id="variadic"
        ),
        pytest.param(_anonymous, r"the dimension '_' cannot be drawn", id="anonymous"),
        pytest.param(_expression, r"the dimension 'n\+1' cannot be drawn", id="expression"),
        pytest.param(_boolean, r"parameter 'mask'.*does not say whether to draw floats", id="bool"),
        pytest.param(
            _unannotated,
            r"parameter 'x' of _unannotated has no jaxtyping annotation",
            id="unannotated",
        ),
        pytest.param(
            _nothing, r"_nothing has no parameter annotated with jaxtyping", id="none-annotated"
        ),
        pytest.param(
            _after_default, r"parameter 'y'.*comes after 'alpha'", id="array-after-default"
        ),
    ],
)
def test_annotations_that_say_too_little_ask_for_explicit_inputs(fn, message):
    with pytest.raises(TypeError, match=message):
        oracle.verify(fn, jnp.sin, devices=["cpu"])


def test_a_factory_is_built_to_read_the_annotations_of_what_it_builds():
    calls = []

    def make(dtype, device):
        calls.append(dtype)
        return _Shift().to(dtype=dtype, device=device)

    report = oracle.verify(make, lambda x: x + 1.0, **CPU)
    assert report.ok, str(report)
    # the float64 module built to read the annotations is the one the float64 run uses
    assert sorted(map(str, calls)) == ["torch.float32", "torch.float64"]
