"""Reproducers replay the shrunk example on their own; plots draw the three curves."""

from __future__ import annotations

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import oracle
from oracle import integers, tensor
from oracle.pictures import line_data
from tests import specimens as sp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_snippet(code, tmp_path):
    path = tmp_path / "replay.py"
    path.write_text(code)
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_reproducer_replays_the_divergence_in_a_subprocess(tmp_path):
    report = oracle.verify(
        sp.ScaledSecondArgument.apply,
        sp.product_twin,
        [tensor("n"), tensor("n")],
        devices=["cpu"],
        dtypes=["float32"],
        seed=0,
    )
    (d,) = report.findings
    out = run_snippet(d.reproducer, tmp_path)
    # argument 0 agrees, argument 1 is off by exactly the reference (2x - 1x)
    a0, a1 = out.split("gradient of argument 1")
    assert "max |difference|: 0.0" in a0
    diff = float(a1.split("max |difference|:")[1].split()[0])
    assert diff == pytest.approx(d.max_abs_error, rel=1e-6)
    assert "import pickle" not in d.reproducer and "allow_pickle=False" in d.reproducer


def test_a_reproducer_rebuilds_the_example_bit_for_bit(tmp_path):
    report = oracle.verify(
        sp.ScaledExp.apply,
        jnp.exp,
        [tensor("n", low=-3, high=3)],
        devices=["cpu"],
        dtypes=["float64"],
        seed=3,
    )
    (d,) = report.findings
    code = d.reproducer + "\nprint('ARG', ARGS[0].tobytes().hex())\n"
    out = run_snippet(code, tmp_path)
    assert out.split("ARG ")[1].strip() == d.example["args"][0].tobytes().hex()


def test_a_reproducer_of_a_registered_pair_looks_it_up_in_the_registry(tmp_path):
    import tests.pairs_good  # noqa: F401

    report = oracle.registry()["cli_scaled_exp"].verify(devices=["cpu"], dtypes=["float64"], seed=0)
    (d,) = report.findings
    assert 'oracle.registry()["cli_scaled_exp"]' in d.reproducer.replace("'", '"')
    out = run_snippet(d.reproducer, tmp_path)
    assert "gradient of argument 0" in out


def test_a_reproducer_with_integer_inputs_and_constants_runs(tmp_path):
    def loss(logits, target, scale):
        return sp.cross_entropy(logits, target) * scale * 2  # wrong: twin has no 2

    def twin(logits, target, scale):
        return sp.cross_entropy_twin(logits, target) * scale

    report = oracle.verify(
        loss,
        twin,
        [tensor("b c"), integers("b", low=0, high="c"), 1.5],
        dims={"c": (2, 4)},
        devices=["cpu"],
        dtypes=["float64"],
        seed=0,
    )
    d = report.findings[0]
    assert "torch_fn = None" in d.reproducer  # local functions cannot be imported...
    code = d.reproducer.replace("torch_fn = None", "torch_fn = loss").replace(
        "jax_fn = None", "jax_fn = twin"
    )
    code = (
        "import tests.specimens as sp\n"
        "def loss(l, t, s):\n    return sp.cross_entropy(l, t) * s * 2\n"
        "def twin(l, t, s):\n    return sp.cross_entropy_twin(l, t) * s\n"
    ) + code
    out = run_snippet(code, tmp_path)  # ...and once defined, the snippet replays it
    assert "output 0: max |torch - twin|" in out


def test_plot_data_shows_torch_at_twice_the_twin_and_fd_on_the_twin(tmp_path):
    report = oracle.verify(
        sp.ScaledExp.apply,
        jnp.exp,
        [tensor("n", low=-3, high=3)],
        devices=["cpu"],
        dtypes=["float64"],
        seed=0,
    )
    data = line_data(report.findings[0], points=9)
    np.testing.assert_allclose(data["torch"], 2 * data["twin"], rtol=1e-9)
    np.testing.assert_allclose(data["fd"], data["twin"], rtol=1e-6)
    pytest.importorskip("matplotlib")
    path = oracle.plot(report, str(tmp_path / "scaled.png"))
    assert open(path, "rb").read()[:4] == b"\x89PNG"
