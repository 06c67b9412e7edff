"""User code that calls ``sys.exit()`` (or raises another BaseException) is a finding
blamed on its side, never the end of ``verify`` or of the command line."""

from __future__ import annotations

import io
import sys

import jax
import jax.numpy as jnp
import pytest
import torch
from hypothesis import strategies as st

import oracle
from oracle import tensor
from oracle.cli import main
from oracle.pair.guard import raised_by

QUICK = {"seed": 0, "max_examples": 5, "dtypes": ("float64",), "devices": ("cpu",)}


class ExitsInForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        sys.exit(0)

    @staticmethod
    def backward(ctx, g):
        return g


class ExitsInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        sys.exit(4)


class Abort(BaseException):
    """A BaseException of the user's own (neither Exception nor KeyboardInterrupt)."""


def _error(report):
    [finding] = report.findings
    assert (finding.check, finding.diagnosis) == ("error", "error")
    return finding


def test_a_forward_that_calls_sys_exit_is_an_error_blamed_on_torch_under_the_default_checks():
    # before the fix the SystemExit of the contract pass escaped verify
    finding = _error(oracle.verify(ExitsInForward.apply, jnp.sin, [tensor("n")], **QUICK))
    assert finding.blame == "torch"
    assert "called sys.exit(0)" in finding.detail


def test_a_backward_that_calls_sys_exit_is_an_error_blamed_on_torch():
    report = oracle.verify(ExitsInBackward.apply, jnp.sin, [tensor("n")], checks=["vjp"], **QUICK)
    finding = _error(report)
    assert finding.blame == "torch"
    assert "called sys.exit(4) in its backward" in finding.detail


def test_a_twin_that_calls_sys_exit_is_an_error_blamed_on_the_twin():
    def twin(x):
        sys.exit(3)

    finding = _error(oracle.verify(torch.sin, twin, [tensor("n")], **QUICK))
    assert finding.blame == "twin"
    assert "called sys.exit(3)" in finding.detail


def test_another_base_exception_from_user_code_is_an_error_too():
    def forward(x):
        raise Abort("stop everything")

    finding = _error(oracle.verify(forward, jnp.sin, [tensor("n")], **QUICK))
    assert finding.blame == "torch"
    assert "Abort: stop everything" in finding.detail


def test_the_command_line_reports_a_pair_that_exits_and_exits_1():
    out, err = io.StringIO(), io.StringIO()
    argv = ["tests.e2e.pairs_crash", "-k", "e2e_exits", "--seed", "0", "--device", "cpu"]
    code = main([*argv, "--dtype", "float64", "--max-examples", "5"], stdout=out, stderr=err)
    # before the fix: SystemExit(0) left main, and `python -m oracle` exited 0
    assert code == 1, out.getvalue() + err.getvalue()
    assert "called sys.exit(0)" in out.getvalue()


@pytest.mark.parametrize(
    ("through_jax", "side"),
    [pytest.param(True, "twin", id="through-jax"), pytest.param(False, "torch", id="plain")],
)
def test_raised_by_names_the_twin_when_the_exception_came_through_jax(through_jax, side):
    def boom(x):
        raise SystemExit(1)

    with pytest.raises(SystemExit) as info:
        jax.jit(boom)(1.0) if through_jax else boom(1.0)
    assert raised_by(info.value, "torch") == side


def _exits(value):
    sys.exit(5)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        pytest.param(tensor("n").map(_exits), ".map(_exits) raised SystemExit: 5", id="map"),
        pytest.param(
            st.integers(0, 3).map(_exits), "sys.exit(5) was called outside", id="strategy"
        ),
    ],
)
def test_an_input_strategy_that_calls_sys_exit_is_an_error_not_the_end(spec, words):
    # before: the SystemExit hypothesis replayed left verify
    report = oracle.verify(
        lambda x, *_: torch.sin(x), lambda x, *_: jnp.sin(x), [tensor("n"), spec], **QUICK
    )
    [finding] = report.findings
    assert (finding.check, finding.diagnosis) == ("error", "error")
    assert words in finding.detail
