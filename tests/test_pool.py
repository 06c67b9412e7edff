"""oracle.pool: ``--jobs``'s argument (``auto``: one worker per CPU, at most 8) (the runs in workers are tested end to end, in
tests/e2e/test_cli.py, test_isolate.py and test_interrupt.py)."""

from __future__ import annotations

import argparse
import os

import pytest

from oracle.pool import AUTO_JOBS_MAX, parse_jobs


def test_jobs_is_a_positive_number_or_auto():
    assert parse_jobs("3") == 3
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert parse_jobs("auto") == min(cpus, AUTO_JOBS_MAX) >= 1


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5", ""])
def test_anything_else_is_refused_with_what_was_expected(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive number of worker processes"):
        parse_jobs(text)
