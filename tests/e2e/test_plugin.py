"""The pytest plugin end to end, with pytester."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# imported here, not inside a test: pytester drops the modules a test imported, and
# torch cannot be imported twice in one process
from oracle.pair.bridge import available_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def test_the_header_prints_a_random_seed_unless_given_and_the_devices_present(pyt):
    result = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_good", "--collect-only", "-p", "no:cacheprovider"
    )
    # only the devices present: no cuda without a GPU
    devices = ", ".join(available_devices())
    result.stdout.fnmatch_lines(
        [f"oracle: --oracle-seed=* (devices {devices}; dtypes float32, float64)"]
    )
    result.stdout.fnmatch_lines(["*test_twins?cli_good_sin-float32-cpu?*"])
    seed = int(result.stdout.str().split("--oracle-seed=")[1].split()[0])
    again = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_good", "--collect-only", "-p", "no:cacheprovider"
    )
    assert f"--oracle-seed={seed} " not in again.stdout.str()  # a fresh seed each run


def _collection_error(result):
    """The lines pytest prints for the collection error of test_twins.py."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "ERROR collecting test_twins.py" in line)
    end = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    return [line for line in lines[start + 1 : end] if line.strip()]


def test_without_registered_pairs_collection_says_in_one_line_what_to_add(pyt):
    # nothing registered: no conftest import, no oracle_modules
    result = pyt.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    assert _collection_error(result) == [
        "oracle: the oracle_pair fixture found no registered pairs by the modules imported "
        "so far: import the module that registers your pairs in conftest.py (`import "
        "mypairs`), or set `oracle_modules = mypairs` in the [pytest] ini, or pass "
        "--oracle-modules=mypairs"
    ]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_module_in_oracle_modules_that_cannot_be_imported_is_one_line(pyt):
    result = pyt.runpytest_subprocess("--oracle-modules=no_such_pairs", "-p", "no:cacheprovider")
    assert _collection_error(result) == [
        "oracle: cannot import no_such_pairs for the oracle_pair fixture (oracle_modules: "
        "no_such_pairs): No module named 'no_such_pairs'"
    ]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


XDIST_SEEDS = """
import os


def test_records_its_seed(oracle_options, i):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    with open(os.path.join(os.environ["SEED_LOG"], f"{worker}-{i}"), "w") as fh:
        fh.write(str(oracle_options["seed"]))
"""


def test_under_xdist_every_worker_uses_the_controllers_seed(pyt, tmp_path):
    pytest.importorskip("xdist")
    pyt.makepyfile(test_twins="", test_seeds=XDIST_SEEDS)
    pyt.makeconftest(
        "import pytest\n\n@pytest.fixture(params=range(6))\ndef i(request):\n"
        "    return request.param\n"
    )
    os.environ["SEED_LOG"] = str(tmp_path)
    try:
        result = pyt.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "test_seeds.py")
    finally:
        del os.environ["SEED_LOG"]
    result.assert_outcomes(passed=6)
    # the seed is random (no --oracle-seed): the controller's header names it
    header = [line for line in result.outlines if line.startswith("oracle: --oracle-seed=")]
    seed = header[0].split("=")[1].split()[0]
    files = os.listdir(tmp_path)
    assert {f.split("-")[0] for f in files} == {"gw0", "gw1"}  # both workers ran tests
    assert {(tmp_path / f).read_text() for f in files} == {seed}
    result.stdout.fnmatch_lines(
        [f"oracle: --oracle-seed={seed} (pass it to replay these searches)"]
    )


CONTROLLER_IMPORTS = """
import os
import sys


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the xdist controller
        with open(os.environ["IMPORT_LOG"], "w") as fh:
            fh.write(" ".join(m for m in ("torch", "jax", "oracle.pair.bridge") if m in sys.modules))
"""


def test_under_xdist_with_the_ini_layout_the_controller_never_imports_torch_or_jax(pyt, tmp_path):
    """The pairs named in the ini are imported where tests are collected, and a CPU
    build of torch tells the header's devices without an import: the controller, which
    runs no test, is spared the seconds of importing torch and JAX (-n 2 pays sooner)."""
    pytest.importorskip("xdist")
    from oracle.options import torch_built_for_gpu

    pyt.makeini("[pytest]\noracle_modules = tests.pairs_good\n")
    pyt.makeconftest(CONTROLLER_IMPORTS)
    log = tmp_path / "imports"
    os.environ["IMPORT_LOG"] = str(log)
    try:
        result = pyt.runpytest_subprocess(
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "--oracle-dtype=float64",
            "--oracle-max-examples=10",
            "--oracle-seed=2",
            "-rs",
        )
    finally:
        del os.environ["IMPORT_LOG"]
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 2 and "failed" not in outcomes
    # torch's deprecation warnings from loading its forward-mode decompositions (the
    # jvp check) are silenced where the oracle triggers them: none reach the summary
    assert "warnings" not in outcomes, result.outlines[-1]
    devices = ", ".join(available_devices())
    result.stdout.fnmatch_lines([f"oracle: --oracle-seed=2 (devices {devices}; dtypes float64)"])
    if torch_built_for_gpu() is False:
        assert log.read_text() == ""  # neither torch, nor JAX, nor the oracle's bridge
    else:  # a GPU build: the header imports both to tell whether they see the GPU
        assert "torch" in log.read_text()


