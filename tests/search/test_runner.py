"""oracle.search.runner: one hypothesis search per dtype x device. Its pure helpers on
hand-made findings, then a few tiny searches (shapes of at most 3 elements)."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import strategies as st

from oracle.inputs.specs import TensorSpec, example_strategy
from oracle.judge.checks.vjp import BothRaised
from oracle.pair.guard import Guard
from oracle.pair.sides import Sides
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide
from oracle.report.records import Divergence, RunSummary
from oracle.search import runner
from oracle.search.runner import _KIND, _collect, _internal, _vacuous, run_config
from oracle.validation import InputSpecError
from oracle.vocabulary import EXTRA

SPECS = (TensorSpec(("n",), -2.0, 2.0),)
REFS = {"registry": "pair", "module": "tests.pairs_good", "auto": False}


def finding(check):
    return Divergence(check, None, "torch", "mismatch", f"{check} is off", "float32", "cpu")


def diverged(check):
    return _KIND[check]([finding(check)])


# --- the pure helpers -------------------------------------------------------------


def test_each_kind_of_finding_has_an_exception_type_of_its_own():
    # hypothesis tells distinct failures apart by type: each kind is shrunk on its own
    assert set(_KIND) == {"forward", "vjp", "error", *EXTRA}
    assert len(set(_KIND.values())) == len(_KIND)


def test_collect_takes_the_findings_of_one_failure():
    exc = diverged("vjp")
    assert _collect(exc) == exc.findings


def test_collect_orders_several_failures_errors_first_then_forward_then_vjp_then_the_rest():
    group = ExceptionGroup(
        "several",
        [
            diverged("jvp"),
            diverged("vjp"),
            ExceptionGroup("inner", [diverged("error")]),
            diverged("forward"),
        ],
    )
    assert [d.check for d in _collect(group)] == ["error", "forward", "vjp", "jvp"]


def test_collect_of_anything_else_is_nothing():
    assert _collect(ValueError("oracle bug")) == []
    assert _collect(ExceptionGroup("x", [ValueError("a")])) == []


@pytest.mark.parametrize(
    "examples, rejected, says",
    [
        pytest.param(0, 0, "no example was run", id="none-run"),
        pytest.param(4, 4, "both sides raised on every example", id="all-rejected"),
        pytest.param(
            4, 1, "empty or not finite on both sides in all 4 examples", id="nothing-finite"
        ),
    ],
)
def test_a_run_that_compared_nothing_is_an_error_finding_saying_why(examples, rejected, says):
    summary = RunSummary("float32", "cpu", examples=examples, rejected=rejected)
    # (the tally saw floating outputs: nothing finite, not integer outputs only)
    d = _vacuous(summary, {"compared": 0, "floating_outputs": 2}, "pair", "float32", "cpu")
    assert (d.check, d.blame, d.diagnosis, d.reason) == (
        "error",
        "unknown",
        "error",
        "nothing_compared",
    )
    assert d.detail.startswith("nothing was compared: ") and says in d.detail
    assert (d.name, d.dtype, d.device) == ("pair", "float32", "cpu")


def test_an_input_spec_failure_is_told_from_the_oracles_own():
    spec = _internal(InputSpecError("map 'f' raised"), "pair", "float64", "cpu")
    assert spec.reason == "spec_failed" and "an input spec failed on a drawn value" in spec.detail
    own = _internal(KeyError("k"), "pair", "float64", "cpu")
    assert (
        own.reason == "oracle_failed"
        and "the oracle itself failed on this pair: KeyError" in own.detail
    )
    assert own.check == spec.check == "error"


# --- tiny searches ----------------------------------------------------------------


def sides(torch_fn, twin, timeout=5.0):
    guard = Guard(timeout)
    return Sides(TorchSide(torch_fn, SPECS, guard), TwinSide(twin, SPECS, guard), SPECS)


def search(pair, strategy=None, max_examples=8, checks=("vjp",)):
    if strategy is None:
        strategy = example_strategy(SPECS, {"n": (1, 3)})
    try:
        return run_config(
            pair,
            strategy,
            name="pair",
            dtype="float64",
            device="cpu",
            max_examples=max_examples,
            seed=0,
            parent=None,
            fn_refs=REFS,
            checks=checks,
        )
    finally:
        pair.twin.release()


class _TripleSquare(torch.autograd.Function):
    """x^2 whose backward says 3x instead of 2x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * g


