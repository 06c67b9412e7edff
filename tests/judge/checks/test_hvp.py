"""oracle.judge.checks.hvp: the backward's own derivative (a Hessian-vector product)
against the twin's."""

from __future__ import annotations

import pytest

from tests import contract_specimens as cs


def test_a_backward_with_its_own_graph_is_ok(run_check):
    assert run_check("hvp", cs.Exp.apply, cs.exp_twin) == ([], "ok")


@pytest.mark.parametrize(
    "fn", [cs.SinSavedCos, cs.SinDetachedBackward], ids=["saved-cos", "detached"]
)
def test_a_backward_whose_own_derivative_is_lost_is_blamed_on_torch(run_check, fn):
    (d,), status = run_check("hvp", fn.apply, cs.sin_twin, dtype="float64")
    assert status == "diverged"
    assert (d.check, d.blame) == ("hvp", "torch")


@pytest.mark.parametrize("asked", [False, True])
def test_once_differentiable_is_unsupported_and_a_finding_only_when_asked(run_check, asked):
    found, status = run_check("hvp", cs.SinOnceDifferentiable.apply, cs.sin_twin, asked=asked)
    assert status == "unsupported: backward is @once_differentiable (no double backward)"
    assert len(found) == int(asked)
