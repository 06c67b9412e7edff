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


def test_a_correct_complex_function_is_refused_with_what_to_do_not_flagged():
    report = oracle.verify(
        lambda x: torch.polar(torch.ones_like(x), x),
        lambda x: jnp.exp(1j * x),
        [tensor("3")],
        **FAST,
    )
    assert {(d.check, d.reason, d.blame) for d in report.findings} == {
        ("error", "not_supported", "unknown")
    }
    assert all(d.diagnosis != "disconnected" for d in report.findings)
    assert "output 0 of torch_fn is complex" in report.findings[0].detail
    assert "torch.view_as_real" in report.findings[0].detail
    assert sum(r.examples for r in report.runs) == 2  # one example per dtype: the run ends


def test_both_sides_raising_on_every_example_stops_early_and_says_what_they_raised():
    report = oracle.verify(
        lambda x: x.no_such_method(),
        lambda x: x.no_such_method(),
        [tensor("3")],
        devices=["cpu"],
        dtypes="float64",
        max_examples=500,
        seed=0,
    )
    (d,) = report.findings
    assert d.reason == "nothing_compared" and report.runs[0].examples <= 50
    assert (
        "torch forward: AttributeError" in d.detail and "twin forward: AttributeError" in d.detail
    )


def test_integer_outputs_are_said_to_be_integers():
    report = oracle.verify(lambda x: torch.argmax(x), jnp.argmax, [tensor("3")], **FAST)
    assert {d.reason for d in report.findings} == {"nothing_compared"}
    assert all("integer tensor" in d.detail for d in report.findings)
    # the checks beyond the vjp compare integer outputs too (they used to fail on them)
    assert not any("could not run" in s for s in report.capabilities.values()), report.capabilities


def test_a_python_float_output_in_a_float64_run_is_no_float32_precision_finding():
    report = oracle.verify(lambda x: float(x.sum()), jnp.sum, [tensor("3")], **FAST)
    kinds = {(d.check, d.diagnosis) for d in report.findings}
    assert ("vjp", "disconnected") in kinds and not any(k[1] == "precision" for k in kinds)
    assert all("float32" not in d.detail for d in report.findings)


def test_a_factory_that_changes_a_setting_when_building_is_reported_and_put_back():
    def build(dtype, device):
        torch.set_default_dtype(torch.float64)  # a build-time side effect
        return torch.nn.Tanh()

    before = torch.get_default_dtype()
    report = oracle.verify(build, jnp.tanh, [tensor("n")], **FAST)
    assert torch.get_default_dtype() == before
    changed = [d for d in report.findings if d.reason == "setting_changed"]
    assert [d.blame for d in changed] == ["torch"] and "factory" in changed[0].detail
