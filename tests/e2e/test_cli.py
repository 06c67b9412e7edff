"""python -m oracle: the table, the exit codes 0/1/2, JSON and plots."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from oracle.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_exits_0_when_every_outcome_is_as_expected_and_prints_a_row_per_pair_dtype_device(tmp_path):
    path = tmp_path / "out.json"
    code, out, err = run("tests.pairs_good", "--seed", "0", "--json", str(path), "--device", "cpu")
    assert code == 0, out + err
    rows = [line.split() for line in out.splitlines() if line.startswith("cli_")]
    assert sorted((r[0], r[1], r[3]) for r in rows) == [
        ("cli_good_sin", "float32", "clean"),
        ("cli_good_sin", "float64", "clean"),
        ("cli_scaled_exp", "float32", "flagged"),
        ("cli_scaled_exp", "float64", "flagged"),
    ]
    data = json.loads(path.read_text())
    assert data["ok"] is True and data["seed"] == 0
    assert {r["name"] for r in data["rows"]} == {"cli_good_sin", "cli_scaled_exp"}
    assert data["reports"]["cli_scaled_exp"]["divergences"][0]["diagnosis"] == "scaled"
    assert "[2/2] cli_scaled_exp" in err  # the progress display


def test_exits_1_on_an_unexpected_divergence_or_a_missed_specimen():
    code, out, _ = run("tests.pairs_bad", "--seed", "0", "--dtype", "float64", "--device", "cpu")
    assert code == 1
    outcomes = {
        line.split()[0]: line.split()[3] for line in out.splitlines() if line.startswith("cli_")
    }
    assert outcomes == {"cli_flipped_sin": "diverged", "cli_not_actually_wrong": "missed"}
    assert "sign_flipped" in out  # the unexpected report is printed below the table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["no_such_module_xyz"], "cannot import module 'no_such_module_xyz'", id="bad-module"
        ),
        pytest.param(
            ["tests.pairs_good", "--max-examples", "0"],
            "--max-examples=0 must be at least 1",
            id="zero-examples",
        ),
        pytest.param(
            ["tests.pairs_good", "-k", "nothing_matches"], "no registered pairs", id="no-pairs"
        ),
        pytest.param(["tests.pairs_good", "--dtype", "float8"], "", id="bad-dtype"),
    ],
)
def test_exits_2_on_usage_errors(argv, message):
    code, _, err = run(*argv)
    assert code == 2
    assert message in err


@pytest.mark.slow  # two worker processes: each imports torch and JAX
def test_jobs_checks_pairs_in_worker_processes_and_prints_the_same_table_in_order(tmp_path):
    argv = ["tests.pairs_good", "tests.pairs_bad", "--seed", "3", "--device", "cpu"]
    argv += ["--max-examples", "20", "--no-compile-cache"]
    code_1, out_1, _ = run(*argv)
    code_2, out_2, err_2 = run(*argv, "--jobs", "2", "--json", str(tmp_path / "out.json"))
    table = (
        lambda out: [  # noqa: E731  (the rows, without the time the run took)
            line.split()[:7] for line in out.splitlines() if line.startswith("cli_")
        ]
    )
    assert code_2 == code_1 == 1  # pairs_bad holds a missed specimen
    assert table(out_2) == table(out_1) and len(table(out_1)) == 8
    assert "oracle: 2 worker processes" in err_2
    assert err_2.count("/4] cli_") == 4  # each pair's line as it ends, in any order
    data = json.loads((tmp_path / "out.json").read_text())
    assert list(data["reports"]) == [
        "cli_good_sin",
        "cli_scaled_exp",
        "cli_flipped_sin",
        "cli_not_actually_wrong",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--jobs", "0"],
            "argument -j/--jobs: '0': expected a positive number of worker processes, or auto",
            id="zero-jobs",
        ),
        pytest.param(
            ["--checks", "vjp,nope"],
            "argument --checks: 'vjp,nope': expected a comma-separated list of vjp, jvp, hvp, "
            "vmap, contract, opcheck, compile (unknown: nope)",
            id="unknown-check",
        ),
        pytest.param(
            ["--timeout", "0"],
            "argument --timeout: '0': expected a positive number of seconds",
            id="zero-timeout",
        ),
    ],
)
def test_bad_checks_or_timeout_values_are_usage_errors(argv, message, capsys):
    code, _, _ = run("tests.pairs_good", *argv)
    assert code == 2
    assert message in capsys.readouterr().err  # argparse's own message


def test_asking_for_cuda_without_a_gpu_exits_2_with_the_reason():
    from oracle.pair.bridge import available_devices

    if "cuda" in available_devices():
        pytest.skip("a GPU is present")
    code, _, err = run("tests.pairs_good", "--device", "cuda")
    assert code == 2
    # in the command line's words, not verify's (devices=None)
    assert "--device cuda was asked for, but torch sees no GPU; leave out --device" in err
    assert "devices=" not in err


def test_python_dash_m_oracle_runs_as_a_program():
    proc = subprocess.run(
        [sys.executable, "-m", "oracle", "tests.pairs_good", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cli_good_sin" in proc.stdout and "cli_scaled_exp" in proc.stdout


def test_plot_option_writes_a_png_per_gradient_divergence(tmp_path):
    pytest.importorskip("matplotlib")
    code, out, _ = run(
        "tests.pairs_good",
        "--seed",
        "0",
        "--dtype",
        "float64",
        "--device",
        "cpu",
        "--plot",
        str(tmp_path),
    )
    assert code == 0
    png = tmp_path / "cli_scaled_exp-float64-cpu.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeout_stops_a_hanging_backward_as_an_error_finding_and_the_run_goes_on():
    code, out, err = run("tests.pairs_hang", "--seed", "0", "--device", "cpu", "--timeout", "0.5")
    assert code == 1, out + err
    rows = [line.split() for line in out.splitlines() if line.startswith("cli_hanging_sin")]
    assert [(r[1], r[3]) for r in rows] == [("float32", "diverged"), ("float64", "diverged")]
    assert "timed out in its backward" in out
