"""What the default set's checks beyond the vjp cost: ``verify`` with ``checks=["vjp"]``
(the first-order check alone, as before issue 10) against the default ``checks=None``.

Each measurement runs in a fresh process (JAX's compilation caches would otherwise carry
over), alternating the two modes, and reports CPU seconds of that process (less affected
by other jobs on the machine than wall time): the first ``verify`` of a registered pair,
and the median of the next three (seeds 1-3, whose compiled programs are mostly cached).

    .venv/bin/python tests/benchmarks/checks_cost.py [PAIR ...] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PAIRS = ("double_sin", "scaled_mse", "sigmoid_weighted_abs")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one(pair: str, mode: str) -> dict:
    """In this process: four verifies of ``pair`` (seeds 0-3), CPU and wall seconds."""
    import losses  # noqa: F401  (registers the catalog)
    import oracle

    p = oracle.registry()[pair]
    kw = {"checks": ["vjp"]} if mode == "vjp" else {}
    cpu, wall = [], []
    for seed in range(4):
        c, w = time.process_time(), time.perf_counter()
        p.verify(seed=seed, devices=["cpu"], **kw)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"first_cpu": cpu[0], "next_cpu": statistics.median(cpu[1:]), "first_wall": wall[0]}


def child(pair: str, mode: str) -> dict:
    """:func:`_one` in a fresh process (JAX's caches do not carry over)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", pair, mode],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="*", default=list(PAIRS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_one(*args.child)))
        return
    print(f"{'pair':22s} {'first verify (CPU s)':>28s} {'next 3, median (CPU s)':>28s}")
    for pair in args.pairs:
        got: dict[str, list[dict]] = {"vjp": [], "default": []}
        for _ in range(args.rounds):
            for mode in ("vjp", "default"):
                got[mode].append(child(pair, mode))
        cells = []
        for key in ("first_cpu", "next_cpu"):
            before = sum(r[key] for r in got["vjp"])
            after = sum(r[key] for r in got["default"])
            cells.append(f"{before:6.2f} -> {after:6.2f} ({after / before:.2f}x)")
        print(f"{pair:22s} {cells[0]:>28s} {cells[1]:>28s}", flush=True)


if __name__ == "__main__":
    main()
