"""oracle.pair.factories: torch_fn built per dtype and device."""

from __future__ import annotations

import functools

import pytest
import torch

from oracle.pair.factories import Factory, as_factory, factory, is_factory


def make(dtype, device):
    return torch.nn.Linear(2, 2).to(dtype=dtype, device=device)


class Scale(torch.nn.Module):
    def forward(self, dtype, device):  # parameters named like a factory's: still a module
        return dtype


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dtype, device):
        return dtype

    @staticmethod
    def backward(ctx, g):
        return g, None


def keywords_only(*, device, dtype):
    return make(dtype, device)


@pytest.mark.parametrize(
    "fn, expected",
    [
        pytest.param(make, True, id="dtype-device"),
        pytest.param(lambda device, dtype: None, True, id="any-order"),
        pytest.param(keywords_only, True, id="keyword-only"),
        pytest.param(Factory(lambda **kw: None), True, id="wrapped"),
        pytest.param(lambda dtype: None, False, id="dtype-only"),
        pytest.param(lambda dtype, device, x: None, False, id="one-more"),
        pytest.param(lambda *dtype, device: None, False, id="var-positional"),
        pytest.param(Scale(), False, id="module"),
        pytest.param(Scale, False, id="class"),
        pytest.param(Cube.apply, False, id="function-apply"),
        pytest.param(torch.sin, False, id="builtin"),
        pytest.param("make", False, id="not-callable"),
    ],
)
def test_is_factory_only_for_exactly_dtype_and_device(fn, expected):
    assert is_factory(fn) is expected


def test_build_calls_with_a_torch_dtype_and_caches_per_dtype_and_device():
    calls = []

    def build(dtype, device):
        calls.append((dtype, device))
        return make(dtype, device)

    f = Factory(build)
    a = f.build("float64", "cpu")
    assert f.build("float64", "cpu") is a
    assert a.weight.dtype == torch.float64
    f.build("float32", "cpu")
    assert calls == [(torch.float64, "cpu"), (torch.float32, "cpu")]


def test_fresh_has_an_empty_cache_and_as_factory_gives_a_fresh_one():
    f = Factory(make)
    built = f.build("float32", "cpu")
    assert f.fresh().build("float32", "cpu") is not built
    g = as_factory(f)
    assert g is not f and g.build_fn is make
    assert as_factory(make).build_fn is make
    assert as_factory(torch.sin) is None


def test_calling_a_factory_builds_afresh_for_a_reproducer():
    f = Factory(make)
    assert f(torch.float64, "cpu") is not f(torch.float64, "cpu")
    assert f(dtype=torch.float64, device="cpu").weight.dtype == torch.float64


def test_a_factory_keeps_the_name_and_doc_of_what_it_wraps():
    f = factory(make)
    assert (f.__name__, f.__qualname__, f.__module__) == ("make", "make", __name__)
    assert repr(f) == "oracle.factory(make)"
    assert factory(f) is f  # wrapping twice is wrapping once
    assert Factory(functools.partial(make)).__name__ == "partial"


def test_a_builder_that_is_not_callable_is_refused():
    with pytest.raises(TypeError, match="build must be callable"):
        factory(3)


def test_a_factory_returning_no_callable_is_named_with_the_dtype_and_device():
    f = Factory(lambda dtype, device: 3)
    with pytest.raises(
        TypeError, match="returned int for dtype=float32, device=cpu; expected a callable"
    ):
        f.build("float32", "cpu")