def test_torch_built_for_gpu_reads_the_build_without_importing_torch():
    code = (
        "import sys; from oracle.options import torch_built_for_gpu as t; b = t(); "
        "before = 'torch' in sys.modules; import torch; "
        "print(b, before, torch.version.cuda is not None or torch.version.hip is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    built, imported, truth = out.stdout.split()
    assert imported == "False"  # told without importing torch
    assert built == truth  # and it agrees with torch's own version module


CACHE_DIR = """
import jax

import oracle.registration  # noqa: F401  (a session that uses the oracle; torch not needed)


def test_prints_the_cache_dir():
    print("CACHE DIR", jax.config.jax_compilation_cache_dir)
"""


def test_the_compile_cache_can_be_turned_off_in_the_ini(pyt):
    # on by default: tests/e2e/test_user_project.py finds the entries under the rootdir
    pyt.makepyfile(test_twins="", test_cache=CACHE_DIR)
    pyt.makeini("[pytest]\noracle_compile_cache = false\n")
    result = pyt.runpytest_subprocess("-s", "-p", "no:cacheprovider", "test_cache.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*CACHE DIR None*"])


class _Config:
    """The parts of a pytest config that compile_cache_dir reads."""

    def __init__(self, option=False, ini=True):
        self.rootpath = "/project"
        self._option, self._ini = option, ini

    def getoption(self, name):
        assert name == "--oracle-no-compile-cache"
        return self._option

    def getini(self, name):
        assert name == "oracle_compile_cache"
        return self._ini


@pytest.mark.parametrize(
    ("config", "env", "expected"),
    [
        pytest.param(_Config(), None, "/project/.oracle_cache/jax", id="default"),
        pytest.param(_Config(option=True), None, None, id="option-off"),
        pytest.param(_Config(ini=False), None, None, id="ini-off"),
        pytest.param(_Config(), "/elsewhere", "/elsewhere", id="moved"),
    ],
)
def test_the_compile_cache_is_under_the_rootdir_unless_moved_or_off(
    monkeypatch, config, env, expected
):
    from oracle.pytest_plugin import compile_cache_dir

    if env is None:
        monkeypatch.delenv("ORACLE_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("ORACLE_CACHE_DIR", env)
    assert compile_cache_dir(config) == expected


def test_a_compile_cache_directory_the_user_chose_is_kept():
    import jax

    from oracle.options import enable_compile_cache

    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", "/tmp/users-own")  # JAX_COMPILATION_CACHE_DIR
    try:
        assert enable_compile_cache("/tmp/oracle-would-use") == "/tmp/users-own"
        assert jax.config.jax_compilation_cache_dir == "/tmp/users-own"
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_a_verify_call_alone_leaves_the_compile_cache_setting_alone():
    import jax
    import jax.numpy as jnp

    import oracle
    from tests import specimens as sp

    before = jax.config.jax_compilation_cache_dir
    oracle.verify(sp.GoodSin.apply, jnp.sin, [oracle.tensor("n")], devices="cpu", max_examples=3)
    assert jax.config.jax_compilation_cache_dir == before


def test_loading_the_plugin_imports_neither_torch_nor_jax():
    code = "import oracle.pytest_plugin, sys; print('torch' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_oracle_timeout_turns_a_hanging_backward_into_a_failure_with_the_reason(pyt):
    result = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_hang",
        "--oracle-device=cpu",
        "--oracle-dtype=float32",
        "--oracle-seed=0",
        "--oracle-timeout=0.5",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out in its backward*"])


def test_oracle_checks_reach_verify_an_asked_transform_torch_refuses_is_a_failure(pyt):
    # cli_good_sin is an old-style Function without a jvp staticmethod: forward mode is
    # refused, which is a finding only when asked for
    result = pyt.runpytest_subprocess(
        "--oracle-modules=tests.pairs_good",
        "--oracle-device=cpu",
        "--oracle-dtype=float64",
        "--oracle-seed=0",
        "--oracle-checks=vjp,jvp",
        "-k",
        "cli_good_sin",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*jvp was asked for, and torch refuses it*"])
