"""The pytest plugin end to end, with pytester."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEST_FILE = """
def test_twins(oracle_pair, oracle_check):
    oracle_check(oracle_pair)
"""


@pytest.fixture
def pyt(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_twins=TEST_FILE)
    return pytester


def test_registered_pairs_become_passing_tests_and_cuda_is_skipped_with_a_reason(pyt):
    result = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_good",
        "--oracle-dtype=float64",
        "--oracle-seed=5",
        "-rs",
        "-p",
        "no:cacheprovider",
    )
    # two pairs on cpu pass (a clean one, and a specimen flagged as declared); cuda skips
    from oracle.bridge import available_devices

    if "cuda" in available_devices():
        result.assert_outcomes(passed=4)
    else:
        result.assert_outcomes(passed=2, skipped=2)
        result.stdout.fnmatch_lines(["*cuda: no GPU visible to both torch and JAX*"])
    result.stdout.fnmatch_lines(["oracle: --oracle-seed=5 *"])


def test_unexpected_outcomes_become_failing_tests_with_the_report(pyt):
    result = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_bad",
        "--oracle-dtype=float64",
        "--oracle-device=cpu",
        "--oracle-seed=0",
        "--oracle-max-examples=40",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*cli_flipped_sin (float64, cpu): diverged*",
            "*cli_not_actually_wrong (float64, cpu): missed*",
        ]
    )


def test_the_seed_is_random_and_printed_unless_given(pyt):
    result = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_good", "--collect-only", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        ["oracle: --oracle-seed=* (devices cpu, cuda; dtypes float32, float64)"]
    )
    result.stdout.fnmatch_lines(["*test_twins?cli_good_sin-float32-cpu?*"])
    seed = int(result.stdout.str().split("--oracle-seed=")[1].split()[0])
    again = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_good", "--collect-only", "-p", "no:cacheprovider"
    )
    assert f"--oracle-seed={seed} " not in again.stdout.str()  # a fresh seed each run


def test_a_test_asking_for_oracle_pair_without_modules_is_a_usage_error(pyt):
    result = pyt.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "oracle_pair fixture needs modules" in result.stdout.str() + result.stderr.str()


def test_loading_the_plugin_imports_neither_torch_nor_jax():
    code = "import oracle.pytest_plugin, sys; print('torch' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.stdout.split() == ["False", "False"], out.stderr