def test_a_wrong_gradient_is_found_shrunk_and_given_its_example_and_reproducer():
    res = search(sides(_TripleSquare.apply, lambda x: x * x))
    real = [d for d in res.divergences if not d.is_kink]
    assert real and all(d.check == "vjp" and d.name == "pair" for d in real)
    d = real[0]
    assert d.example["dims"] == {"n": 1}  # shrunk to the smallest size
    assert d.reproducer and d.replay_data["cotangent_seed"] is not None
    assert res.summary.capabilities["vjp"] == "diverged"
    assert res.summary.examples >= 1 and res.summary.seconds > 0


def test_a_correct_pair_has_no_finding_and_counts_its_examples():
    res = search(sides(lambda x: x * x, lambda x: x * x), max_examples=5)
    assert res.divergences == []
    assert res.summary.examples == 5 and res.summary.capabilities["vjp"] == "ok"


def test_a_hang_ends_the_run_at_once_with_one_timeout_finding():
    def hangs(x):
        time.sleep(10)
        return x

    res = search(sides(hangs, lambda x: x, timeout=0.2))
    (d,) = res.divergences
    assert (d.check, d.reason, d.blame) == ("error", "timeout", "torch")
    assert res.summary.examples == 1  # a hang is not shrunk: that would repeat it


def test_both_sides_raising_on_every_example_is_reported_not_passed(monkeypatch):
    # the judging of an example is faked (hypothesis draws some 450 before giving up)
    def both_raised(*args):
        raise BothRaised()

    monkeypatch.setattr(runner, "check_example", both_raised)
    res = search(sides(lambda x: x, lambda x: x), max_examples=1)
    (d,) = res.divergences
    assert d.reason == "nothing_compared"
    assert "both sides raised on every example" in d.detail
    assert res.summary.rejected == res.summary.examples > 0


def test_a_strategy_that_draws_nothing_is_reported_not_passed():
    nothing = st.integers().filter(lambda i: False)
    (d,) = search(sides(lambda x: x, lambda x: x), strategy=nothing, max_examples=5).divergences
    assert d.reason == "nothing_compared"
    assert "could not draw a single example" in d.detail


def test_a_changed_global_setting_is_reported_once_per_run():
    def sets_the_default_dtype(x):
        torch.set_default_dtype(torch.float64)
        return x * 2

    res = search(sides(sets_the_default_dtype, lambda x: x * 2), max_examples=5)
    changed = [d for d in res.divergences if d.reason == "setting_changed"]
    assert len(changed) == 1 and changed[0].blame == "torch"
    assert torch.get_default_dtype() == torch.float32


def test_the_campaign_profile_is_read_from_hypothesis():
    from hypothesis import settings

    assert not runner.campaign_profile_loaded()  # the suite's own profile
    settings.load_profile(runner.CAMPAIGN_PROFILE)
    try:
        assert runner.campaign_profile_loaded()
    finally:
        settings.load_profile("oracle-tests")


# --- the second dtype starts from the first one's findings -------------------------------


def test_a_later_dtype_tries_the_earlier_findings_shrunk_example_first():
    import jax.numpy as jnp

    import oracle
    from oracle import tensor
    from tests.specimens import ScaledExp  # twice the gradient of exp

    report = oracle.verify(
        ScaledExp.apply, jnp.exp, [tensor("n")], devices=["cpu"], seed=0, max_examples=20
    )
    f32, f64 = report.runs
    assert f32.examples > 1 and f64.examples == 1  # failed again at once: no new search
    shown = {d.dtype: d for d in report.findings}
    assert shown["float32"].diagnosis == shown["float64"].diagnosis == "scaled"
    assert str(shown["float32"].example) == str(shown["float64"].example)


def test_a_later_dtype_searches_as_usual_when_the_example_passes_there():
    # a sigmoid written exp(x) / (1 + exp(x)) overflows in float32 only: the carried
    # example passes in float64, whose run then draws its own examples
    import jax

    import oracle
    from oracle import tensor

    class NaiveSoftplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.nn.functional.softplus(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.exp(x) / (1 + torch.exp(x))

    report = oracle.verify(
        NaiveSoftplus.apply,
        jax.nn.softplus,
        [tensor("n", low=-100, high=100)],
        devices=["cpu"],
        seed=0,
        max_examples=20,
    )
    f32, f64 = report.runs
    assert [(d.dtype, d.diagnosis) for d in report.findings] == [("float32", "nonfinite")]
    assert f64.examples > 20  # the carried example, then the usual search
