"""oracle.judge.checks.vjp: one example judged in one dtype (errors, forward, vjp),
called directly on hand-picked values; shapes of at most 3 elements."""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from oracle.inputs.specs import TensorSpec
from oracle.judge.checks.vjp import BothRaised, Hung, check_example, settings_findings
from oracle.pair.guard import Guard
from oracle.pair.sides import Sides
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide

X = TensorSpec(("n",), -2.0, 2.0)
VALUES = (np.array([0.5, -1.0, 1.5]),)


def sides(torch_fn, twin, specs=(X,), timeout=5.0):
    guard = Guard(timeout)
    return Sides(TorchSide(torch_fn, specs, guard), TwinSide(twin, specs, guard), specs)


def check(pair, values=VALUES, dtype="float64", tally=None):
    try:
        return check_example(pair, values, 0, dtype, "cpu", tally)
    finally:
        pair.twin.release()


def function(forward, backward):
    """An autograd Function from a forward and a backward(g, x)."""

    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return forward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return backward(g, x)

    return F.apply


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_correct_pair_has_no_finding_and_counts_what_was_compared(dtype):
    tally = {}
    assert check(sides(torch.sin, jnp.sin), dtype=dtype, tally=tally) == []
    assert tally["compared"] == 6  # 3 outputs and 3 gradient elements


def test_nan_on_both_sides_is_not_counted_as_compared():
    tally = {}
    nan = lambda x: x * float("nan")  # noqa: E731
    assert check(sides(nan, lambda x: x * jnp.nan), tally=tally) == []
    assert tally["compared"] == 0


def test_a_doubled_gradient_is_blamed_on_torch_as_scaled_by_two():
    doubled = function(torch.sin, lambda g, x: 2 * g * x.cos())
    (d,) = check(sides(doubled, jnp.sin))
    assert (d.check, d.argument, d.blame, d.diagnosis, d.factor) == (
        "vjp",
        0,
        "torch",
        "scaled",
        2.0,
    )
    assert d.mismatched == 3 and d.total == 3 and d.tolerance


def test_a_wrong_forward_is_a_forward_finding_and_gradients_are_not_judged():
    (d,) = check(sides(lambda x: x * 3, lambda x: x * 2))
    assert (d.check, d.argument, d.blame, d.diagnosis) == ("forward", None, "unknown", "mismatch")
    assert d.worst_index is not None and d.total == 3


def test_outputs_of_another_structure_are_a_forward_finding():
    (d,) = check(sides(lambda x: (x, x), lambda x: x))
    assert (d.check, d.reason) == ("forward", "structure")
    assert "torch returned 2 output(s), the twin 1" in d.detail


def test_an_integer_output_that_differs_is_counted():
    (d,) = check(sides(lambda x: (x, x.argmax()), lambda x: (x, jnp.argmin(x))))
    assert d.check == "forward" and "integer output 1 differs in 1 of 1 elements" in d.detail


def test_a_float32_output_in_a_float64_run_is_a_precision_finding():
    (d,) = check(sides(lambda x: x.float(), lambda x: x))
    assert (d.check, d.blame, d.diagnosis) == ("forward", "torch", "precision")


def test_a_graph_cut_inside_torch_fn_is_disconnected():
    (d,) = check(sides(lambda x: x.detach() * 2, lambda x: x * 2))
    assert (d.check, d.argument, d.blame, d.diagnosis) == ("vjp", 0, "torch", "disconnected")


@pytest.mark.parametrize("side", ["torch", "twin"])
def test_one_side_raising_is_an_error_blamed_on_that_side(side):
    def raises(x):
        raise ValueError("bad input")

    pair = sides(raises, jnp.sin) if side == "torch" else sides(torch.sin, raises)
    (d,) = check(pair)
    assert (d.check, d.blame, d.diagnosis, d.reason, d.phase) == (
        "error",
        side,
        "error",
        "raised",
        "forward",
    )
    assert "ValueError: bad input" in d.detail


def test_both_sides_raising_rejects_the_example():
    def raises(x):
        raise ValueError("outside the domain")

    with pytest.raises(BothRaised):
        check(sides(raises, raises))


def test_a_side_past_its_time_limit_ends_the_run_with_its_finding():
    def hangs(x):
        time.sleep(5)
        return x

    with pytest.raises(Hung) as info:
        check(sides(hangs, lambda x: x, timeout=0.2))
    assert (info.value.finding.blame, info.value.finding.reason) == ("torch", "timeout")


def test_settings_findings_reports_each_change_once_and_then_forgets_it():
    pair = sides(torch.sin, jnp.sin)
    pair.torch.guard.changes += [("torch", "changed the dtype")] * 2 + [("twin", "x64 on")]
    found = settings_findings(pair, "float32", "cpu")
    assert [(d.blame, d.detail, d.reason) for d in found] == [
        ("torch", "changed the dtype", "setting_changed"),
        ("twin", "x64 on", "setting_changed"),
    ]
    assert settings_findings(pair, "float32", "cpu") == []


def test_a_finite_gradient_where_the_twin_says_infinity_is_a_finding():
    # sqrt's derivative at 0 is +inf; this backward says 0 there (a "safe" sqrt)
    safe = function(torch.sqrt, lambda g, x: torch.where(x > 0, g * 0.5 / x.sqrt(), 0.0))
    pair = sides(safe, jnp.sqrt, specs=(TensorSpec(("n",), 0.0, 2.0),))
    found = check(pair, values=(np.array([0.0, 1.0, 4.0]),))
    assert [d.argument for d in found if d.check == "vjp"] == [0]


# --- float32: the twin's float64 program first -------------------------------------------


def _twin_dtypes(pair, monkeypatch):
    """The dtypes the twin's vjp program is run in, recorded."""
    seen = []
    run = pair.twin.run

    def recording(values, dtype, device, cotangents):
        seen.append(dtype)
        return run(values, dtype, device, cotangents)

    monkeypatch.setattr(pair.twin, "run", recording)
    return seen


def test_a_right_float32_example_runs_only_the_twins_float64_program(monkeypatch):
    pair = sides(torch.sin, jnp.sin)
    seen = _twin_dtypes(pair, monkeypatch)
    assert check(pair, dtype="float32") == []
    assert seen == ["float64"]


def test_a_wrong_float32_example_is_judged_with_the_float32_twin_too(monkeypatch):
    wrong = function(torch.sin, lambda g, x: 2 * g * torch.cos(x))
    pair = sides(wrong, jnp.sin)
    seen = _twin_dtypes(pair, monkeypatch)
    found = check(pair, dtype="float32")
    assert [(f.blame, f.diagnosis, f.dtype) for f in found] == [("torch", "scaled", "float32")]
    assert seen[:2] == ["float64", "float32"]  # then the full judgement, as before


def test_a_users_tolerance_keeps_the_float32_twin_first(monkeypatch):
    from oracle.judge.tolerance import user_tolerance

    guard = Guard(5.0)
    pair = Sides(
        TorchSide(torch.sin, (X,), guard),
        TwinSide(jnp.sin, (X,), guard),
        (X,),
        {"float32": {None: user_tolerance(1e-3, 1e-3, "float32")}},
    )
    seen = _twin_dtypes(pair, monkeypatch)
    assert check(pair, dtype="float32") == []
    assert seen == ["float32"]
