"""A user's own project end to end, in subprocesses as a user would run it: the plugin
(pairs imported by the conftest), the command line, the example database across seeds,
reproducers that run from any directory, the seed in the output, the compile cache.

The project (tests/userproject.py) has a clean pair and one whose backward is wrong
above 1.5; hypothesis shrinks that failure to x = [2.0], while a fresh search starts
at zeros, so the first logged example tells a replay from a new search.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.userproject import first_logged, run, write_project

PLUGIN = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--oracle-dtype=float64"]
PLUGIN += ["--oracle-device=cpu", "--oracle-reproducers=repro"]
CLI = ["-m", "oracle", "mypairs", "--dtype", "float64", "--device", "cpu"]
CLI += ["--reproducers", "repro"]
REPRODUCER = "square_wrong_above-float64-cpu-vjp-arg0.py"


@pytest.fixture(scope="module")
def plugin_runs(tmp_path_factory):
    """pytest in the project, with seed 1, then seed 2: (project, [(proc, log), ...])."""
    project = write_project(tmp_path_factory.mktemp("plugin") / "project")
    runs = []
    for seed in (1, 2):
        log = project / f"log{seed}.txt"
        proc = run([*PLUGIN, f"--oracle-seed={seed}"], project, ORACLE_TEST_LOG=str(log))
        runs.append((proc, log))
    return project, runs


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """python -m oracle in the project, with seed 1, then seed 2."""
    project = write_project(tmp_path_factory.mktemp("cli") / "project", conftest=False)
    runs = []
    for seed in (1, 2):
        log = project / f"log{seed}.txt"
        args = [*CLI, "--seed", str(seed), "--json", f"out{seed}.json"]
        runs.append((run(args, project, ORACLE_TEST_LOG=str(log)), log))
    return project, runs


def test_the_plugin_checks_the_pairs_that_the_users_conftest_imports(plugin_runs):
    _, [(proc, _), _] = plugin_runs
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "FAILED test_twins.py::test_twins[square_wrong_above-float64-cpu]" in proc.stdout


def test_a_plugin_failure_names_its_seed_and_the_command_that_replays_it(plugin_runs):
    _, [(proc, _), _] = plugin_runs
    out = proc.stdout
    assert (
        "replay: pytest --oracle-seed=1 'test_twins.py::test_twins[square_wrong_above-float64-cpu]'"
        in out
    )
    assert "Seed: 1" in out and "(seed 1)" in out  # the finding and the report


def test_pytest_q_prints_the_seed_in_its_summary(plugin_runs):
    _, [(proc, _), _] = plugin_runs
    # -q has no header: the summary line is where the seed shows
    assert "oracle: --oracle-seed=1 (pass it to replay these searches)" in proc.stdout


def test_the_plugin_tries_a_past_failure_first_under_another_seed(plugin_runs):
    _, [(first, log1), (second, log2)] = plugin_runs
    assert "Example (shrunk): dims n=1; arg 0: float64[1] [2]" in first.stdout
    assert first_logged(log1) != "[2.0]"  # a fresh search does not start there...
    assert first_logged(log2) == "[2.0]"  # ...the next run, with seed 2, does
    assert "1 failed, 1 passed" in second.stdout


def test_the_plugin_writes_a_reproducer_that_runs_from_any_directory(plugin_runs, tmp_path):
    project, [(proc, _), _] = plugin_runs
    assert os.listdir(project / "repro") == [REPRODUCER]
    assert f"reproducer: {project / 'repro' / REPRODUCER}" in proc.stdout
    replay = run([str(project / "repro" / REPRODUCER)], tmp_path)  # cwd elsewhere
    assert replay.returncode == 0, replay.stderr
    # torch's gradient at x = 2 is half the twin's (the dropped factor 2)
    torch_grad = float(replay.stdout.split("torch:")[1].split("[")[1].split("]")[0])
    twin_grad = float(replay.stdout.split("twin:")[1].split("[")[1].split("]")[0])
    assert torch_grad == pytest.approx(twin_grad / 2, rel=1e-7)  # printed to 8 digits


def test_the_plugin_keeps_compiled_twins_under_the_rootdir(plugin_runs):
    project, _ = plugin_runs
    assert os.listdir(project / ".oracle_cache" / "jax")  # JAX's persistent cache entries


def test_the_command_line_tries_a_past_failure_first_under_another_seed(cli_runs):
    project, [(first, log1), (second, log2)] = cli_runs
    assert first.returncode == 1 and second.returncode == 1, first.stderr
    found = json.loads((project / "out1.json").read_text())["reports"]["square_wrong_above"]
    assert found["divergences"][0]["example"]["args"][0]["values"] == [2.0]
    assert first_logged(log1) != "[2.0]" and first_logged(log2) == "[2.0]"


def test_a_command_line_failure_names_its_seed(cli_runs):
    _, [(proc, _), _] = cli_runs
    assert "Seed: 1" in proc.stdout and "(seed 1)" in proc.stdout
    assert "pass --seed 1 to replay" in proc.stderr


def test_the_command_line_writes_one_reproducer_per_finding(cli_runs):
    project, [(proc, _), _] = cli_runs
    assert os.listdir(project / "repro") == [REPRODUCER]  # the clean pair has none
    assert f"reproducer: repro/{REPRODUCER}" in proc.stdout
    # written by the same code as the plugin's, which the test above runs from elsewhere


def test_a_reproducer_whose_module_is_gone_says_what_to_do(cli_runs, tmp_path):
    project, _ = cli_runs
    # the project moved away: the directory the reproducer recorded no longer holds it
    code = (project / "repro" / REPRODUCER).read_text().replace(str(project), str(tmp_path))
    (tmp_path / "replay.py").write_text(code)
    replay = run([str(tmp_path / "replay.py")], tmp_path)
    assert replay.returncode == 1
    assert "Traceback" not in replay.stderr
    assert replay.stderr.startswith("cannot import mypairs (No module named 'mypairs')")
    assert "put the directory that now holds mypairs on PYTHONPATH" in replay.stderr
