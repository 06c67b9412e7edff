"""oracle.judge.checks.jvp: torch's forward-mode derivative against jax.jvp of the twin."""

from __future__ import annotations

import pytest
import torch

from tests import contract_specimens as cs


def test_a_correct_jvp_is_ok(run_check):
    assert run_check("jvp", cs.Exp.apply, cs.exp_twin) == ([], "ok")


def test_a_plain_torch_function_is_ok(run_check):
    assert run_check("jvp", torch.sin, cs.sin_twin, dtype="float64") == ([], "ok")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_doubled_jvp_is_scaled_by_two_and_blamed_on_torch(run_check, dtype):
    (d,), status = run_check("jvp", cs.ExpJvpDoubled.apply, cs.exp_twin, dtype=dtype)
    assert status == "diverged"
    assert (d.check, d.blame, d.diagnosis, d.factor) == ("jvp", "torch", "scaled", 2.0)


@pytest.mark.parametrize("asked", [False, True])
def test_a_function_without_jvp_is_unsupported_and_a_finding_only_when_asked(run_check, asked):
    found, status = run_check("jvp", cs.SinOldStyle.apply, cs.sin_twin, asked=asked)
    assert status.startswith("unsupported: ")
    assert [(d.diagnosis, d.reason) for d in found] == (
        [("unsupported", "refused")] if asked else []
    )
