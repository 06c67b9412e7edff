"""oracle.judge.checks.vmap: torch.func.vmap of torch_fn against jax.vmap of the twin."""

from __future__ import annotations

import pytest
import torch

from tests import contract_specimens as cs


def test_a_generated_vmap_rule_is_ok(run_check):
    assert run_check("vmap", cs.Exp.apply, cs.exp_twin, asked=True) == ([], "ok")


def test_a_plain_torch_function_is_ok(run_check):
    assert run_check("vmap", torch.sin, cs.sin_twin) == ([], "ok")


def test_a_vmap_rule_with_the_wrong_out_dims_is_flagged_when_every_position_is_tried(run_check):
    # the batch at dimension 1 comes back at 0: thorough (asked) tries every position
    found, status = run_check("vmap", cs.SinWrongOutDims.apply, cs.sin_twin, asked=True)
    assert status == "diverged"
    assert [(d.check, d.blame) for d in found] == [("vmap", "torch")]


@pytest.mark.parametrize("asked", [False, True])
def test_an_old_style_function_is_unsupported_and_a_finding_only_when_asked(run_check, asked):
    found, status = run_check("vmap", cs.SinOldStyle.apply, cs.sin_twin, asked=asked)
    assert status.startswith("unsupported: ") and "setup_context" in status
    assert len(found) == int(asked)
