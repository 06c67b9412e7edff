"""A float32-only function (a kernel whose dtype table has no float64, a float32 weight
of its own) is judged in float32 against the twin's float64 values, and its float64 run
says "float32 only", never an error finding; a wrong one is still flagged in float32."""

from __future__ import annotations

import jax.numpy as jnp
import torch

import oracle
from oracle import tensor

KW = {"devices": ["cpu"], "seed": 0, "max_examples": 10, "checks": ["vjp"]}

#: the compute dtype per input dtype, as kernel libraries keep it: float64 is missing
_TABLE = {torch.float32: torch.float32, torch.float16: torch.float32}


class _TableSin(torch.autograd.Function):
    scale = 1.0

    @staticmethod
    def forward(ctx, x):
        compute = _TABLE[x.dtype]  # KeyError: torch.float64
        ctx.save_for_backward(x)
        return torch.sin(x.to(compute)).to(x.dtype)

    @classmethod
    def backward(cls, ctx, g):
        (x,) = ctx.saved_tensors
        return cls.scale * g * torch.cos(x)


class _WrongTableSin(_TableSin):
    scale = 2.0


def test_a_kernel_that_refuses_float64_is_float32_only_not_an_error():
    report = oracle.verify(_TableSin.apply, jnp.sin, [tensor("n")], **KW)
    assert report.ok and not report.findings, report
    (r64,) = [r for r in report.runs if r.dtype == "float64"]
    assert r64.only.startswith("float32 only (the PyTorch side raised in its forward: KeyError")
    assert report.to_dict()["runs"][1]["only"] == r64.only
    (row,) = [ln for ln in str(report).splitlines() if ln.startswith("  float64  cpu")]
    assert "float32 only" in row  # the float64 row's outcome


def test_a_wrong_float32_only_kernel_is_flagged_in_float32_and_its_float64_error_stays():
    report = oracle.verify(_WrongTableSin.apply, jnp.sin, [tensor("n")], **KW)
    kinds = {(d.dtype, d.check) for d in report.findings}
    assert ("float32", "vjp") in kinds
    # with the float32 run not clean, nothing says the float64 error is by design
    assert ("float64", "error") in kinds
    assert not any(r.only for r in report.runs)


def test_float64_alone_asked_for_keeps_the_error():
    report = oracle.verify(_TableSin.apply, jnp.sin, [tensor("n")], dtypes=["float64"], **KW)
    (d,) = report.findings
    assert (d.check, d.blame, d.reason, d.phase) == ("error", "torch", "raised", "forward")
