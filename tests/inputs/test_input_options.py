"""Per-argument tolerances, torch_fn factories, and misuse of the new input options."""

from __future__ import annotations

import contextlib
import io
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import oracle
from oracle import tensor
from oracle.pair.factories import Factory, is_factory

CPU = {"devices": ["cpu"], "seed": 0}


def _ok(x):
    return x * 1.0


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        pytest.param(
            lambda: tensor("n", domain="unitary"),
            ValueError,
            r"tensor\('n'\): unknown domain='unitary'; expected one of 'positive', 'spd'",
            id="unknown-domain",
        ),
        pytest.param(
            lambda: tensor("n m", domain="spd"),
            ValueError,
            r"tensor\('n m'\): domain='spd' needs a square trailing pair of dimensions",
            id="spd-not-square",
        ),
        pytest.param(
            lambda: tensor("k", domain="orthogonal"),
            ValueError,
            r"domain='orthogonal' needs a square trailing pair",
            id="orthogonal-one-dimension",
        ),
        pytest.param(
            lambda: tensor("", domain="simplex"),
            ValueError,
            r'domain="simplex" needs at least one dimension',
            id="simplex-scalar",
        ),
        pytest.param(
            lambda: tensor("n", low=-50, high=50, domain="simplex"),
            ValueError,
            r"high - low = 100 must be at most 60",
            id="simplex-logits-too-wide",
        ),
        pytest.param(
            lambda: tensor("n", low=-3, high=0, domain="positive"),
            ValueError,
            r"high=0.0 must be above 0.001",
            id="positive-with-no-positive-room",
        ),
        pytest.param(
            lambda: tensor("n").map("square"),
            TypeError,
            r"\.map\(fn\): fn must be callable .*; got 'square'",
            id="map-not-callable",
        ),
    ],
)
def test_a_malformed_spec_is_refused_when_made(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"dims": {"n": []}},
            ValueError,
            r"dims\['n'\]=\[\]: expected at least one allowed size",
            id="dims-list-empty",
        ),
        pytest.param(
            {"dims": {"n": [4, -2]}},
            ValueError,
            r"dims\['n'\]=\[4, -2\]: allowed sizes must be non-negative ints; got -2",
            id="dims-list-negative",
        ),
        pytest.param(
            {"dims": {"n": [4, 2.5]}},
            ValueError,
            r"allowed sizes must be non-negative ints; got 2.5",
            id="dims-list-not-int",
        ),
        pytest.param(
            {"rtol": {3: 1e-3}, "atol": {3: 0.0}},
            ValueError,
            r"rtol names argument 3, which is not a differentiated argument; expected one of: 0",
            id="rtol-dict-unknown-argument",
        ),
        pytest.param(
            {"rtol": {"weight": 1e-3}, "atol": {"weight": 0.0}},
            ValueError,
            r"rtol names argument 'weight'.*expected one of: 0",
            id="rtol-dict-parameter-of-a-plain-function",
        ),
        pytest.param(
            {"rtol": 1e-3},
            ValueError,
            r"rtol=0.001 was given without atol: pass both \(atol=0 still lets rtol through",
            id="rtol-without-atol",
        ),
        pytest.param(
            {"atol": {0: 1e-3}},
            ValueError,
            r"atol=\{0: 0.001\} was given without rtol",
            id="atol-without-rtol",
        ),
        pytest.param(
            {"rtol": {0: 1e-3}, "atol": {}},
            ValueError,
            r"rtol names argument 0 but atol does not: give both for each argument",
            id="rtol-dict-keys-differ",
        ),
        pytest.param(
            {"rtol": 1e-3, "atol": {0: 1e-3}},
            ValueError,
            r"give both as numbers \(every argument\) or both as dicts",
            id="rtol-number-atol-dict",
        ),
        pytest.param(
            {"rtol": {0: -1.0}, "atol": {0: 0.0}},
            ValueError,
            r"rtol\[0\] must be a non-negative number; got -1.0",
            id="rtol-dict-negative",
        ),
    ],
)
def test_verify_refuses_misused_input_options_up_front(kwargs, error, message):
    with pytest.raises(error, match=message):
        oracle.verify(_ok, _ok, [tensor("n"), tensor("n", grad=False)], **kwargs)


# ------------------------------------------------------------------- per-argument tolerance


