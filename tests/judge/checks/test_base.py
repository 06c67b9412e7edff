"""oracle.judge.checks (base.Check and registered): one check, found by its name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from oracle.judge.checks import registered
from oracle.judge.checks.base import Check


def test_a_check_by_default_has_no_before_rules_repeats_no_vjp_finding_and_probes_no_refusal():
    check = Check("mine", run=lambda *a, **k: ([], "ok"))
    assert check.before is None
    assert check.follows_vjp(object()) is False
    assert check.probes_refusal is False


@pytest.mark.parametrize(
    "name, phase, follows",
    [
        pytest.param("hvp", "", True, id="hvp-differentiates-the-backward"),
        pytest.param("vmap", "per_example", True, id="vmap-per-example-gradient"),
        pytest.param("vmap", "", False, id="vmap-of-the-forward"),
        pytest.param("jvp", "", False, id="jvp"),
        pytest.param("contract", "", False, id="contract"),
    ],
)
def test_the_registered_checks_say_which_findings_only_repeat_a_wrong_vjp(name, phase, follows):
    check = registered(name)
    assert isinstance(check, Check) and check.name == name
    assert check.follows_vjp(SimpleNamespace(check=name, phase=phase)) is follows


def test_an_unknown_check_is_a_key_error():
    with pytest.raises(KeyError):
        registered("grad")
