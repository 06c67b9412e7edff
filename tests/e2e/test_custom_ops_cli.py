"""A torch.library custom op registered with @oracle.twin and checked from the command
line, values and registration in one call (``--checks vjp,opcheck``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_MODULE = """
import jax.numpy as jnp
import torch

import oracle
from oracle import tensor


def _op(name, fake_bug=False):
    @torch.library.custom_op(f"cli_ops::{name}", mutates_args=())
    def op(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @op.register_fake
    def _(x):
        return x.new_empty((x.shape[0] + 1,)) if fake_bug else torch.empty_like(x)

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    op.register_autograd(lambda ctx, g: g * torch.cos(ctx.saved_tensors[0]), setup_context=setup_context)
    return op


oracle.twin(jnp.sin, inputs=[tensor("n", low=-2, high=2)], dims={"n": (1, 3)}, name="op_right")(
    _op("right")
)
oracle.twin(
    jnp.sin,
    inputs=[tensor("n", low=-2, high=2)],
    dims={"n": (1, 3)},
    name="op_wrong_fake",
    known_divergence=oracle.Known("the fake kernel returns one element too many", check="contract"),
)(_op("wrong", fake_bug=True))
"""


def test_the_command_line_checks_a_custom_op_s_values_and_registration(tmp_path):
    (tmp_path / "myops.py").write_text(textwrap.dedent(_MODULE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT])}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "oracle",
            "myops",
            "--checks",
            "vjp,opcheck",
            "--dtype",
            "float64",
            "--max-examples",
            "4",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    rows = {ln.split()[0]: ln for ln in out.stdout.splitlines() if ln.startswith("op_")}
    assert "clean" in rows["op_right"] and "opcheck=ok" in rows["op_right"]
    assert "flagged" in rows["op_wrong_fake"] or "DIVERGED" in rows["op_wrong_fake"], rows
    assert "opcheck=X" in rows["op_wrong_fake"]
