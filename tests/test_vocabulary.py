"""oracle.vocabulary: the one table of checks, diagnoses, blames and reasons, and every
place that accepts those words agreeing with it."""

from __future__ import annotations

import argparse
import pathlib
import re

import pytest

from oracle import registration
from oracle.judge.checks import registered
from oracle.judge.tolerance import default_tolerance
from oracle.options import parse_checks
from oracle.pair.bridge import DTYPES
from oracle.report.capabilities import merge
from oracle.validation import normalize_checks, normalize_dtypes
from oracle.vocabulary import (
    BLAMES,
    CHECK_NAMES,
    CHECKS,
    DIAGNOSES,
    DTYPE_NAMES,
    EXTRA,
    FINDING_CHECKS,
    REASONS,
)

ORACLE = pathlib.Path(registration.__file__).parent


def test_the_first_check_is_the_vjp_and_the_extra_ones_are_the_rest():
    assert CHECK_NAMES[0] == "vjp"
    assert EXTRA == CHECK_NAMES[1:]
    assert FINDING_CHECKS == ("forward", *CHECK_NAMES, "error")
    assert all(CHECKS[name].name == name for name in CHECK_NAMES)


@pytest.mark.parametrize("name", EXTRA)
def test_every_extra_check_is_registered_by_its_module(name):
    assert registered(name).name == name


def test_validation_accepts_every_check_and_returns_them_in_table_order():
    assert normalize_checks(list(reversed(CHECK_NAMES))) == CHECK_NAMES


def test_the_command_line_accepts_every_check_and_nothing_else():
    assert set(parse_checks(",".join(CHECK_NAMES))) == set(CHECK_NAMES)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_checks("forward")  # a finding's check, not one to ask for


def test_the_capability_table_has_a_row_per_check():
    assert list(merge([])) == list(CHECK_NAMES)


def test_every_dtype_name_is_accepted_bridged_and_has_a_tolerance():
    assert normalize_dtypes(DTYPE_NAMES) == DTYPE_NAMES
    assert tuple(DTYPES) == DTYPE_NAMES
    # the low dtypes are judged by the error budget (oracle.judge.budget), not a tolerance
    assert all(default_tolerance(d) for d in DTYPE_NAMES if d in ("float32", "float64"))


@pytest.mark.parametrize("check", FINDING_CHECKS)
def test_a_declared_finding_may_name_every_check_a_finding_can_have(check):
    assert registration.Known("why", check=check).check == (check,)


@pytest.mark.parametrize("diagnosis", list(DIAGNOSES))
def test_a_declared_finding_may_name_every_diagnosis(diagnosis):
    assert registration.Known("why", diagnosis=diagnosis).diagnosis == (diagnosis,)


def test_a_declared_finding_may_blame_every_side_but_a_kink():
    # a kink is both sides right: never the finding a specimen is declared for
    for blame in BLAMES:
        if blame == "kink":
            with pytest.raises(ValueError, match="blame='kink'"):
                registration.Known("why", blame=blame)
        else:
            assert registration.Known("why", blame=blame).blame == (blame,)


@pytest.mark.parametrize(
    "field, value",
    [("check", "gradient"), ("diagnosis", "doubled")],
)
def test_a_declared_finding_outside_the_vocabulary_is_refused(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r} is not one of"):
        registration.Known("why", **{field: value})


def test_every_reason_code_the_library_writes_is_in_the_vocabulary():
    # code branches on these codes: one written but not declared is a typo waiting
    used = set()
    for path in ORACLE.rglob("*.py"):
        used |= set(re.findall(r'\breason="([a-z_]+)"', path.read_text()))
    assert used  # the scan itself found the codes
    assert used <= set(REASONS)
