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
from oracle.report.replay import function_source
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
    # local functions cannot be imported: their source is copied, with their imports
    assert "def loss(logits, target, scale):" in d.reproducer
    assert "import tests.specimens as sp" in d.reproducer
    assert f"for _root in [{ROOT!r}]" in d.reproducer  # found from any directory
    out = run_snippet(d.reproducer, tmp_path)
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


def test_the_reproducer_of_a_lambda_twin_carries_its_source_and_runs(tmp_path):
    # the README's first example: the twin is a lambda written in the call
    report = oracle.verify(
        sp.ScaledSecondArgument.apply,
        lambda x, y: x * y,
        [tensor("n"), tensor("n")],
        devices=["cpu"],
        dtypes=["float32"],
        seed=0,
        max_examples=10,
    )
    (d,) = report.findings
    assert "jax_fn = lambda x, y: x * y" in d.reproducer
    out = run_snippet(d.reproducer, tmp_path)
    diff = float(out.split("gradient of argument 1")[1].split("max |difference|:")[1].split()[0])
    assert diff == pytest.approx(d.max_abs_error, rel=1e-6)


def test_a_twin_that_cannot_be_rebuilt_is_said_before_it_is_called(tmp_path):
    scale = 1.0

    def closure_twin(x, y):  # a closure: neither importable nor rebuilt from its source
        return x * y * scale

    report = oracle.verify(
        sp.ScaledSecondArgument.apply,
        closure_twin,
        [tensor("n"), tensor("n")],
        devices=["cpu"],
        dtypes=["float32"],
        seed=0,
        max_examples=10,
    )
    (d,) = report.findings
    path = tmp_path / "replay.py"
    path.write_text(d.reproducer)
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode != 0 and "jax_fn is not defined" in proc.stderr, proc.stderr
    assert "NoneType" not in proc.stderr


def test_the_source_of_a_function_uses_imports_for_its_modules():
    src = function_source(lambda a: jnp.sin(a) + np.pi, "jax_fn")
    assert src is not None
    namespace: dict = {}
    exec(src, namespace)
    assert float(namespace["jax_fn"](0.0)) == pytest.approx(np.pi)
    assert "import jax.numpy as jnp" in src and "import numpy as np" in src
