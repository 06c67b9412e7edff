"""The test a user would write instead of the oracle, timed beside it (table h).

The peer: a hypothesis test that draws the same inputs as the oracle (its own strategy,
from the same specs and dims) and calls ``torch.autograd.gradcheck`` in float64 on each
drawn example, ``max_examples`` of them. The oracle: ``oracle.verify`` with its defaults
(float32 and float64, the default checks beyond the vjp, shrinking, blame). Both run in
one process, after warm-up calls of each (5 examples of x_sin, a Function, and of x_sin_plain,
a plain torch function: torch.func's first-use imports); each case is timed
once per round (median over rounds). The cases are the mutation set's distinct originals
(correct functions) and one mutant per category (wrong ones): elementwise functions,
reductions, normalisations, a matrix power, a cumulative sum, a batched matmul...

    python tests/benchmarks/peer.py [--examples 100] [--rounds 1] [--quick]

Also a section of ``run.py`` (``--only peer``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from mutants import MUTANTS, Mutant, originals  # noqa: E402

import oracle  # noqa: E402
from oracle.inputs.specs import example_strategy, normalize_dims, normalize_inputs  # noqa: E402
from oracle.pair.bridge import to_torch  # noqa: E402

__all__ = ["cases", "peer_run", "oracle_run", "peer_table"]


def cases(quick: bool = False) -> list[tuple[str, Mutant, Callable, bool]]:
    """(name, mutant record, function under test, wrong?): every distinct original, and
    the first mutant of each category."""
    out = [(name, m, m.original, False) for name, m in originals().items()]
    seen: set[str] = set()
    for m in MUTANTS:
        if m.category not in seen:
            seen.add(m.category)
            out.append((m.name, m, m.mutated, True))
    return out[:6] if quick else out


def _peer_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        derandomize=False,
    )


def peer_run(m: Mutant, fn: Callable, examples: int, at_seed: int) -> tuple[bool, float]:
    """The peer's test on ``fn``: (flagged, seconds)."""
    specs = normalize_inputs(m.inputs)
    strategy = example_strategy(specs, normalize_dims(specs, m.dims))
    diff = [i for i, s in enumerate(specs) if getattr(s, "grad", False)]

    @seed(at_seed)
    @_peer_settings(examples)
    @given(strategy)
    def test(ex: Any) -> None:
        args = to_torch(ex.values, specs, "float64", "cpu")
        leaves = [args[i].detach().requires_grad_() for i in diff]

        def f(*d: torch.Tensor) -> Any:
            a = list(args)
            for i, x in zip(diff, d, strict=True):
                a[i] = x
            return fn(*a)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.autograd.gradcheck(f, tuple(leaves), raise_exception=False)

    start = time.perf_counter()
    try:
        test()
        flagged = False
    except Exception:  # a failing gradcheck, or the function raising: a detection
        flagged = True
    return flagged, time.perf_counter() - start


def oracle_run(m: Mutant, fn: Callable, examples: int, at_seed: int) -> tuple[bool, float]:
    """``oracle.verify`` with its defaults: (flagged, seconds)."""
    start = time.perf_counter()
    report = oracle.verify(
        fn,
        m.twin,
        list(m.inputs),
        dims=m.dims,
        devices=["cpu"],
        max_examples=examples,
        seed=at_seed,
        name=f"peer_{m.name}",
        settings=settings(database=None),
    )
    return (not report.ok), time.perf_counter() - start


def _geomean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def peer_table(examples: int = 100, rounds: int = 1, quick: bool = False) -> dict[str, Any]:
    """Every case, both tools, in this process: times, detections, ratios."""
    chosen = cases(quick)
    # warm-up of each tool (torch's and JAX's first-use costs): a Function and a plain
    # torch function, so that torch.func's first-use imports (forward mode, vmap: the
    # oracle's default checks run them on plain functions) are not charged to one case
    for name in ("x_sin", "x_sin_plain"):
        warm = originals().get(name, chosen[0][1])
        oracle_run(warm, warm.original, 5, 0)
        peer_run(warm, warm.original, 5, 0)
    rows = []
    for name, m, fn, wrong in chosen:
        t_o, t_p, f_o, f_p = [], [], False, False
        for r in range(rounds):
            f_o, s_o = oracle_run(m, fn, examples, 1000 + r)
            f_p, s_p = peer_run(m, fn, examples, 1000 + r)
            t_o.append(s_o)
            t_p.append(s_p)
        o, p = statistics.median(t_o), statistics.median(t_p)
        rows.append(
            {
                "case": name,
                "wrong": wrong,
                "oracle_s": o,
                "peer_s": p,
                "ratio": o / p if p > 0 else float("nan"),
                "oracle_flagged": f_o,
                "peer_flagged": f_p,
            }
        )
    return {
        "examples": examples,
        "rounds": rounds,
        "rows": rows,
        "oracle_total_s": sum(r["oracle_s"] for r in rows),
        "peer_total_s": sum(r["peer_s"] for r in rows),
        "geomean_ratio": _geomean([r["ratio"] for r in rows]),
        "oracle_faster": sum(r["ratio"] < 1 for r in rows),
        "oracle_misses": sum(r["wrong"] and not r["oracle_flagged"] for r in rows),
        "peer_misses": sum(r["wrong"] and not r["peer_flagged"] for r in rows),
        "oracle_false_alarms": sum((not r["wrong"]) and r["oracle_flagged"] for r in rows),
        "peer_false_alarms": sum((not r["wrong"]) and r["peer_flagged"] for r in rows),
    }


def print_peer(res: dict[str, Any]) -> str:
    from tables import render

    rows = [
        (
            r["case"] + (" (wrong)" if r["wrong"] else ""),
            f"{r['oracle_s']:.2f}s",
            f"{r['peer_s']:.2f}s",
            f"{r['ratio']:.2f}x",
            "flagged" if r["oracle_flagged"] else "-",
            "flagged" if r["peer_flagged"] else "-",
        )
        for r in res["rows"]
    ]
    note = (
        f"sum: oracle {res['oracle_total_s']:.1f}s, peer {res['peer_total_s']:.1f}s; "
        f"geometric mean of oracle/peer {res['geomean_ratio']:.2f}x; oracle faster on "
        f"{res['oracle_faster']} of {len(rows)}; misses oracle {res['oracle_misses']}, peer "
        f"{res['peer_misses']}; false alarms oracle {res['oracle_false_alarms']}, peer "
        f"{res['peer_false_alarms']} ({res['examples']} examples, median of {res['rounds']})"
    )
    return render(
        "h. oracle.verify (defaults) against hypothesis + gradcheck (float64), one process",
        ("case", "oracle", "peer", "oracle/peer", "oracle", "peer"),
        rows,
        note,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tests/benchmarks/peer.py", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--examples", type=int, default=100)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="six cases only")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(print_peer(peer_table(args.examples, args.rounds, args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
