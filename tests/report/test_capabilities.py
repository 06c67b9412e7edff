"""oracle.report.capabilities: statuses per check and how they combine."""

from __future__ import annotations

import pytest

from oracle.report.capabilities import NOT_CHECKED, capability_table, merge, worse
from oracle.vocabulary import CHECK_NAMES

# from least to most said: no look, a pass, a refusal, a wrong value
ORDER = [NOT_CHECKED, "ok", "unsupported: no jvp staticmethod", "diverged"]


@pytest.mark.parametrize("i", range(len(ORDER)))
@pytest.mark.parametrize("j", range(len(ORDER)))
def test_worse_keeps_the_status_that_says_more_in_either_order(i, j):
    assert worse(ORDER[i], ORDER[j]) == ORDER[max(i, j)]


def test_worse_keeps_the_first_of_two_refusals():
    assert worse("unsupported: a", "unsupported: b") == "unsupported: a"


def test_merge_combines_runs_per_check_and_fills_the_unseen_with_not_checked():
    runs = [
        {"vjp": "ok", "jvp": "unsupported: no jvp"},
        {"vjp": "diverged", "jvp": "ok", "hvp": "ok"},
    ]
    merged = merge(runs)
    assert list(merged) == list(CHECK_NAMES)
    assert merged["vjp"] == "diverged"
    assert merged["jvp"] == "unsupported: no jvp"
    assert merged["hvp"] == "ok"
    assert merged["vmap"] == merged["contract"] == NOT_CHECKED


def test_merge_of_nothing_is_not_checked_everywhere():
    assert merge([]) == dict.fromkeys(CHECK_NAMES, NOT_CHECKED)


def test_capability_table_has_a_header_and_one_aligned_line_per_check():
    lines = capability_table({"vjp": "ok", "jvp": "unsupported: no jvp"}).splitlines()
    assert lines[0] == "  check     capability"
    assert lines[1:] == [
        "  vjp       ok",
        "  jvp       unsupported: no jvp",
        "  hvp       not checked",
        "  vmap      not checked",
        "  contract  not checked",
    ]