class _ProductWithSloppyY(torch.autograd.Function):
    """x * y, whose y-gradient is off by ``SLOP`` relative (an approximation, say)."""

    SLOP = 1e-3
    X_SLOP = 0.0

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @classmethod
    def backward(cls, ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y * (1 + cls.X_SLOP), grad * x * (1 + cls.SLOP)


class _ProductWithSloppyXAndY(_ProductWithSloppyY):
    X_SLOP = 1e-3


def _product(x, y):
    return x * y


_PRODUCT_INPUTS = [tensor("n", low=1.0, high=2.0), tensor("n", low=1.0, high=2.0)]


def test_an_approximate_gradient_fails_the_default_rule_on_its_argument_only():
    report = oracle.verify(
        _ProductWithSloppyY.apply, _product, _PRODUCT_INPUTS, max_examples=20, **CPU
    )
    real = [d for d in report.divergences if d.blame != "kink"]
    assert real and {d.argument for d in real} == {1}, str(report)


def test_a_tolerance_for_one_argument_lets_its_approximate_gradient_pass():
    # 1e-3 relative error on y's gradient, allowed 1e-2 on argument 1 only. (The slop
    # also reaches the mixed second derivative d/dx of y's gradient, which the hvp check
    # reports on argument 0: a per-argument tolerance is about first-order gradients,
    # so only the vjp is asked for here.)
    report = oracle.verify(
        _ProductWithSloppyY.apply,
        _product,
        _PRODUCT_INPUTS,
        rtol={1: 1e-2},
        atol={1: 0.0},
        max_examples=20,
        checks=["vjp"],
        **CPU,
    )
    assert report.ok, str(report)


def test_a_tolerance_for_one_argument_leaves_the_others_on_the_default_rule():
    report = oracle.verify(
        _ProductWithSloppyXAndY.apply,
        _product,
        _PRODUCT_INPUTS,
        rtol={1: 1e-2},
        atol={1: 0.0},
        max_examples=20,
        **CPU,
    )
    real = [d for d in report.divergences if d.blame != "kink"]
    assert real and {d.argument for d in real} == {0}, str(report)
    # the finding says which rule judged it: the oracle's own, scaled atol
    assert all("x scale" in d.tolerance for d in real)


def test_a_module_parameter_name_is_a_valid_tolerance_key():
    # a Module's trainable parameters are differentiated: the twin takes them first
    lin = torch.nn.Linear(2, 1)
    report = oracle.verify(
        lin,
        lambda params, x: x @ params["weight"].T + params["bias"],
        [tensor("b 2")],
        rtol={"weight": 1e-3, 0: 1e-3},
        atol={"weight": 0.0, 0: 0.0},
        max_examples=10,
        dtypes="float32",
        **CPU,
    )
    assert report.ok, str(report)


def test_a_module_tolerance_key_must_name_one_of_its_parameters():
    with pytest.raises(ValueError, match=r"rtol names argument 'weights'.*0, 'weight', 'bias'"):
        oracle.verify(
            torch.nn.Linear(2, 1), _ok, [tensor("b 2")], rtol={"weights": 0.1}, atol={"weights": 0}
        )


# ------------------------------------------------------------------------------ factories


class _FixedDtypeScale(torch.nn.Module):
    """Scales by a matrix held in a float32 buffer: a float64 input cannot meet it."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.eye(3) * 2.0)

    def forward(self, x):
        return x @ self.scale


def _scale_twin(x):
    return x @ (2.0 * jnp.eye(3, dtype=x.dtype))


BUILT: list[tuple[torch.dtype, str]] = []


def make_fixed_dtype_scale(dtype, device):
    """A factory, importable (the reproducer imports it)."""
    BUILT.append((dtype, device))
    return _FixedDtypeScale().to(dtype=dtype, device=device)


def test_a_module_with_a_fixed_dtype_buffer_is_float32_only_when_passed_as_is():
    # its float64 run raises (a float32 buffer): with a clean float32 run that is a
    # float32-only function, said in the report instead of an error; a factory checks both
    report = oracle.verify(_FixedDtypeScale(), _scale_twin, [tensor("b 3")], max_examples=5, **CPU)
    assert report.ok and not report.findings, str(report)
    (r64,) = [r for r in report.runs if r.dtype == "float64"]
    assert r64.only.startswith("float32 only (the PyTorch side raised in its forward")
    alone = oracle.verify(
        _FixedDtypeScale(), _scale_twin, [tensor("b 3")], max_examples=5, dtypes=["float64"], **CPU
    )
    assert {(d.dtype, d.check, d.blame) for d in alone.findings} == {("float64", "error", "torch")}


def test_a_factory_is_built_once_per_dtype_and_device_and_checks_clean():
    BUILT.clear()
    report = oracle.verify(
        make_fixed_dtype_scale, _scale_twin, [tensor("b 3")], max_examples=20, **CPU
    )
    assert report.ok, str(report)
    assert sorted(BUILT, key=str) == [(torch.float32, "cpu"), (torch.float64, "cpu")]
    assert sum(r.examples for r in report.runs) > 2  # many examples, two builds


def test_the_cache_of_a_factory_lasts_one_verify_call():
    BUILT.clear()
    for _ in range(2):
        oracle.verify(
            make_fixed_dtype_scale,
            _scale_twin,
            [tensor("b 3")],
            max_examples=3,
            dtypes="float32",
            **CPU,
        )
    # each call builds its own: float32, and float64 for the checks beyond the vjp, which
    # compare a float32 example in float64 first (oracle.judge.checks.transform)
    assert BUILT == [(torch.float32, "cpu"), (torch.float64, "cpu")] * 2


def test_an_explicit_factory_wrapper_takes_any_parameter_names():
    @oracle.factory
    def build(dtype, device):
        return _FixedDtypeScale().to(dtype=dtype, device=device)

    wrapped = oracle.factory(lambda **kw: _FixedDtypeScale().to(**kw))
    assert isinstance(build, Factory) and is_factory(wrapped)
    report = oracle.verify(wrapped, _scale_twin, [tensor("b 3")], max_examples=10, **CPU)
    assert report.ok, str(report)


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x, dtype: x, id="one-parameter-more"),
        pytest.param(lambda dtype: None, id="device-missing"),
        pytest.param(lambda *, dtype, device=None, x=1: None, id="extra-keyword"),
        pytest.param(torch.nn.Identity(), id="a-module"),
        pytest.param(_ProductWithSloppyY.apply, id="a-function-apply"),
    ],
)
def test_only_exactly_dtype_and_device_make_a_factory(fn):
    assert not is_factory(fn)


def test_a_factory_reproducer_builds_the_module_for_its_dtype():
    def wrong_twin(x):
        return x @ (3.0 * jnp.eye(3, dtype=x.dtype))

    report = oracle.verify(
        make_fixed_dtype_scale, wrong_twin, [tensor("b 3")], max_examples=5, dtypes="float64", **CPU
    )
    d = next(d for d in report.divergences if d.check == "forward")
    code = d.reproducer.replace(
        "jax_fn = None",
        "import jax.numpy as jnp\njax_fn = lambda x: x @ (3.0 * jnp.eye(3, dtype=x.dtype))",
    )
    assert "torch_fn = torch_fn(dtype=tdtype, device=DEVICE)" in code
    out = io.StringIO()
    # the reproducer sets numpy's print options: np.printoptions() restores them after
    with contextlib.redirect_stdout(out), np.printoptions():
        exec(compile(code, "reproducer", "exec"), {"__name__": "reproducer"})
    # torch's output is 2x, the twin's 3x: the replay shows the same forward gap
    assert "max |torch - twin|" in out.getvalue()
    gap = float(out.getvalue().split("max |torch - twin| =")[1].split()[0])
    np.testing.assert_allclose(gap, np.max(np.abs(d.example["args"][0])), rtol=1e-12)


# --------------------------------------------------------- annotations without jaxtyping


def test_omitted_inputs_without_jaxtyping_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jaxtyping", None)  # import jaxtyping now raises
    with pytest.raises(
        TypeError, match=r"jaxtyping is not installed: pip install 'gradient-oracle\[types\]'"
    ):
        oracle.verify(_ok, _ok)


# ------------------------------------------------- factories of Modules with parameters


class _WeightTimes(torch.autograd.Function):
    """x * w with the gradient of w sign-flipped on purpose."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * w, -(g * x).sum(0)  # wrong: the sign of w's gradient


class _WLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((3,), 0.5))

    def forward(self, x):
        return _WeightTimes.apply(x, self.w)


def test_a_module_built_by_a_factory_has_its_parameters_differentiated():
    report = oracle.verify(
        lambda dtype, device: _WLayer().to(dtype=dtype, device=device),
        lambda params, x: x * params["w"],
        [tensor("b 3")],
        max_examples=10,
        **CPU,
    )
    assert {(d.argument, d.diagnosis) for d in report.divergences} == {("w", "sign_flipped")}


def test_a_factory_module_with_parameters_needs_a_twin_that_takes_them():
    # the README's factory form with a twin written without params: refused, not skipped
    with pytest.raises(TypeError, match=r"trainable parameters \(w\).*jax_fn\(params, \*inputs\)"):
        oracle.verify(
            lambda dtype, device: _WLayer().to(dtype=dtype), lambda x: x * 0.5, [tensor("b 3")]
        )
