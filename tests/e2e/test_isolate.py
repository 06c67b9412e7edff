"""``--isolate``: each pair in a worker process, so that user code that kills the process
is a finding for that pair and the run goes on."""

from __future__ import annotations

import io
import json
import os
import time

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import oracle
from oracle import tensor
from oracle.cli import main
from oracle.isolate import HANG_MARGIN, Isolated, death_message, report_from_dict, report_to_dict
from tests.e2e import pairs_native_hang  # noqa: F401  (registers e2e_native_hang)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # worker processes: each imports torch and JAX
@pytest.mark.parametrize(
    "workers", [pytest.param(["--isolate"], id="isolate"), pytest.param(["--jobs", "2"], id="jobs")]
)
def test_a_run_with_pairs_that_exit_and_segfault_reports_both_and_checks_the_right_one(
    tmp_path, workers
):
    out, err = io.StringIO(), io.StringIO()
    argv = ["tests.e2e.pairs_crash", *workers, "--seed", "0", "--device", "cpu"]
    argv += ["--dtype", "float64", "--max-examples", "5", "--json", str(tmp_path / "out.json")]
    code = main(argv, stdout=out, stderr=err)
    text = out.getvalue()
    assert code == 1, text + err.getvalue()  # pairs were not checked: never a success
    rows = {r.split()[0]: r.split()[3] for r in text.splitlines() if r.startswith("e2e_")}
    assert rows == {
        "e2e_exits": "diverged",  # sys.exit(0): caught in the worker, an error finding
        "e2e_os_exit": "crashed",
        "e2e_segfault": "crashed",
        "e2e_right": "clean",  # checked after the two deaths, in a fresh worker
    }
    assert "the process exited with status 7" in text
    assert "while the PyTorch side ran its backward (float64, cpu), example 1" in text
    assert "the process died with SIGSEGV" in text
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["ok"] is False
    assert data["reports"]["e2e_segfault"]["crashed"] == [["float64", "cpu"]]
    [crash] = data["reports"]["e2e_segfault"]["divergences"]
    assert (crash["check"], crash["blame"], crash["diagnosis"]) == ("error", "torch", "error")


@pytest.mark.parametrize(
    ("returncode", "words"),
    [
        pytest.param(-11, "died with SIGSEGV", id="segfault"),
        pytest.param(-9, "died with SIGKILL (the out-of-memory killer sends it", id="oom"),
        pytest.param(7, "exited with status 7", id="exit"),
    ],
)
def test_death_message_names_the_signal_or_the_status(returncode, words):
    assert death_message(returncode).startswith(words)


class ScaledSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * torch.cos(x)


def test_a_report_crosses_the_process_boundary_with_its_message_intact():
    report = oracle.verify(
        ScaledSin.apply, jnp.sin, [tensor("n")], seed=0, max_examples=10, checks=["vjp"]
    )
    back = report_from_dict(json.loads(json.dumps(report_to_dict(report))))
    assert not report.ok and str(back) == str(report)
    assert back.findings[0].reproducer == report.findings[0].reproducer
    np.testing.assert_array_equal(
        back.findings[0].example["args"][0], report.findings[0].example["args"][0]
    )


@pytest.mark.slow  # worker processes: each imports torch and JAX
def test_the_plugin_fails_the_test_of_a_pair_that_kills_the_process_and_runs_the_others(
    pytester, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(
        test_twins="def test_twins(oracle_pair, oracle_check):\n    oracle_check(oracle_pair)\n"
    )
    result = pytester.runpytest_subprocess(
        "--oracle-modules=tests.e2e.pairs_crash",
        "--oracle-isolate",
        "--oracle-device=cpu",
        "--oracle-dtype=float64",
        "--oracle-seed=0",
        "--oracle-max-examples=5",
        "-k",
        "os_exit or right",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*e2e_os_exit (float64, cpu): crashed: the process exited with status 7*",
            "*1 failed, 1 passed*",
        ]
    )


@pytest.mark.slow  # worker processes: each imports torch and JAX
def test_a_worker_hung_where_the_time_limit_cannot_reach_is_killed_and_reported():
    pair = oracle.registry()["e2e_native_hang"]
    start = time.perf_counter()
    with Isolated() as isolated:
        report = isolated.verify(
            pair, seed=0, dtypes=["float64"], devices=["cpu"], timeout=2.0, checks=["vjp"]
        )
        [row] = isolated.outcomes(pair, report)
    took = time.perf_counter() - start
    assert (row.outcome, row.expected) == ("crashed", False)
    [finding] = report.findings
    assert finding.blame == "torch"
    assert "hung: sent no word for 9 s" in finding.detail
    assert "while the PyTorch side ran its backward" in finding.detail
    assert took < 60 + HANG_MARGIN  # the worker's start, then 2 x 2 + 5 s of silence


def test_progress_tells_the_enclosing_call_again_when_an_inner_one_returns():
    from oracle.pair import progress

    notes = []
    progress.set_sink(notes.append)
    try:
        progress.call("torch", "contract checks")
        progress.call("twin", "forward")
        progress.done()  # back in the contract checks, which call torch directly
        assert notes[-1] == {"side": "torch", "stage": "contract checks"}
        progress.done()
        assert notes[-1] == {"side": None, "stage": None}
    finally:
        progress.set_sink(None)
