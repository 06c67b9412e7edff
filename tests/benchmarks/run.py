"""The oracle's benchmarks: ``python tests/benchmarks/run.py [--json PATH] [--quick]``.

Prints five tables and writes them, with the machine's description, as JSON:

a. the cost of one checked example against the floor (torch forward+backward plus the
   compiled jax.vjp), from 10^2 to 10^6 elements;
b. one float64 example against ``torch.autograd.gradcheck`` (default and fast mode);
c. the mutation score of the oracle (float32, float64), gradcheck (default, fast) and a
   naive smoke test on the mutants of ``mutants.py``, with false alarms on the originals;
d. the catalog run ``python -m oracle losses``: wall time, peak memory, XLA compilations;
e. ``pytest tests/e2e/test_catalog.py`` with ``-n 0`` against ``-n 2`` (pytest-xdist);
f. memory over many ``verify`` calls in one process;
g. speed at the user's scale: every target of issue #12, measured (see ``speed.py``);
h. ``oracle.verify`` against the test a user would write instead, hypothesis + float64
   gradcheck, case by case in one process (see ``peer.py``).

``--quick`` runs a reduced version of each (small sizes, a few mutants, few examples),
as a smoke test of the benchmark itself. See ``tests/benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # losses/, as make run sees it
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hypothesis  # noqa: E402
import jax  # noqa: E402
import jaxlib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from catalog import ROOT, catalog_run, oracle_option_args, pytest_run  # noqa: E402
from costs import cost_row, gradcheck_row  # noqa: E402
from functions import BENCHES  # noqa: E402
from mutants import CATEGORIES, MUTANTS  # noqa: E402
from mutation import TOOLS, mutation_table  # noqa: E402
from peer import peer_table, print_peer  # noqa: E402
from speed import TARGETS, catalog_cold_warm, checks_cost, small_pair, suite_run  # noqa: E402
from tables import ms, num, render, x  # noqa: E402

SECTIONS = ("cost", "gradcheck", "mutation", "catalog", "scaleout", "memory", "speed", "peer")


def _log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "hypothesis": hypothesis.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
    }


# --- a. cost per example against the floor ------------------------------------------------


def section_cost(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    sizes = sizes or ([10**2, 10**4] if quick else [10**2, 10**3, 10**4, 10**5, 10**6])
    dtypes = ["float32"] if quick else ["float32", "float64"]
    rows, failed = [], {}
    for bench in BENCHES:
        for n in sizes:
            for dtype in dtypes:
                examples = 20 if n <= 10**4 else (10 if n <= 10**5 else 5)
                r = cost_row(
                    bench,
                    n,
                    dtype,
                    budget_s=0.5 if quick else 1.5,
                    verify_examples=5 if quick else examples,
                    skip_verify=failed.get((bench.name, n)),
                )
                if r["verify_failed"] and r["verify_per_example_s"] is None:
                    failed[(bench.name, n)] = r["verify_failed"]
                rows.append(r)
                _log(
                    f"cost {bench.name} n={n} {dtype}: check {r['check_ratio']:.2f}x floor, "
                    f"verify {x(r['verify_ratio'])}"
                )
    return {"rows": rows}


def _target_a(r: dict[str, Any]) -> str:
    if r["target_elements"] < 10**5:
        return "-"
    return "ok" if r["check_ratio"] <= TARGETS["check_floor"] else "MISS"


def print_cost(res: dict[str, Any]) -> str:
    rows = [
        (
            r["function"],
            num(r["elements"]),
            r["dtype"],
            ms(r["torch_s"]),
            ms(r["jax_s"]),
            ms(r["floor_s"]),
            ms(r["check_s"]),
            x(r["check_ratio"]),
            x(r["check_ratio_min"]),
            ms(r["verify_per_example_s"]) if r["verify_per_example_s"] else "FAILED",
            x(r["verify_ratio"]),
            _target_a(r),
        )
        for r in res["rows"]
    ]
    failures = {
        (r["function"], r["elements"]): r["verify_failed"]
        for r in res["rows"]
        if r["verify_failed"] and r["verify_per_example_s"] is None
    }
    note = (
        "floor = torch forward+backward + jitted jax.vjp on prebuilt inputs; check = "
        "oracle.judge.checks.vjp.check_example on a prepared example; verify = a verify run on fixed dims, "
        "seconds per example (includes drawing the inputs). Medians after warm-up; 'min' uses the "
        "fastest repetitions. Target: check <= 1.3x floor from 10^5 elements (issue #12)."
    )
    for (f, n), why in failures.items():
        note += f"\nverify FAILED for {f} at {n:,} elements: {why}"
    return render(
        "a. Cost of one checked example against the floor (ms)",
        (
            "function",
            "elements",
            "dtype",
            "torch",
            "jax",
            "floor",
            "check",
            "check/floor",
            "(min)",
            "verify/ex",
            "verify/floor",
            "target",
        ),
        rows,
        note,
    )


# --- b. against gradcheck -----------------------------------------------------------------


def section_gradcheck(quick: bool) -> dict[str, Any]:
    sizes = [10, 10**2] if quick else [10, 10**2, 10**3, 10**4]
    rows = []
    for bench in BENCHES:
        prev = None
        for n in sizes:
            r = gradcheck_row(
                bench,
                n,
                budget_s=0.3 if quick else 1.0,
                previous=prev,
                default_limit_s=5.0 if quick else 60.0,
                skip_verify=None,
            )
            rows.append(r)
            prev = r
            _log(
                f"gradcheck {bench.name} n={n}: default {r['default_s']:.3g}s"
                f"{' (est.)' if r['default_estimated'] else ''}, fast {r['fast_s'] * 1e3:.3g}ms, "
                f"oracle {r['check_s'] * 1e3:.3g}ms"
            )
    return {"rows": rows}


def _target_b(r: dict[str, Any]) -> str:
    marks = []
    if r["target_elements"] >= 10**4:
        marks.append("default ok" if r["speedup_vs_default"] >= 100 else "default MISS")
    if r["target_elements"] >= 10**3:
        marks.append("fast ok" if r["speedup_vs_fast"] >= 1 else "fast MISS")
    return ", ".join(marks) or "-"


def print_gradcheck(res: dict[str, Any]) -> str:
    rows = [
        (
            r["function"],
            num(r["elements"]),
            ms(r["check_s"]),
            ms(r["verify_per_example_s"]) if r["verify_per_example_s"] else "FAILED",
            ("~" if r["default_estimated"] else "") + ms(r["default_s"]),
            ms(r["fast_s"]),
            ("~" if r["default_estimated"] else "") + x(r["speedup_vs_default"]),
            x(r["speedup_vs_fast"]),
            ("~" if r["default_estimated"] else "") + x(r["verify_speedup_vs_default"]),
            x(r["verify_speedup_vs_fast"]),
            _target_b(r),
        )
        for r in res["rows"]
    ]
    note = (
        "float64. oracle = check_example on a prepared example; verify = per example of a verify run; "
        "gradcheck at its defaults (fast = fast_mode=True) on the same input. '~': default gradcheck "
        "not run, estimated from the growth between the two smaller sizes (it builds dense Jacobians). "
        "Targets: >= 100x faster than default gradcheck at 10^4, not slower than fast mode from 10^3."
    )
    return render(
        "b. One float64 example against torch.autograd.gradcheck (ms)",
        (
            "function",
            "elements",
            "oracle",
            "verify/ex",
            "gradcheck",
            "fast",
            "default/oracle",
            "fast/oracle",
            "default/verify",
            "fast/verify",
            "target",
        ),
        rows,
        note,
    )


# --- c. mutation score ------------------------------------------------------------------------


def section_mutation(quick: bool) -> dict[str, Any]:
    names = None
    if quick:
        first: dict[str, str] = {}
        for m in MUTANTS:
            first.setdefault(m.category, m.name)
        names = list(first.values())
    return mutation_table(
        examples=20 if quick else 100,
        names=names,
        progress=_log,
        alarm_seeds=(0, 1) if quick else (0, 1, 2, 3),
    )


def _cell(res: dict[str, Any], tool: str) -> str:
    r = res[tool]
    if not r["flagged"]:
        return "-"
    if tool.startswith("oracle"):
        return r.get("diagnosis", "caught") if r.get("check") == "vjp" else f"{r.get('check')}!"
    return "caught"


def print_mutation(res: dict[str, Any]) -> str:
    s = res["summary"]
    seeds = res["alarm_seeds"]
    rows = [
        (
            t,
            f"{v['detected']}/{v['mutants']}",
            f"{100 * v['rate']:.0f}%",
            f"{v['false_alarms']}/{v['originals']}",
            f"{v['false_alarms_any_seed']}/{v['originals']}",
            f"{v['seconds']:.1f}",
        )
        for t, v in s.items()
    ]
    out = [
        render(
            f"c. Mutation score ({len(res['mutants'])} mutants, {len(res['originals'])} originals; "
            f"oracle: {res['examples']} examples, seed 0)",
            (
                "tool",
                "detected",
                "rate",
                "false alarms (seed 0)",
                f"false alarms (seeds {seeds[0]}-{seeds[-1]})",
                "seconds",
            ),
            rows,
        )
    ]
    detail = [
        (m["name"], m["category"], *(_cell(m["results"], t) for t in TOOLS)) for m in res["mutants"]
    ]
    out.append(
        render(
            "c'. Per mutant (oracle: the diagnosis of its first finding; 'forward!' = caught by a "
            "forward mismatch, not by the gradient; '-' = missed)",
            ("mutant", "category", *TOOLS),
            detail,
        )
    )

    def _alarm(r: dict[str, Any]) -> str:
        if not r["seeds_flagged"]:
            return "clean"
        rr = r if r["flagged"] else next(iter(r["other_seeds"].values()))
        what = (
            rr.get("diagnosis", "flagged")
            if rr.get("check", "vjp") == "vjp"
            else f"{rr.get('check')}!"
        )
        return f"{what} (seeds {','.join(map(str, r['seeds_flagged']))})"

    alarms = [
        (o["name"], *(_alarm(o["results"][t]) for t in TOOLS))
        for o in res["originals"]
        if any(o["results"][t]["seeds_flagged"] for t in TOOLS)
    ]
    if alarms:
        out.append(
            render("c''. False alarms on the correct originals", ("original", *TOOLS), alarms)
        )
    notes = []
    for t, v in s.items():
        if t.startswith("oracle") and (v["missed"] or v["alarmed_any_seed"]):
            notes.append(
                f"{t}: missed {v['missed'] or 'none'}; false alarms on "
                f"{v['alarmed_any_seed'] or 'none'} (original: seeds)"
            )
    if notes:
        out.append("\n".join(notes))
    return "\n\n".join(out)


# --- d. the catalog run ---------------------------------------------------------------------


def section_catalog(quick: bool) -> dict[str, Any]:
    extra = ["--max-examples", "10", "-k", "double_sin"] if quick else []
    _log("catalog: python -m oracle losses " + " ".join(extra))
    return catalog_run(extra)


def print_catalog(r: dict[str, Any]) -> str:
    c = r.get("counts", {})
    rows = [
        (
            r["cmd"],
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['peak_rss_mib']:.0f}",
            num(c.get("backend_compile")),
            f"{c.get('backend_compile_s', 0):.1f}",
            num(c.get("jaxpr_trace")),
            str(r["exit"]),
            r.get("as_expected") or "-",
        )
    ]
    return render(
        "d. The catalog run",
        (
            "command",
            "wall s",
            "cpu s",
            "peak RSS MiB",
            "XLA compiles",
            "compile s",
            "jaxpr traces",
            "exit",
            "as expected",
        ),
        rows,
        f"seed {r.get('seed')}; peak RSS of the subprocess (os.wait4); compilations counted with "
        "jax.monitoring (backend_compile events).",
    )


# --- e. scale-out -------------------------------------------------------------------------------


def section_scaleout(quick: bool) -> dict[str, Any]:
    test_file = "tests/e2e/test_catalog.py"
    extra = ["-k", "double_sin or smooth_round"] if quick else []
    extra += oracle_option_args(10 if quick else None)
    runs = []
    configs = (
        [(0, None), (2, None)] if quick else [(0, None), (2, None), (2, {"OMP_NUM_THREADS": "1"})]
    )
    for workers, env in configs:
        _log(f"pytest {test_file} -n {workers} {env or ''}")
        runs.append(pytest_run(test_file, workers, extra, env))
    return {"file": test_file, "extra": extra, "runs": runs}


def print_scaleout(res: dict[str, Any]) -> str:
    runs = res["runs"]
    if runs and "skipped" in runs[0]:
        return render("e. Scale-out", ("note",), [(runs[0]["skipped"],)])
    base = runs[0]["wall_s"]
    rows = [
        (
            f"-n {r['workers']}"
            + (" " + " ".join(f"{k}={v}" for k, v in r["env"].items()) if r["env"] else ""),
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            x(base / r["wall_s"]),
            f"{r['peak_rss_mib']:.0f}",
            str(r["exit"]),
            str(r["summary"]),
        )
        for r in runs
    ]
    return render(
        f"e. Scale-out: pytest -p no:cacheprovider {res['file']} {' '.join(res['extra'])}".rstrip(),
        ("workers", "wall s", "cpu s*", "speed-up", "peak RSS MiB*", "exit", "result"),
        rows,
        "* cpu s: the pytest process and its reaped children (the xdist workers); peak RSS: the largest "
        "single process.",
    )


# --- f. memory over many verify calls --------------------------------------------------------


def section_memory(quick: bool) -> dict[str, Any]:
    import subprocess

    calls = 50 if quick else 500
    _log(f"memory: {calls} verify calls of distinct small pairs in one process")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memory.py")
    proc = subprocess.run(
        [sys.executable, script, "--calls", str(calls), "--every", str(max(calls // 10, 1))],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        return {"failed": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_memory(r: dict[str, Any]) -> str:
    if "failed" in r:
        return render("f. Memory", ("note",), [("failed: " + r["failed"][-300:],)])
    rows = [
        (str(s["calls"]), str(s["mappings"]), f"{s['rss_mib']:.0f}", f"{s['s']:.0f}")
        for s in r["samples"]
    ]
    return render(
        f"f. Memory: {r['calls']} verify calls of distinct small pairs in one process",
        ("calls", "memory mappings", "RSS MiB", "seconds"),
        rows,
        f"growth per call after the first sample: {r['mappings_per_call']:.2f} mappings, "
        f"{r['rss_mib_per_call']:.3f} MiB (before issue #8: ~125 mappings and ~32 MiB per call).",
    )


# --- g. speed at the user's scale ----------------------------------------------------------


def section_speed(quick: bool, cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each row of issue #12's table. ``cost``: table a's result, when it ran (else the
    rows from 10^5 elements are measured here)."""
    _log("speed: a small pair, cold and warm")
    small = small_pair(rounds=1 if quick else 3)
    _log("speed: the catalog, cold and warm")
    cat = catalog_cold_warm()
    if quick:
        suite = {"skipped": "--quick"}
    else:
        _log("speed: the test suite (python -m pytest -q), nothing cached")
        suite = suite_run()
    if cost is None:
        _log("speed: check / floor from 10^5 elements")
        cost = section_cost(quick, sizes=[10**4] if quick else [10**5, 10**6])
    big = [r for r in cost["rows"] if r["target_elements"] >= 10**5] or cost["rows"]
    worst = max(big, key=lambda r: r["check_ratio"])
    _log("speed: the default checks against the vjp alone")
    checks = checks_cost(
        ("double_sin",) if quick else ("double_sin", "scaled_mse", "sigmoid_weighted_abs")
    )
    return {
        "small": small,
        "catalog": cat,
        "suite": suite,
        "check_floor": {
            "worst": worst["check_ratio"],
            "where": f"{worst['function']} {worst['elements']:,} {worst['dtype']}",
        },
        "checks": checks,
        "targets": dict(TARGETS),
    }


