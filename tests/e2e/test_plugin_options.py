"""The plugin refuses bad option values once, as a usage error, as the command line does."""

from __future__ import annotations

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(
            "--oracle-max-examples=0", "--oracle-max-examples=0 must be at least 1", id="zero"
        ),
        pytest.param(
            "--oracle-seed=-1", "--oracle-seed=-1 must be non-negative", id="negative-seed"
        ),
    ],
)
def test_a_bad_option_value_is_a_usage_error_not_a_traceback_per_test(
    pytester, monkeypatch, option, message
):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(
        test_twins="def test_twins(oracle_pair, oracle_check):\n    oracle_check(oracle_pair)\n"
    )
    # before: every test failed with "ValueError: max_examples=0 must be at least 1"
    result = pytester.runpytest_inprocess(
        "--oracle-modules=tests.pairs_good", option, "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
