"""oracle.judge.plan: which checks beyond the vjp run on which example (Beyond), with
fake checks and a fake pair: no JAX, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from oracle import vocabulary
from oracle.judge import plan
from oracle.judge.checks.base import Check
from oracle.judge.plan import DEFAULT_EXAMPLES, Beyond
from oracle.report.capabilities import NOT_CHECKED
from oracle.report.records import Divergence
from oracle.vocabulary import EXTRA


def finding(check, blame="torch"):
    return Divergence(check, 0, blame, "mismatch", f"{check} is off", "float32", "cpu")


@dataclass
class FakeCheck:
    """Answers ``status`` (and a finding when it says "diverged" or is a refusal asked
    for), and writes down how it was called."""

    name: str
    status: str = "ok"
    calls: list = field(default_factory=list)

    def run(self, sides, values, seed, dtype, device, *, asked, thorough):
        self.calls.append({"values": values, "asked": asked, "thorough": thorough})
        if self.status == "raise":
            raise RuntimeError("oracle bug")
        wrong = self.status == "diverged" or (asked and self.status.startswith("unsupported"))
        return ([finding(self.name)] if wrong else []), self.status


@pytest.fixture
def checks(monkeypatch):
    fakes = {name: FakeCheck(name) for name in EXTRA}
    made = {
        name: Check(
            name,
            run=fake.run,
            follows_vjp=lambda d: d.check in ("hvp", "vmap"),
            probes_refusal=name == "jvp",
        )
        for name, fake in fakes.items()
    }
    monkeypatch.setattr(plan, "registered", lambda name: made[name])
    return fakes


def sides():
    return SimpleNamespace(twin=SimpleNamespace(fn=object(), extra_compiled=set(), extra_budget={}))


def examples(beyond, pair, shapes):
    """Examples as the runner hands them over: announced (``see``), then checked; the
    values vary, so every example of two elements or more is a wide one."""
    found = []
    for seed, shape in enumerate(shapes):
        values = (np.arange(float(np.prod(shape))).reshape(shape),)
        beyond.see({f"d{i}": n for i, n in enumerate(shape)}, values)
        found += beyond.after(pair, values, seed, "float32", "cpu")
    return found


def test_an_asked_check_runs_thoroughly_on_every_example_and_the_others_never(checks):
    beyond = Beyond(("vjp", "jvp"))
    examples(beyond, sides(), [(3,), (4,), (5,), (6,), (7,)])
    assert len(checks["jvp"].calls) == 5
    assert all(c["asked"] and c["thorough"] for c in checks["jvp"].calls)
    assert all(not checks[c].calls for c in EXTRA if c != "jvp")
    assert beyond.capabilities["jvp"] == "ok" and beyond.capabilities["hvp"] == NOT_CHECKED


def test_the_default_set_runs_cheaply_on_default_examples_examples_only(checks):
    beyond = Beyond(None)
    examples(beyond, sides(), [(3,)] * (DEFAULT_EXAMPLES + 4))
    for name in EXTRA:
        if not vocabulary.CHECKS[name].default:  # only when asked (opcheck, compile)
            assert not checks[name].calls and beyond.capabilities[name] == "not checked"
            continue
        assert len(checks[name].calls) == DEFAULT_EXAMPLES
        assert not any(c["asked"] or c["thorough"] for c in checks[name].calls)
        assert beyond.capabilities[name] == "ok"


def test_the_default_set_counts_per_run_so_a_later_run_starts_afresh(checks):
    # (issue 18) what a run looks at does not depend on what ran before in the process
    pair = sides()
    examples(Beyond(None), pair, [(3,)])
    examples(Beyond(None), pair, [(4,), (3,)])  # a later run of the same pair
    assert [c["values"][0].shape for c in checks["jvp"].calls] == [(3,), (4,)]


def test_a_default_check_that_found_a_wrong_value_runs_on_every_example_after(checks):
    checks["vmap"].status = "diverged"
    beyond = Beyond(None)
    found = examples(beyond, sides(), [(3,)] * (DEFAULT_EXAMPLES + 3))
    assert len(checks["vmap"].calls) == DEFAULT_EXAMPLES + 3
    assert len(checks["jvp"].calls) == DEFAULT_EXAMPLES
    assert [f.check for f in found] == ["vmap"] * (DEFAULT_EXAMPLES + 3)
    assert beyond.capabilities["vmap"] == "diverged"


def test_every_runs_the_default_set_on_every_example_but_not_an_asked_set(checks):
    examples(Beyond(None, every=True), sides(), [(3,), (4,), (5,), (6,), (7,)])
    assert len(checks["hvp"].calls) == 5
    assert Beyond(("jvp",), every=True).every is False


def test_an_asked_refusal_is_kept_aside_once_and_the_check_is_not_run_again(checks):
    checks["hvp"].status = "unsupported: once_differentiable"
    beyond = Beyond(("hvp", "jvp"))
    found = examples(beyond, sides(), [(3,), (3,), (3,)])
    assert found == []  # a refusal does not depend on the values: nothing to shrink
    assert [f.check for f in beyond.refusals] == ["hvp"]
    assert len(checks["hvp"].calls) == 1 and len(checks["jvp"].calls) == 3
    assert beyond.capabilities["hvp"] == "unsupported: once_differentiable"


def test_a_default_refusal_is_a_capability_not_a_finding(checks):
    checks["hvp"].status = "unsupported: once_differentiable"
    beyond = Beyond(None)
    found = examples(beyond, sides(), [(3,)] * DEFAULT_EXAMPLES)
    assert found == [] and beyond.refusals == []
    assert beyond.capabilities["hvp"] == "unsupported: once_differentiable"


def test_the_oracles_own_failure_shows_in_the_capability_table_not_as_a_finding(checks):
    checks["contract"].status = "raise"
    beyond = Beyond(None)
    assert examples(beyond, sides(), [(3,)]) == []
    assert beyond.capabilities["contract"] == (
        "unsupported: the oracle could not run it: RuntimeError: oracle bug"
    )


def test_before_runs_the_due_checks_rules_and_a_finding_marks_the_check_diverged(monkeypatch):
    calls = []

    def before(sides, values, seed, dtype, device):
        calls.append(seed)
        return [finding("contract")]

    def broken_before(*args):
        raise RuntimeError("oracle bug")

    made = {name: Check(name, run=FakeCheck(name).run) for name in EXTRA}
    made["contract"] = Check("contract", run=FakeCheck("contract").run, before=before)
    made["vmap"] = Check("vmap", run=FakeCheck("vmap").run, before=broken_before)
    monkeypatch.setattr(plan, "registered", lambda name: made[name])
    beyond = Beyond(None)
    values = (np.arange(3.0),)
    beyond.see({"n": 3}, values)  # a wide example: the default set looks at it
    found = beyond.before(sides(), values, 7, "float32", "cpu")
    assert [f.check for f in found] == ["contract"] and calls == [7]
    assert beyond.capabilities["contract"] == "diverged"
    assert beyond.capabilities["vmap"] == NOT_CHECKED  # its failure is no finding


@pytest.mark.parametrize(
    "asked, findings, status",
    [
        pytest.param(None, [], "ok", id="nothing-found"),
        pytest.param(None, [finding("vjp", blame="kink")], "ok", id="a-kink-only"),
        pytest.param(None, [finding("vjp")], "diverged", id="real"),
        pytest.param(("jvp",), [finding("vjp")], NOT_CHECKED, id="vjp-not-asked"),
    ],
)
def test_note_vjp_records_the_vjps_capability(asked, findings, status):
    beyond = Beyond(asked)
    beyond.note_vjp(findings)
    assert beyond.capabilities["vjp"] == status
    assert beyond.vjp is (asked is None)


def test_keep_drops_what_follows_from_a_wrong_vjp_under_the_default_set_only(checks):
    found = [finding("vjp"), finding("hvp"), finding("vmap"), finding("jvp")]
    assert [d.check for d in Beyond(None).keep(found)] == ["vjp", "jvp"]
    assert [d.check for d in Beyond(("vjp", "hvp", "vmap", "jvp")).keep(found)] == [
        "vjp",
        "hvp",
        "vmap",
        "jvp",
    ]
    kink_only = [finding("vjp", blame="kink"), finding("hvp")]
    assert Beyond(None).keep(kink_only) == kink_only


def test_look_asks_a_probing_check_for_a_refusal_on_the_shrunk_example(checks):
    checks["jvp"].status = "unsupported: no jvp staticmethod"
    beyond = Beyond(None)
    beyond.look(sides(), (np.zeros(3),), 0, "float32", "cpu")
    assert beyond.capabilities["jvp"] == "unsupported: no jvp staticmethod"
    (call,) = checks["jvp"].calls
    assert (call["asked"], call["thorough"]) == (False, True)
    assert all(not checks[c].calls for c in EXTRA if c != "jvp")  # only probes_refusal ones


def test_look_records_no_wrong_value_and_does_nothing_for_an_asked_set(checks):
    checks["jvp"].status = "diverged"
    beyond = Beyond(None)
    beyond.look(sides(), (np.zeros(3),), 0, "float32", "cpu")
    assert beyond.capabilities["jvp"] == NOT_CHECKED  # the first derivative is wrong already
    asked = Beyond(("jvp",))
    asked.look(sides(), (np.zeros(3),), 0, "float32", "cpu")
    assert len(checks["jvp"].calls) == 1
