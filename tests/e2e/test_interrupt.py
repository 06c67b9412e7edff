"""Ctrl-C stops a run at once, with the partial report of what was checked until then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import pytest
import torch

import oracle
from oracle import tensor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = {"seed": 0, "max_examples": 30, "devices": ("cpu",), "checks": ["vjp"]}


def _interrupting(at: int | None, *, scale: float = 1.0, when=lambda: True):
    """A sin Function whose forward raises KeyboardInterrupt on its ``at``-th call for
    which ``when()`` holds (as Ctrl-C would, arriving then); backward times ``scale``."""
    calls = {"n": 0, "fired": 0, "seen": []}

    class Sin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            if when():
                calls["n"] += 1
                calls["seen"].append(calls["n"])
                if calls["n"] == at:
                    calls["fired"] += 1
                    raise KeyboardInterrupt
            ctx.save_for_backward(x)
            return torch.sin(x) + (1.0 if x.numel() >= 3 and scale != 1.0 else 0.0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return scale * g * torch.cos(x)

    return Sin, calls


def test_an_interrupt_stops_verify_with_the_partial_report_marked_interrupted():
    fn, calls = _interrupting(at=20)
    with pytest.raises(oracle.Interrupted) as info:
        oracle.verify(fn.apply, jnp.sin, [tensor("n")], dtypes=("float32", "float64"), **QUICK)
    report = info.value.report
    assert calls["fired"] == 1 and calls["n"] == 20  # stopped at once: no call after it
    assert report.interrupted and not report.ok
    assert [(r.dtype, r.interrupted) for r in report.runs] == [
        ("float32", True)
    ]  # float64 never ran
    assert 0 < report.runs[0].examples < 30
    assert "INTERRUPTED (Ctrl-C)" in str(report) and "INTERRUPTED" in str(info.value)
    assert report.to_dict()["interrupted"] is True


def test_an_interrupt_keeps_the_findings_made_before_it():
    fn, _ = _interrupting(at=500, scale=2.0)
    with pytest.raises(oracle.Interrupted) as info:
        oracle.verify(fn.apply, jnp.sin, [tensor("n")], dtypes=("float64",), **QUICK)
    assert {d.check for d in info.value.report.findings} <= {"forward", "vjp"}
    assert (
        info.value.report.findings
    )  # found on the first examples, long before call 500 (of about 1000)


def _in_final_replay() -> bool:
    """Whether hypothesis is replaying a minimal failing example (its last step)."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "execute_once" and frame.f_locals.get("is_final"):
            return True
        frame = frame.f_back
    return False


def test_an_interrupt_while_hypothesis_replays_two_failures_is_not_swallowed():
    # two distinct failures (a wrong forward for n >= 3, a gradient twice too large),
    # replayed one after the other at the end; an interrupt in the last replay was put
    # in hypothesis's group of failures and taken for a finding: the run went on
    fn, calls = _interrupting(at=None, scale=2.0, when=_in_final_replay)
    oracle.verify(fn.apply, jnp.sin, [tensor("n")], dtypes=("float64",), **QUICK)
    last = calls["seen"][-1]
    assert last > 1  # the specimen shows two failures, replayed last
    fn, calls = _interrupting(at=last, scale=2.0, when=_in_final_replay)
    with pytest.raises(KeyboardInterrupt):
        oracle.verify(fn.apply, jnp.sin, [tensor("n")], dtypes=("float64",), **QUICK)
    assert calls["fired"] == 1


@pytest.mark.slow  # a program in a subprocess: it imports torch and JAX
@pytest.mark.parametrize(
    "isolate",
    [
        pytest.param([], id="in-process"),
        pytest.param(["--isolate"], id="isolated"),
        pytest.param(["--jobs", "2"], id="two-workers"),
    ],
)
def test_the_command_line_stops_within_a_second_of_sigint_and_prints_what_it_checked(isolate):
    cmd = [sys.executable, "-m", "oracle", "tests.e2e.pairs_slow", "--seed", "0", *isolate]
    cmd += ["--device", "cpu", "--dtype", "float64", "--no-compile-cache"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # the quick pair's line comes first; then the slow pair runs for minutes
    line = ""
    while "e2e_quick_sin:" not in line:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the command line ended before the slow pair"
    time.sleep(2.0)  # well inside the slow pair's search (a worker has it started)
    proc.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    out, err = proc.communicate(timeout=30)
    took = time.perf_counter() - sent
    assert proc.returncode == 130, out + err
    assert took < 1.5, f"stopped {took:.2f}s after SIGINT"  # measured: 0.08 s, 0.14 s isolated
    rows = {tuple(r.split()[:4]) for r in out.splitlines() if r.startswith("e2e_")}
    assert rows == {
        ("e2e_quick_sin", "float64", "cpu", "clean"),
        ("e2e_slow_sin", "float64", "cpu", "interrupted"),
    }
    assert "INTERRUPTED (Ctrl-C) in e2e_slow_sin: 1 of 2 pairs not checked" in out
    assert "Traceback" not in err
