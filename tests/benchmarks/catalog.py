"""Tables d and e: the catalog run (``python -m oracle losses``) and its pytest scale-out.

Each measurement runs in a fresh subprocess from the repository root; its wall time is
taken around the process and its peak memory from ``os.wait4``'s resource usage, read
by a small launcher process (:data:`_LAUNCHER`). The catalog run goes through
a small wrapper (:data:`_WRAPPER`) that registers a ``jax.monitoring`` listener before
calling ``oracle.cli.main``, and counts XLA backend compilations and jaxpr traces.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["catalog_run", "pytest_run", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]

_WRAPPER = r"""
import json, sys, collections
import jax
counts = collections.Counter()

def _listener(name, secs, **kw):
    if "backend_compile" in name:
        counts["backend_compile"] += 1
        counts["backend_compile_s"] += secs
    elif "jaxpr_trace" in name:
        counts["jaxpr_trace"] += 1
        counts["jaxpr_trace_s"] += secs

jax.monitoring.register_event_duration_secs_listener(_listener)
import os
from oracle.cli import main
code = None
try:
    # as `python -m oracle` (its persistent compilation cache) when the caller asks
    code = main(sys.argv[2:], program=bool(os.environ.get("ORACLE_BENCH_PROGRAM")))
finally:
    with open(sys.argv[1], "w") as f:
        json.dump({"exit": code, **counts}, f)
sys.exit(code)
"""


# Runs the command given after the output path and writes its rusage there. Linux keeps
# a process's peak RSS across fork and exec, so a child forked straight from this (large)
# benchmark process would report this process's peak as its own; forked from this small
# launcher it reports its own.
_LAUNCHER = r"""
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "cpu_s": usage.ru_utime + usage.ru_stime,
               "maxrss_kib": usage.ru_maxrss}, f)
"""


def _run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run ``cmd`` from the repository root: wall time, CPU time and peak RSS (of the
    process and its reaped children), exit code and the tail of its output."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        usage_path = os.path.join(tmp, "usage.json")
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, usage_path, *cmd],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
        )
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
        wall = time.perf_counter() - start
        try:
            with open(usage_path) as f:
                usage = json.load(f)
        except (OSError, ValueError):
            usage = {"exit": proc.returncode, "cpu_s": float("nan"), "maxrss_kib": float("nan")}
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {
        "cmd": " ".join(cmd),
        "exit": usage["exit"],
        "wall_s": wall,
        "cpu_s": usage["cpu_s"],
        "peak_rss_mib": usage["maxrss_kib"] / 1024,  # Linux reports KiB
        "stdout_tail": stdout[-3000:],
        "stderr_tail": stderr[-3000:],
        "timed_out": timed_out,
    }


def catalog_run(
    extra: list[str] | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Table d: ``python -m oracle losses`` (plus ``extra`` options) in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        counts_path = os.path.join(tmp, "counts.json")
        res = _run([sys.executable, "-c", _WRAPPER, counts_path, "losses", *(extra or [])], env=env)
        res["cmd"] = " ".join(["python -m oracle losses", *(extra or [])])
        try:
            with open(counts_path) as f:
                res["counts"] = json.load(f)
        except (OSError, ValueError):
            res["counts"] = {}
    m = re.search(r"(\d+) of (\d+) outcomes as expected", res["stdout_tail"])
    res["as_expected"] = f"{m.group(1)}/{m.group(2)}" if m else None
    m = re.search(r"seed (\d+)", res["stderr_tail"])
    res["seed"] = int(m.group(1)) if m else None
    res["pairs"] = len(re.findall(r"^\[\d+/(\d+)\]", res["stderr_tail"], re.M)) or None
    res["compilations"] = res["counts"].get("backend_compile")
    return res


def _has_option(option: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    return option in out.stdout


def pytest_run(
    test_file: str, workers: int, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Table e: one ``pytest`` run of ``test_file`` with ``-n workers`` (pytest-xdist)."""
    if not (ROOT / test_file).exists():
        return {"skipped": f"{test_file} does not exist"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        test_file,
        "-q",
        "-n",
        str(workers),
        *(extra or []),
    ]
    res = _run(cmd, env=env)
    m = re.findall(r"=+ (.*?) in [\d.]+s", res["stdout_tail"])
    tail = res["stdout_tail"].strip().splitlines()
    res["summary"] = m[-1] if m else (tail[-1] if tail else "")
    res["cmd"] = " ".join(["pytest", *cmd[3:]])
    res["workers"] = workers
    res["env"] = env or {}
    return res


def oracle_option_args(max_examples: int | None) -> list[str]:
    """``--oracle-max-examples N`` when the plugin provides it (else nothing)."""
    if max_examples is None or not _has_option("--oracle-max-examples"):
        return []
    return ["--oracle-max-examples", str(max_examples)]
