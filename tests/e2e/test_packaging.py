"""Installing the package adds `oracle` and nothing else; the catalog `losses` stays
importable from the checkout's root."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.userproject import ROOT, environment


def test_the_wheel_holds_oracle_and_no_losses(tmp_path):
    pytest.importorskip("setuptools")
    # build from a copy, so the checkout gets no build/ or egg-info; the copy keeps
    # losses/ and tests/, which the package configuration must leave out
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".oracle_cache")
    for name in ("oracle", "losses", "tests"):
        shutil.copytree(f"{ROOT}/{name}", src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(f"{ROOT}/{name}", src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + [str(src), "-w", str(tmp_path / "wheel")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"oracle"}


def test_python_dash_m_oracle_finds_the_catalog_from_the_checkout_root():
    proc = subprocess.run(
        [sys.executable, "-m", "oracle", "losses", "--list"],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "matrix_power_simplified  (losses._matrix)" in proc.stdout


def test_oracle_registry_is_the_function_after_its_module_was_imported(tmp_path):
    # oracle.registry() is a function of the contract (CONTRACT.md); a submodule of the
    # same name once hid it once imported. A fresh process: this one has imported everything
    import subprocess
    import sys

    code = "import oracle; oracle.twin; oracle.registry(); print(callable(oracle.registry))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "True", proc.stderr
