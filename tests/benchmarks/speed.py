"""Table g: speed at the user's scale, the targets of issue #12, each row measured here.

Every figure comes from fresh processes (JAX's in-process caches would otherwise carry
over), with JAX's persistent compilation cache in a new temporary directory: "cold" is
the first run into that empty directory, "warm" a second process reading it, which is
what the pytest plugin and ``python -m oracle`` do on a developer's second run.

- a small pair: one ``verify`` of an elementwise Function of two tensors (two
  dimensions up to 8), 100 examples in each of float32 and float64, timed in the process
  after ``import oracle`` (the imports themselves are reported apart);
- the catalog: ``python -m oracle losses`` (wall time, peak RSS);
- the test suite: what ``make test`` runs after set-up (``python -m pytest -q -n 2
  --dist loadfile``), in a fresh clone of HEAD (nothing cached from earlier runs);
- check / floor from 10^5 elements: the largest ratio of table a at 10^5 and above;
- the default checks: the first ``verify`` of three catalog pairs with the default set
  against ``checks=["vjp"]`` (CPU seconds, as ``checks_cost.py``).

    .venv/bin/python tests/benchmarks/run.py --only speed
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from catalog import ROOT, catalog_run
from checks_cost import child

__all__ = ["small_pair", "catalog_cold_warm", "suite_run", "checks_cost", "TARGETS"]

#: the issue's table: each row's target (seconds, MiB or a ratio; at most this is ok)
TARGETS = {
    "small_cold_s": 1.0,
    "small_warm_s": 0.3,
    "catalog_cold_s": 25.0,
    "catalog_warm_s": 10.0,
    "suite_s": 240.0,
    "check_floor": 1.3,
    "catalog_rss_mib": 1024.0,
    "default_checks": 1.5,
}

_SMALL = r"""
import json, sys, time
t0 = time.perf_counter()
import jax.numpy as jnp
import torch
import oracle
from oracle.options import enable_compile_cache
enable_compile_cache(sys.argv[1])
t1 = time.perf_counter()


class MulSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * torch.sin(y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * torch.sin(y), g * x * torch.cos(y)


def twin(x, y):
    return x * jnp.sin(y)


spec = oracle.tensor("a b")
c, w = time.process_time(), time.perf_counter()
report = oracle.verify(MulSin.apply, twin, [spec, spec], dims={"a": (1, 8), "b": (1, 8)}, seed=1)
print(json.dumps({"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c,
                  "import_s": t1 - t0, "ok": report.ok,
                  "examples": sum(r.examples for r in report.runs)}))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def small_pair(rounds: int = 3) -> dict[str, Any]:
    """Cold and warm ``verify`` of the small pair, ``rounds`` times each (medians)."""
    cold, warm = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(_python(_SMALL, cache))
            warm.append(_python(_SMALL, cache))
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    return {
        "cold_s": med(cold, "wall_s"),
        "warm_s": med(warm, "wall_s"),
        "cold_cpu_s": med(cold, "cpu_s"),
        "warm_cpu_s": med(warm, "cpu_s"),
        "import_s": med(cold, "import_s"),
        "examples": cold[0]["examples"],
        "ok": all(r["ok"] for r in cold + warm),
        "runs": {"cold": cold, "warm": warm},
    }


def catalog_cold_warm() -> dict[str, Any]:
    """``python -m oracle losses`` twice on one new compilation cache, then a third time
    with ``--jobs auto`` (a worker process per CPU) on the same, warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"ORACLE_CACHE_DIR": cache, "ORACLE_BENCH_PROGRAM": "1"}
        cold = catalog_run(env=env)
        warm = catalog_run(env=env)
        jobs = catalog_run(["--jobs", "auto"], env=env)
    jobs["workers"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return {"cold": cold, "warm": warm, "jobs": jobs}


#: what ``make test`` runs after set-up (the Makefile's test target)
SUITE = ["-m", "pytest", "-q", "-n", "2", "--dist", "loadfile"]


def suite_run() -> dict[str, Any]:
    """The test suite as ``make test`` runs it, in a fresh clone of HEAD (no compilation
    cache, no example database: nothing from earlier runs), with this environment."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = os.path.join(tmp, "clone")
        subprocess.run(["git", "clone", "-q", str(ROOT), clone], check=True)
        env = {k: v for k, v in os.environ.items() if k != "ORACLE_CACHE_DIR"}
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, *SUITE],
            capture_output=True,
            text=True,
            cwd=clone,
            env=env,
            timeout=3600,
        )
        wall = time.perf_counter() - start
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return {"wall_s": wall, "exit": out.returncode, "summary": tail, "command": " ".join(SUITE)}


def checks_cost(pairs: tuple[str, ...] = ("double_sin", "scaled_mse", "sigmoid_weighted_abs")):
    """First-verify CPU seconds with the default checks against the vjp alone."""
    rows = []
    for pair in pairs:
        got = {mode: child(pair, mode) for mode in ("vjp", "default")}
        rows.append(
            {
                "pair": pair,
                "vjp_cpu_s": got["vjp"]["first_cpu"],
                "default_cpu_s": got["default"]["first_cpu"],
                "ratio": got["default"]["first_cpu"] / got["vjp"]["first_cpu"],
            }
        )
    return rows