def print_speed(r: dict[str, Any]) -> str:
    def mark(key: str, value: float | None) -> str:
        if value is None:
            return "-"
        return "ok" if value <= TARGETS[key] else "MISS"

    s, cold, warm = r["small"], r["catalog"]["cold"], r["catalog"]["warm"]
    suite = r["suite"]
    suite_s = suite.get("wall_s")
    worst_checks = max(c["ratio"] for c in r["checks"])
    rows = [
        (
            f"verify of a small pair, {s['examples']} examples, cold",
            f"{s['cold_s']:.2f} s",
            f"<= {TARGETS['small_cold_s']:g} s",
            mark("small_cold_s", s["cold_s"]),
        ),
        (
            "  the same, warm compilation cache",
            f"{s['warm_s']:.2f} s",
            f"<= {TARGETS['small_warm_s']:g} s",
            mark("small_warm_s", s["warm_s"]),
        ),
        (
            "python -m oracle losses, cold",
            f"{cold['wall_s']:.1f} s",
            f"<= {TARGETS['catalog_cold_s']:g} s",
            mark("catalog_cold_s", cold["wall_s"]),
        ),
        (
            "  the same, warm compilation cache",
            f"{warm['wall_s']:.1f} s",
            f"<= {TARGETS['catalog_warm_s']:g} s",
            mark("catalog_warm_s", warm["wall_s"]),
        ),
        *(
            [
                (
                    f"  the same, warm, --jobs auto ({jobs['workers']} workers)",
                    f"{jobs['wall_s']:.1f} s",
                    f"<= {TARGETS['catalog_warm_s']:g} s",
                    mark("catalog_warm_s", jobs["wall_s"]),
                )
            ]
            if (jobs := r["catalog"].get("jobs"))
            else []
        ),
        (
            "make test's suite, nothing cached",
            f"{suite_s:.0f} s" if suite_s else suite.get("skipped", "-"),
            f"<= {TARGETS['suite_s']:g} s",
            mark("suite_s", suite_s),
        ),
        (
            "check / floor from 10^5 elements (worst)",
            x(r["check_floor"]["worst"]),
            f"<= {TARGETS['check_floor']:g}x",
            mark("check_floor", r["check_floor"]["worst"]),
        ),
        (
            "peak RSS of the catalog run",
            f"{cold['peak_rss_mib']:.0f} MiB",
            f"<= {TARGETS['catalog_rss_mib']:g} MiB",
            mark("catalog_rss_mib", cold["peak_rss_mib"]),
        ),
        (
            "default checks / vjp alone, first verify (worst)",
            x(worst_checks),
            f"<= {TARGETS['default_checks']:g}x",
            mark("default_checks", worst_checks),
        ),
    ]
    note = (
        f"small pair: median of {len(s['runs']['cold'])} fresh processes each, timed after "
        f"`import oracle` ({s['import_s']:.1f} s, not counted); CPU s cold {s['cold_cpu_s']:.2f}, "
        f"warm {s['warm_cpu_s']:.2f}. catalog: {cold.get('as_expected')} and "
        f"{warm.get('as_expected')} as expected, XLA compilations cold "
        f"{num(cold['counts'].get('backend_compile'))} ({cold['counts'].get('backend_compile_s', 0):.1f} s); "
        f"suite: {suite.get('summary', '-')}; check/floor worst at {r['check_floor']['where']}; "
        "default checks per pair: "
        + ", ".join(f"{c['pair']} {c['ratio']:.2f}x" for c in r["checks"])
    )
    return render(
        "g. Speed at the user's scale (issue #12's targets)",
        ("what", "now", "target", ""),
        rows,
        note,
    )


