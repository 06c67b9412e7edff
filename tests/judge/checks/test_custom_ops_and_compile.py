"""torch.library custom ops as torch_fn (the op, its packet, its overload), the
``opcheck`` check, and the ``compile`` check: right ones clean, wrong ones flagged by
the check that can see them, refusals said truthfully."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import torch

import oracle
from oracle import tensor
from oracle.judge.checks.compiled import RECOMPILE_LIMIT, dynamo_scope

KW = {"devices": ["cpu"], "seed": 0, "max_examples": 8, "dims": {"n": (1, 4)}}
X = [tensor("n", low=-2, high=2)]


def _op(name: str, backward_scale: float = 1.0, fake_shape_bug: bool = False):
    @torch.library.custom_op(f"oracle_test::{name}", mutates_args=())
    def op(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @op.register_fake
    def _(x):
        return x.new_empty((x.shape[0] + 1,)) if fake_shape_bug else torch.empty_like(x)

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return backward_scale * g * torch.cos(x)

    op.register_autograd(backward, setup_context=setup_context)
    return op


RIGHT = _op("sin_right")
WRONG_BACKWARD = _op("sin_wrong_backward", backward_scale=2.0)
WRONG_FAKE = _op("sin_wrong_fake", fake_shape_bug=True)


@pytest.mark.parametrize(
    "fn", [RIGHT, torch.ops.oracle_test.sin_right, torch.ops.oracle_test.sin_right.default]
)
def test_a_right_custom_op_is_clean_with_truthful_refusals(fn):
    report = oracle.verify(fn, jnp.sin, X, dtypes=["float64"], **KW)
    assert report.ok, str(report)
    caps = report.capabilities
    assert caps["vjp"] == "ok" and caps["hvp"] == "ok" and caps["contract"] == "ok"
    # torch gives no tangent and no error: a refusal named for what it is, not "zeros"
    assert caps["jvp"].startswith("unsupported: torch.library custom op oracle_test::sin_right")
    assert "no forward-mode AD rule" in caps["jvp"]
    # not the message of an autograd.Function without setup_context: the op has one
    assert not caps["vmap"].startswith("unsupported: forward(ctx, ...) without setup_context")
    assert "cannot differentiate torch.library custom op" in caps["vmap"]


def test_a_missing_jvp_rule_is_a_finding_when_jvp_is_asked_for():
    report = oracle.verify(RIGHT, jnp.sin, X, dtypes=["float64"], checks=["jvp"], **KW)
    (d,) = report.findings
    assert (d.check, d.diagnosis, d.reason) == ("jvp", "unsupported", "refused")


def test_a_wrong_backward_of_a_custom_op_is_flagged():
    report = oracle.verify(WRONG_BACKWARD, jnp.sin, X, dtypes=["float64"], checks=["vjp"], **KW)
    (d,) = report.findings
    assert (d.check, d.blame, d.diagnosis, d.factor) == ("vjp", "torch", "scaled", 2.0)


def test_opcheck_finds_a_wrong_fake_kernel_that_the_values_do_not_show():
    values_only = oracle.verify(WRONG_FAKE, jnp.sin, X, dtypes=["float64"], checks=["vjp"], **KW)
    assert values_only.ok, str(values_only)
    both = oracle.verify(
        WRONG_FAKE, jnp.sin, X, dtypes=["float64"], checks=["vjp", "opcheck"], **KW
    )
    assert both.capabilities["opcheck"] == "diverged"
    found = [d for d in both.findings if d.phase == "opcheck"]
    assert found and found[0].check == "contract"
    assert "test_faketensor" in found[0].detail


def test_opcheck_passes_a_right_op_and_refuses_a_plain_function():
    report = oracle.verify(RIGHT, jnp.sin, X, dtypes=["float64"], checks=["opcheck"], **KW)
    assert report.ok and report.capabilities["opcheck"] == "ok", str(report)
    plain = oracle.verify(torch.sin, jnp.sin, X, dtypes=["float64"], checks=["opcheck"], **KW)
    (d,) = plain.findings
    assert d.diagnosis == "unsupported" and "not a torch.library custom op" in d.detail


def test_the_default_capability_table_leaves_out_checks_that_run_only_when_asked():
    report = oracle.verify(torch.sin, jnp.sin, X, dtypes=["float64"], **KW)
    assert "opcheck" not in report.capabilities and "compile" not in report.capabilities
    assert "opcheck" not in str(report)


def _sin_compiled_differently(x):
    # right eagerly, wrong only under torch.compile (a compile-only code path)
    if torch.compiler.is_compiling():
        return torch.sin(x) * 1.5
    return torch.sin(x)


def test_the_compile_check_compares_the_compiled_function_with_the_twin():
    kw = {**KW, "max_examples": 3, "dtypes": ["float64"]}
    right = oracle.verify(torch.sin, jnp.sin, X, checks=["vjp", "compile"], **kw)
    assert right.ok and right.capabilities["compile"] == "ok", str(right)
    wrong = oracle.verify(_sin_compiled_differently, jnp.sin, X, checks=["vjp", "compile"], **kw)
    (d,) = wrong.findings
    assert (d.check, d.blame, d.diagnosis, d.factor) == ("compile", "torch", "scaled", 1.5)
    assert d.detail.startswith("compile: compiled ")  # (output or gradient: shrinking picks)


def test_dynamo_scope_makes_the_recompile_limit_an_error_for_the_oracles_calls_only():
    import torch._dynamo as dynamo

    config = dynamo.config
    before = (config.recompile_limit, config.fail_on_recompile_limit_hit)
    with dynamo_scope():
        assert config.recompile_limit >= RECOMPILE_LIMIT
        assert config.fail_on_recompile_limit_hit is True
    assert (config.recompile_limit, config.fail_on_recompile_limit_hit) == before
