"""A user's own project with two registered pairs, written into a directory, for the
end-to-end tests of the command line, the plugin and the reproducers (run in
subprocesses, as a user would, with the oracle of this checkout on PYTHONPATH)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the user's module: a clean pair, and one whose backward is wrong above 1.5, so that
#: the minimal failing example (x = [2.0]: hypothesis shrinks towards small integers)
#: is never the first example a fresh search tries (zeros). Every torch forward call
#: appends its input to $ORACLE_TEST_LOG, so a test can see which example ran first.
PAIRS = '''
import os

import jax.numpy as jnp
import torch

import oracle
from oracle import tensor


def _log(x):
    path = os.environ.get("ORACLE_TEST_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(repr(x.detach().cpu().tolist()) + "\\n")


def square_twin(x):
    return x * x


@oracle.twin(square_twin, inputs=[tensor("n", low=-3, high=3)], max_examples=30)
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


@oracle.twin(square_twin, inputs=[tensor("n", low=-3, high=3)], max_examples=60)
class SquareWrongAbove(torch.autograd.Function):
    """x**2 whose backward drops the factor 2 where x > 1.5."""

    @staticmethod
    def forward(ctx, x):
        _log(x)
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 1.5, x, 2 * x) * g
'''

TEST_FILE = """
def test_twins(oracle_pair, oracle_check):
    oracle_check(oracle_pair)
"""


def write_project(path: Path, *, conftest: bool = True) -> Path:
    """``mypairs.py``, ``test_twins.py`` and (optionally) ``conftest.py`` that imports
    ``mypairs``: the layout docs/how-to/pytest.md shows."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "mypairs.py").write_text(PAIRS)
    (path / "test_twins.py").write_text(TEST_FILE)
    if conftest:
        (path / "conftest.py").write_text("import mypairs  # noqa: F401  (registers the pairs)\n")
    return path


def environment(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: this checkout's oracle importable, no CI."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = ROOT
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment(**extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def first_logged(log: Path) -> str:
    """The input of the first torch call of the wrong pair, as logged."""
    return log.read_text().splitlines()[0]