PRINTERS = {
    "cost": print_cost,
    "gradcheck": print_gradcheck,
    "mutation": print_mutation,
    "catalog": print_catalog,
    "scaleout": print_scaleout,
    "memory": print_memory,
    "speed": print_speed,
    "peer": print_peer,
}
RUNNERS = {
    "cost": section_cost,
    "gradcheck": section_gradcheck,
    "mutation": section_mutation,
    "catalog": section_catalog,
    "scaleout": section_scaleout,
    "memory": section_memory,
    "speed": section_speed,
    "peer": lambda quick: peer_table(examples=20 if quick else 100, quick=quick),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tests/benchmarks/run.py", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--json", dest="json_path", default=None, metavar="PATH", help="write every figure as JSON"
    )
    p.add_argument(
        "--quick", action="store_true", help="a reduced run (a couple of minutes): a smoke test"
    )
    p.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only these tables (repeatable)"
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        metavar="N",
        help="torch.set_num_threads(N) for the in-process tables a-c (default 1: torch's OpenMP "
        "pool stalls for a scheduler time slice whenever another process wants a core); "
        "0: torch's own default",
    )
    args = p.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    sections = args.only or list(SECTIONS)

    results: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "mutants": len(MUTANTS),
        "categories": list(CATEGORIES),
        "seconds": {},
    }
    print(
        f"oracle benchmarks{' (quick)' if args.quick else ''}: torch {torch.__version__}, jax {jax.__version__}, "
        f"{os.cpu_count()} CPUs ({results['machine']['cpu']}), load {os.getloadavg()[0]:.2f}\n",
        flush=True,
    )
    start = time.perf_counter()
    for name in sections:
        t0 = time.perf_counter()
        if name == "speed":  # table a's rows from 10^5 elements, when it ran
            results[name] = section_speed(args.quick, results.get("cost"))
        else:
            results[name] = RUNNERS[name](args.quick)
        results["seconds"][name] = time.perf_counter() - t0
        print(PRINTERS[name](results[name]) + "\n", flush=True)
    results["seconds"]["total"] = time.perf_counter() - start
    results["machine"]["load_average_at_end"] = os.getloadavg()
    print(
        f"done in {results['seconds']['total']:.0f}s "
        f"(load average at start {results['machine']['load_average_at_start'][0]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)"
    )
    if args.json_path:
        path = Path(args.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=str))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
