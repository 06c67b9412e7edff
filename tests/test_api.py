"""oracle.api: verify's own steps (names, settings, the pair resolved, tolerances) and
assert_twins, without a search (verify end to end: tests/e2e/test_verify.py)."""

from __future__ import annotations

import sys

import jax.numpy as jnp
import pytest
import torch
from hypothesis import settings

from oracle import api
from oracle.inputs.specs import IntegersSpec, TensorSpec
from oracle.pair.factories import Factory
from oracle.report.records import Divergence, Report, RunSummary
from oracle.search.profiles import CAMPAIGN_PROFILE

X = TensorSpec(("n",))


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * x

    @staticmethod
    def backward(ctx, g):
        return g


class Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))
        self.b = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x, y):
        return self.w * x + self.b + y


def square(x):
    return x * x


def _private(x):
    return x


@pytest.mark.parametrize(
    "fn, name",
    [
        pytest.param(Square.apply, "Square", id="function-apply"),
        pytest.param(square, "square", id="function"),
        pytest.param(_private, "_private", id="private"),
        pytest.param(Affine(), "Affine", id="module"),
        pytest.param(lambda x: x, "<lambda>", id="lambda"),
    ],
)
def test_a_pair_is_named_after_its_torch_side(fn, name):
    assert api._name_of(fn) == name


def test_tolerance_keys_are_differentiated_positions_and_trainable_parameter_names():
    specs = (X, IntegersSpec(("n",), 0, 2), TensorSpec(("n",), grad=False), X)
    assert api._tolerance_keys(specs, square) == [0, 3]
    assert api._tolerance_keys((X,), Affine()) == [0, "w", "b"]
    built = Factory(lambda dtype, device: Affine().to(dtype))
    assert api._tolerance_keys((X,), built) == [0, "w", "b"]


def test_the_default_is_100_examples_and_the_campaign_profiles_own_number_under_it():
    assert api._search_settings(None, 1, None) == (100, 1)
    settings.load_profile(CAMPAIGN_PROFILE)
    try:
        assert api._search_settings(None, 1, None) == (5000, 1)
    finally:
        settings.load_profile("oracle-tests")


def test_a_seed_is_drawn_unless_the_settings_are_derandomized():
    # the suite's profile is derandomized: no seed to report
    assert api._search_settings(10, None, None) == (10, None)
    _, seed = api._search_settings(10, None, settings(derandomize=False))
    assert isinstance(seed, int) and 0 <= seed < 2**31


@pytest.mark.parametrize(
    "args, error, message",
    [
        pytest.param(
            (0, None, None), ValueError, "max_examples=0 must be at least 1", id="examples"
        ),
        pytest.param((10, -1, None), ValueError, "seed=-1 must be at least 0", id="seed"),
        pytest.param(
            (10, 1, {"derandomize": True}),
            TypeError,
            "settings must be a hypothesis.settings",
            id="settings",
        ),
    ],
)
def test_search_settings_misuse_names_the_argument(args, error, message):
    with pytest.raises(error, match=message):
        api._search_settings(*args)


@pytest.mark.parametrize(
    "torch_fn, jax_fn, error, message",
    [
        pytest.param(3, square, TypeError, "torch_fn must be callable", id="torch-fn"),
        pytest.param(
            square, "manual", TypeError, 'jax_fn must be callable .* or "auto"', id="jax-fn"
        ),
        pytest.param(
            Factory(lambda dtype, device: square),
            "auto",
            ValueError,
            'jax_fn="auto" needs torch_fn itself',
            id="auto-factory",
        ),
    ],
)
def test_resolve_refuses_what_cannot_be_a_pair(torch_fn, jax_fn, error, message):
    with pytest.raises(error, match=message):
        api._resolve(torch_fn, jax_fn, [X], None, None, None)


def test_a_module_is_resolved_with_its_parameters_first():
    plan = api._resolve(Affine(), lambda p, x, y: x, [X, X], None, None, None)
    assert plan.name == "Affine" and plan.twin == "hand"
    assert len(plan.specs) == 4 and plan.mod.names == ["w", "b"]


def test_a_modules_tolerances_are_keyed_by_the_oracles_positions():
    plan = api._resolve(Affine(), lambda p, x, y: x, [X, X], None, None, None)
    tols = api._user_tolerances(
        {"w": 1e-3, 1: 1e-2}, {"w": 0.0, 1: 0.0}, ["float32"], plan, Affine()
    )
    # w is argument 0 of the functional call, b is 1, the user's x and y are 2 and 3
    assert sorted(tols["float32"]) == [0, 3]
    assert tols["float32"][3].rtol == 1e-2 and tols["float32"][0].rtol == 1e-3


def _report(ok):
    found = [] if ok else [Divergence("vjp", 0, "torch", "scaled", "off", "float32", "cpu")]
    return Report("sq", [RunSummary("float32", "cpu", examples=3)], found)


def test_assert_twins_returns_a_clean_report_and_raises_the_text_of_a_divergent_one(monkeypatch):
    monkeypatch.setattr(api, "verify", lambda *a, **k: _report(ok=True))
    assert api.assert_twins(square, jnp.square, [X]).ok
    monkeypatch.setattr(api, "verify", lambda *a, **k: _report(ok=False))
    with pytest.raises(AssertionError) as info:
        api.assert_twins(square, jnp.square, [X])
    assert str(info.value) == str(_report(ok=False))


def test_assert_twins_hides_its_own_frame_from_pytest(monkeypatch):
    monkeypatch.setattr(api, "verify", lambda *a, **k: _report(ok=False))
    try:
        api.assert_twins(square, jnp.square, [X])
    except AssertionError:
        tb = sys.exc_info()[2]
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    (mine,) = [f for f in frames if f.f_code is api.assert_twins.__code__]
    assert mine.f_locals.get("__tracebackhide__") is True
