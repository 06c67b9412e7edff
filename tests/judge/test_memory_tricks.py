"""Verdicts that survive memory tricks (issue 18): in-place writes, writes through raw
pointers, aliasing, layouts, and the examples the checks beyond the vjp see.

A write "through a raw pointer" (Triton, CUDA, data_ptr) is simulated by a write through
numpy, which no version counter sees. Specimens: tests/contract_specimens.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import oracle
from oracle import tensor, vocabulary
from oracle.inputs.specs import normalize_inputs
from oracle.pair.bridge import to_torch
from oracle.pair.torch_side import TorchSide
from tests import contract_specimens as cs

FAST = {"devices": ["cpu"], "seed": 0, "max_examples": 8}
VEC = [tensor("n", low=-3, high=3)]
MAT = [tensor("m n", low=-3, high=3)]
MAT_DIMS = {"m": (2, 4), "n": (2, 4)}


def findings(report, check=None):
    return [d for d in report.findings if check is None or d.check == check]


def in_every_dtype(found):
    assert {d.dtype for d in found} == {"float32", "float64"}, found
    return found


# --- item 1: the oracle's own data is private ------------------------------------------


def test_torch_fn_gets_tensors_that_share_no_memory_with_the_example():
    from oracle.pair.bridge import call_copies

    specs = normalize_inputs(VEC)
    values = [np.array([1.0, 2.0, 3.0])]
    leaves = to_torch(values, specs, "float64", "cpu")
    leaves[0].detach().numpy()[...] = 0.0
    assert values[0].tolist() == [1.0, 2.0, 3.0]
    (arg,) = call_copies(leaves)
    assert not arg.is_leaf and arg.data_ptr() != leaves[0].data_ptr()


@pytest.mark.parametrize("how", ["transposed", "sliced", "expanded"])
def test_the_differentiable_copy_keeps_the_layout(how):
    from oracle.judge.checks.contract import _layout
    from oracle.pair.bridge import call_copies

    x = _layout(torch.arange(12.0).view(3, 4), how).requires_grad_()
    (c,) = call_copies([x])
    assert (c.shape, c.stride(), c.is_leaf) == (x.shape, x.stride(), False)
    assert torch.equal(c, x)
    (g,) = torch.autograd.grad((c * torch.arange(12.0).view(3, 4)).sum(), x)
    assert torch.equal(g, torch.arange(12.0).view(3, 4))


def test_a_raw_write_into_grad_output_is_mutates_grad_output_not_a_wrong_gradient():
    report = oracle.verify(cs.SinRawWriteGradOutput.apply, cs.sin_twin, VEC, **FAST)
    assert not findings(report, "vjp") and not findings(report, "forward"), report
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.blame, d.diagnosis) == ("contract", "torch", "mutates_grad_output")
    assert report.capabilities["vjp"] == "ok"


def test_a_backward_that_writes_into_its_input_through_memory_is_mutates_input():
    report = oracle.verify(cs.SinRawWriteInput.apply, cs.sin_twin, VEC, **FAST)
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.argument, d.diagnosis) == ("contract", 0, "mutates_input")
        assert "backward" in d.detail
    assert report.capabilities["vjp"] == "ok"


def test_the_torch_side_reports_what_it_wrote_into():
    specs = normalize_inputs(VEC)
    side = TorchSide(cs.SinRawWriteGradOutput.apply, specs)
    values = [np.array([0.5, 1.0])]
    cots = [np.array([1.0, -1.0])]
    out = side.run(values, "float64", "cpu", cots)
    assert out.mutations == [("grad_output", 0, "backward")]
    assert cots[0].tolist() == [1.0, -1.0] and values[0].tolist() == [0.5, 1.0]
    np.testing.assert_allclose(out.grads[0], cots[0] * np.cos(values[0]))


# --- items 2-4: in-place Functions ------------------------------------------------------


def test_an_input_changed_without_mark_dirty_is_mutates_input_in_every_dtype():
    report = oracle.verify(cs.DoubleInPlaceNoDirty.apply, cs.double_twin, VEC, **FAST)
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.blame, d.argument, d.diagnosis) == (
            "contract",
            "torch",
            0,
            "mutates_input",
        )
    assert report.capabilities["contract"] == "diverged"


def test_a_correct_in_place_function_with_mark_dirty_passes():
    report = oracle.verify(cs.DoubleInPlace.apply, cs.double_twin, MAT, dims=MAT_DIMS, **FAST)
    assert report.ok, report
    assert report.capabilities["vjp"] == "ok"
    # an in-place write into overlapping (expanded) memory is refused by torch itself
    assert report.capabilities["contract"].startswith("unsupported: raises on expanded input")


def test_the_gradient_of_an_in_place_function_is_still_judged():
    report = oracle.verify(cs.DoubleInPlaceWrongGrad.apply, cs.double_twin, VEC, **FAST)
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.blame, d.diagnosis, d.factor) == ("vjp", "torch", "scaled", 1.5)


def test_a_mutating_function_with_a_wrong_gradient_shows_both():
    class Wrong(cs.DoubleInPlaceNoDirty):
        @staticmethod
        def backward(ctx, g):
            return 3 * g

    report = oracle.verify(Wrong.apply, cs.double_twin, VEC, **FAST)
    assert {(d.check, d.diagnosis) for d in report.findings} == {
        ("contract", "mutates_input"),
        ("vjp", "scaled"),
    }, report


# --- item 5: layouts --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [cs.SquareAssumesContiguous, cs.SquareContiguousCopyFlag], ids=lambda f: f.__name__
)
def test_a_function_that_assumes_contiguous_memory_is_a_layout_finding(fn):
    report = oracle.verify(fn.apply, cs.square_twin, MAT, dims=MAT_DIMS, **FAST)
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.blame, d.diagnosis) == ("contract", "torch", "layout")
    assert report.capabilities["vjp"] == "ok"


def test_a_contiguous_copy_that_asks_needs_input_grad_passes():
    report = oracle.verify(
        cs.SquareContiguousCopy.apply, cs.square_twin, MAT, dims=MAT_DIMS, **FAST
    )
    assert report.ok, report


# --- item 10: a loud refusal is a capability --------------------------------------------


def test_a_function_that_refuses_a_layout_is_unsupported_not_a_finding():
    report = oracle.verify(
        cs.SquareRefusesStrides.apply, cs.square_twin, MAT, dims=MAT_DIMS, **FAST
    )
    assert report.ok, report
    assert report.capabilities["contract"].startswith("unsupported: raises on transposed input")


def test_a_refused_layout_is_a_finding_when_the_contract_is_asked_for():
    report = oracle.verify(
        cs.SquareRefusesStrides.apply,
        cs.square_twin,
        MAT,
        dims=MAT_DIMS,
        checks=["vjp", "contract"],
        **FAST,
    )
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.diagnosis, d.reason) == ("contract", "unsupported", "refused")


# --- items 6-7: the examples the checks beyond the vjp see ------------------------------


def test_the_default_extra_checks_skip_degenerate_examples_and_take_wide_and_largest():
    from oracle.judge.plan import Beyond
    from oracle.vocabulary import EXTRA

    beyond = Beyond(None, bounds={"n": (1, 4)})
    sig = lambda n: ("twin", "float32", "cpu", (("array", (n,), "f"),))  # noqa: E731

    def due(n, values=None):
        values = values if values is not None else [np.arange(n, dtype=float)]
        beyond.see({"n": n}, values)
        got = beyond._due(None, sig(n))
        if got:
            beyond.done += 1
            beyond.had |= beyond.kind
            beyond.compiled.add(sig(n))
        return got

    assert due(1) == []  # a row of one element hides what the checks look for
    assert due(3, [np.zeros(3)]) == []  # so does a constant array
    assert due(3) == [c for c in EXTRA if vocabulary.CHECKS[c].default]  # the first wide example
    assert due(2) == []  # wide, but neither new nor compiled
    assert due(3) == [c for c in EXTRA if vocabulary.CHECKS[c].default]  # compiled already
    assert due(4) == [
        c for c in EXTRA if vocabulary.CHECKS[c].default
    ]  # the first at the largest sizes
    assert due(3) == []  # the count is spent (3 examples)
    fresh = Beyond(None, bounds={"n": (1, 4)})
    fresh.see({"n": 4}, [np.arange(4.0)])
    assert fresh.kind == {"wide", "largest"}


def test_a_verdict_does_not_depend_on_what_ran_before_in_the_process():
    # a row normalisation whose backward is right but whose derivative is not, for
    # rows of two elements or more (invisible at n = 1)
    # (rows away from 0: near 0 the normalisation's own rounding blurs the picture)
    rows = [tensor("m n", low=0.5, high=3)]
    for fn, twin in [(cs.XSinX, cs.x_sin_x_twin), (cs.Exp, cs.exp_twin)]:
        oracle.verify(fn.apply, twin, rows, dims={"m": (1, 3), "n": (1, 4)}, **FAST)
    report = oracle.verify(
        cs.RowNormalize.apply,
        cs.row_normalize_twin,
        rows,
        dims={"m": (1, 3), "n": (1, 4)},
        devices=["cpu"],
        seed=20261123,
        max_examples=10,
    )
    for d in in_every_dtype(findings(report)):
        assert (d.check, d.blame) == ("hvp", "torch")
        assert d.example["dims"]["n"] >= 2  # invisible for rows of one element


def test_a_function_wrong_in_two_modes_shows_both():
    # torch's autograd_function_db: forward x.clone(), backward and jvp scaled by 3.14
    report = oracle.verify(cs.CloneScaledBothModes.apply, cs.identity_twin, VEC, **FAST)
    for check in ("vjp", "jvp"):
        for d in in_every_dtype(findings(report, check)):
            assert (d.blame, d.diagnosis) == ("torch", "scaled")
    assert report.capabilities["jvp"] == "diverged"


# --- item 9: the capability table says what happened -------------------------------------


def test_the_vjp_is_not_ok_when_the_twin_raised_on_every_example():
    def broken_twin(x):
        raise ValueError("the twin is broken")

    report = oracle.verify(cs.Exp.apply, broken_twin, VEC, **FAST)
    assert not report.ok
    assert report.capabilities["vjp"] == "not checked"


# --- item 8: outputs judged with the rounding model ---------------------------------------


def test_an_exact_zero_against_the_twins_rounding_is_no_forward_mismatch():
    report = oracle.verify(
        cs.self_divergence,
        cs.self_divergence_twin,
        [tensor("b n", low=0.1, high=2)],
        dims={"b": (2, 3), "n": (2, 8)},
        devices=["cpu"],
        seed=0,
        max_examples=15,
        checks=["vjp"],
    )
    assert report.ok, report


class _LinearProbe:
    """A stand-in for the probe: torch's backward is ``v -> J v`` plus ``noise`` (a
    fixed pattern), and the twin's terms are of size ``terms``."""

    diff_pos = [0]

    def __init__(self, noise: float, terms: float, j: float = 9.5e-6):
        self.cots = [np.array([1.0, -0.5, 0.25])]
        self.noise, self.terms, self.j = noise, terms, j

    def torch_grads(self, xs, cots, dtype="float64"):
        v = cots[0]
        return [self.j * v + self.noise * np.array([1.0, -1.0, 0.5]) * (v != 0).any()]

    def term_magnitudes(self, k):
        return np.full(3, self.terms)


