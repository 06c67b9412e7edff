"""The registry of checks: a check is one module with a ``CHECK`` plus one line in
``oracle.vocabulary.CHECKS``; the plan, the capability table, ``checks=`` and the command
line's ``--checks`` all take it from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

from oracle import vocabulary
from oracle.judge.checks import registered
from oracle.judge.checks.base import Check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_every_check_beyond_the_vjp_has_its_module_and_check_object():
    for name in vocabulary.EXTRA:
        check = registered(name)
        assert isinstance(check, Check) and check.name == name
    # the contract's before-rule and the vmap per-example rule are declared, not inferred
    assert registered("contract").before is not None
    assert registered("hvp").follows_vjp(object())
    assert not registered("jvp").follows_vjp(object())


#: a new check, written as the README says: one module...
_ODD = '''
from ..findings import Verdict, divergence
from .base import Check


def _run(sides, values, seed, dtype, device, *, asked, thorough):
    """An element of the first argument beyond 2.5 is "odd"."""
    if float(abs(values[0]).max()) > 2.5:
        v = Verdict("torch", "mismatch", "odd: an element beyond 2.5")
        return [divergence("odd", v, dtype=dtype, device=device)], "diverged"
    return [], "ok"


CHECK = Check("odd", run=_run)
'''

_USE = """
import jax.numpy as jnp, torch
import oracle
from oracle import tensor
from oracle.options import parse_checks

kw = dict(devices=["cpu"], seed=0, max_examples=5, dtypes=["float64"])
asked = oracle.verify(torch.sin, jnp.sin, [tensor("n", low=-3, high=3)], checks=["odd"], **kw)
print("ASKED", asked.capabilities["odd"], [d.check for d in asked.findings])
default = oracle.verify(torch.sin, jnp.sin, [tensor("n", low=-2, high=2)], **kw)
print("DEFAULT", default.capabilities["odd"], default.ok)
print("CLI", parse_checks("vjp,odd"))
"""


def test_a_new_check_is_one_module_plus_one_line(tmp_path):
    """In a copy of the package: add ``judge/checks/odd.py`` and one line to the table,
    nothing else, and the check runs when asked, in the default set, and from --checks."""
    shutil.copytree(
        os.path.join(ROOT, "oracle"),
        tmp_path / "oracle",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tmp_path / "oracle" / "judge" / "checks" / "odd.py").write_text(textwrap.dedent(_ODD))
    vocab = tmp_path / "oracle" / "vocabulary.py"
    text = vocab.read_text()
    line = '        CheckName("contract", "Results", "contract"),\n'
    assert line in text
    vocab.write_text(text.replace(line, line + '        CheckName("odd", "Odd values", "odd"),\n'))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", _USE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(ln.split(" ", 1) for ln in out.stdout.splitlines() if " " in ln)
    assert lines["ASKED"] == "diverged ['odd']"
    assert lines["DEFAULT"] == "ok True"
    assert lines["CLI"] == "('vjp', 'odd')"
