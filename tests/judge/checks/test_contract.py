"""oracle.judge.checks.contract: the autograd.Function contract (inputs and grad_output
left alone, the same answer twice...), judged on one example."""

from __future__ import annotations

from oracle.judge.checks.contract import mutation_findings
from oracle.pair.guard import Guard
from oracle.pair.sides import Sides
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide
from tests import contract_specimens as cs
from tests.judge.checks.conftest import MAT, X


def test_a_function_that_keeps_the_contract_is_ok(run_check):
    assert run_check("contract", cs.Exp.apply, cs.exp_twin, asked=True) == ([], "ok")


def test_a_backward_that_writes_into_grad_output_is_flagged(run_check):
    found, status = run_check("contract", cs.SinMutatesGradOutput.apply, cs.sin_twin, asked=True)
    assert status == "diverged"
    assert [(d.check, d.blame, d.diagnosis) for d in found] == [
        ("contract", "torch", "mutates_grad_output")
    ]


def test_a_forward_that_changes_its_input_is_flagged_from_the_vjps_own_call():
    # (issue 18) the write is found by value on the example's own call, on private
    # copies: the drawn example is left as it was, and the finding is the contract's
    sides = Sides(
        TorchSide(cs.SinMutatesInput.apply, MAT, Guard()), TwinSide(cs.sin_twin, MAT), MAT
    )
    values = (X.copy(),)
    out = sides.torch.run(values, "float32", "cpu", None, backward=False)
    found = mutation_findings(out.mutations, "float32", "cpu")
    assert [(d.check, d.blame, d.diagnosis) for d in found] == [
        ("contract", "torch", "mutates_input")
    ]
    assert (values[0] == X).all()  # the drawn example itself is left as it was