def test_a_departure_from_linearity_within_rounding_is_no_diagnosis():
    from oracle.judge.diagnosis import _linearity

    # a correct kernel computing in float32: a gradient of 9.5e-6 from terms of size 1,
    # off by 3.4e-8 whatever the cotangent (torch's own float32 LayerNorm: 3.5e-8)
    probe = _LinearProbe(noise=3.4e-8, terms=1.0)
    a = probe.torch_grads(None, probe.cots)[0]
    assert _linearity(probe, 0, [np.zeros(3)], a, 0) is None
    # the same departure on terms of size 1e-6 is beyond any rounding: a finding
    probe = _LinearProbe(noise=3.4e-8, terms=1e-6)
    v = _linearity(probe, 0, [np.zeros(3)], probe.torch_grads(None, probe.cots)[0], 0)
    assert v is not None and v.diagnosis == "not_linear_in_grad_output"


def test_a_check_that_diverged_without_a_finding_in_the_report_says_why():
    from oracle.report.records import Divergence
    from oracle.search.runner import _say_why_unshown

    caps = {"vjp": "diverged", "hvp": "diverged", "contract": "diverged", "jvp": "diverged"}
    where = {"argument": 0, "blame": "torch", "detail": "", "dtype": "float32", "device": "cpu"}
    hvp = Divergence(check="hvp", diagnosis="mismatch", **where)
    jvp = Divergence(check="jvp", diagnosis="scaled", **where)
    _say_why_unshown(caps, found=[hvp, jvp], shown=[jvp])
    assert caps["jvp"] == "diverged"  # its finding is in the report
    assert caps["hvp"].startswith("diverged: only where the vjp is wrong too")
    assert caps["contract"].startswith("diverged: on an example the search moved past")


def test_an_exact_zero_against_the_twins_rounding_is_no_vmap_mismatch():
    report = oracle.verify(
        cs.self_divergence,
        cs.self_divergence_twin,
        [tensor("b n", low=0.1, high=2)],
        dims={"b": (2, 3), "n": (2, 8)},
        devices=["cpu"],
        seed=0,
        max_examples=5,
        checks=["vmap"],
    )
    assert report.ok, report
    assert report.capabilities["vmap"] == "ok"
