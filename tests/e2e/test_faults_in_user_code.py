"""Faults of user code through ``verify``: each is put on the side that made it (the
twin's own faults are never blamed on torch), and no global setting it changed
outlives the call."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import torch

import oracle
from oracle import tensor

FAST = {"devices": ["cpu"], "max_examples": 5, "seed": 0}


def test_a_twin_output_of_another_shape_is_a_forward_finding_not_an_error_of_torch():
    report = oracle.verify(torch.sin, lambda x: jnp.sin(x).T, [tensor("2 3")], **FAST)
    assert {(d.check, d.reason) for d in report.findings} == {("forward", "structure")}
    assert all(d.blame in ("twin", "unknown") for d in report.findings)
    assert "shape (2, 3) in torch and (3, 2) in the twin" in report.findings[0].detail


def _hangs(x):
    while True:
        time.sleep(0.01)


def test_a_twin_that_hangs_in_the_checks_beyond_the_vjp_is_blamed_on_the_twin():
    # the default set's contract check calls the twin before the vjp does
    report = oracle.verify(torch.sin, _hangs, [tensor("3")], timeout=1, dtypes="float64", **FAST)
    (hung,) = report.findings
    assert (hung.check, hung.reason, hung.blame) == ("error", "timeout", "twin"), hung.detail
    assert "JAX twin timed out" in hung.detail


def test_a_twin_that_turns_on_x64_is_reported_once_and_on_the_twin():
    def turns_on_x64(x):
        jax.config.update("jax_enable_x64", True)
        return jnp.sin(x)

    report = oracle.verify(torch.sin, turns_on_x64, [tensor("n")], **FAST)
    changed = [d for d in report.findings if d.reason == "setting_changed"]
    assert [d.blame for d in changed] == ["twin"], [d.detail for d in changed]
    assert not jax.config.jax_enable_x64


def test_a_torch_fn_that_turns_grad_mode_off_leaves_it_on_after_verify_and_is_reported():
    def grad_off(x):
        y = torch.sin(x)
        torch.set_grad_enabled(False)
        torch.set_anomaly_enabled(True)
        return y

    report = oracle.verify(grad_off, jnp.sin, [tensor("n")], **FAST)
    assert torch.is_grad_enabled() and not torch.is_anomaly_enabled()
    changed = {d.detail for d in report.findings if d.reason == "setting_changed"}
    assert any("grad mode" in t for t in changed) and any("anomaly mode" in t for t in changed)
    assert {d.blame for d in report.findings if d.reason == "setting_changed"} == {"torch"}
