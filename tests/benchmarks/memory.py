"""Memory over many verify calls of distinct small pairs, in one process (table f).

Each call checks a new pair (a new twin, so new compiled programs) with a few examples in
both dtypes; after every ``--every`` calls the process's memory mappings
(``/proc/self/maps``) and RSS are read. Before the fix of issue #8 each call left ~125
mappings and ~32 MiB behind (XLA's compiled code in module-level caches); a process
running a few hundred pairs hit the kernel's 65,530-mapping limit.

    python tests/benchmarks/memory.py --calls 500 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

import oracle  # noqa: E402
from oracle import tensor  # noqa: E402


def mappings() -> int:
    with open("/proc/self/maps") as fh:
        return sum(1 for _ in fh)


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pair(i: int):
    c = 1.0 + 0.01 * i

    def torch_fn(x):
        return torch.sin(x) * c + x * x

    def twin(x):
        return jnp.sin(x) * c + x * x

    return torch_fn, twin


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--max-examples", type=int, default=10)
    p.add_argument("--json", dest="json_path", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    oracle.verify(*pair(-1), [tensor("n")], max_examples=3, seed=0, devices=["cpu"])  # imports
    samples = [{"calls": 0, "mappings": mappings(), "rss_mib": rss_mib(), "s": 0.0}]
    start = time.perf_counter()
    for i in range(args.calls):
        report = oracle.verify(
            *pair(i), [tensor("n")], max_examples=args.max_examples, seed=i, devices=["cpu"]
        )
        assert report.ok, report
        if (i + 1) % args.every == 0 or i + 1 == args.calls:
            samples.append(
                {
                    "calls": i + 1,
                    "mappings": mappings(),
                    "rss_mib": rss_mib(),
                    "s": time.perf_counter() - start,
                }
            )
    first, last = samples[0], samples[-1]
    # growth per call, measured from the first sample after warm-up to the last
    base = samples[1] if len(samples) > 2 else first
    span = max(last["calls"] - base["calls"], 1)
    out = {
        "calls": args.calls,
        "max_examples": args.max_examples,
        "samples": samples,
        "mappings_per_call": (last["mappings"] - base["mappings"]) / span,
        "rss_mib_per_call": (last["rss_mib"] - base["rss_mib"]) / span,
        "max_mappings": max(s["mappings"] for s in samples),
        "peak_rss_mib": max(s["rss_mib"] for s in samples),
    }
    print(json.dumps(out))
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
