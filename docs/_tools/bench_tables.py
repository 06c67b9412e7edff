"""The benchmark tables of the documentation site, generated from JSON at build time.

A page asks for a table with an HTML comment on a line of its own::

    <!-- bench-table: cost -->

and this MkDocs hook (``hooks:`` in ``mkdocs.yml``) replaces it with a Markdown table
built from ``docs/benchmarks/bench.json`` (what ``make bench`` writes to
``bench-results/bench.json``), ``xdist.json`` (``tests/benchmarks/xdist.py``) or
``campaign.json`` (``make campaign``), followed by the date and the machine of the
measurement. No figure is typed into a page. An unknown table name, or a table whose
data is missing, stops the build: a page cannot silently lose its figures.

The renderers are pure functions of the loaded JSON (``render(name, data)``), so the
test suite checks them without MkDocs (``tests/e2e/test_docs.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
MARKER = re.compile(r"^<!-- bench-table: ([a-z_]+) -->$", re.MULTILINE)

# which JSON file holds each table's data, and under which key (None: the whole file)
SOURCES: dict[str, tuple[str, str | None]] = {
    "cost": ("bench.json", "cost"),
    "gradcheck": ("bench.json", "gradcheck"),
    "mutation": ("bench.json", "mutation"),
    "catalog": ("bench.json", "catalog"),
    "scaleout": ("bench.json", "scaleout"),
    "memory": ("bench.json", "memory"),
    "speed": ("bench.json", "speed"),
    "peer": ("bench.json", "peer"),
    "xdist": ("xdist.json", None),
    "campaign": ("campaign.json", None),
}


def _num(v: float | None, digits: int = 3) -> str:
    """A figure as the tables print it: three significant digits, thousands separated."""
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else _num(seconds * 1e3)


def _x(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2f}x"


def _elements(n: int) -> str:
    exp = len(str(n)) - 1
    return f"10^{exp}" if n == 10**exp else f"{n:,}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cost(d: dict[str, Any]) -> str:
    rows = [
        [
            r["function"],
            _elements(r["elements"]),
            r["dtype"],
            _ms(r["floor_s"]),
            _ms(r["check_s"]),
            _x(r["check_ratio"]),
            _x(r.get("verify_ratio")),
        ]
        for r in d["rows"]
    ]
    header = ["function", "elements", "dtype", "floor ms", "check ms", "check/floor"]
    return _table([*header, "verify/floor"], rows)


def _gradcheck(d: dict[str, Any]) -> str:
    rows = []
    for r in d["rows"]:
        est = "~" if r.get("default_estimated") else ""
        rows.append(
            [
                r["function"],
                _elements(r["elements"]),
                _ms(r["check_s"]),
                est + _ms(r["default_s"]),
                _ms(r["fast_s"]),
                est + _x(r["speedup_vs_default"]),
                _x(r["speedup_vs_fast"]),
            ]
        )
    header = ["function", "elements", "oracle ms", "gradcheck ms", "fast_mode ms"]
    return _table([*header, "gradcheck / oracle", "fast / oracle"], rows)


_TOOL_NAMES = {
    "oracle f32": "oracle, float32",
    "oracle f64": "oracle, float64",
    "gradcheck": "gradcheck (default)",
    "gradcheck fast": "gradcheck `fast_mode`",
    "smoke": '"backward runs and returns finite values of the right shape"',
}


def _mutation(d: dict[str, Any]) -> str:
    seeds = d["alarm_seeds"]
    rows = [
        [
            _TOOL_NAMES.get(tool, tool),
            f"{v['detected']}/{v['mutants']}",
            f"{v['false_alarms']}/{v['originals']}",
            f"{v['false_alarms_any_seed']}/{v['originals']}",
        ]
        for tool, v in d["summary"].items()
    ]
    header = ["tool", "mutants caught", f"false alarms (seed {seeds[0]})"]
    return _table([*header, f"false alarms (seeds {seeds[0]}-{seeds[-1]})"], rows)


def _catalog(d: dict[str, Any]) -> str:
    c = d.get("counts", {})
    row = [
        f"`{d['cmd']}`",
        _num(d["wall_s"]),
        _num(d["cpu_s"]),
        _num(d["peak_rss_mib"], 4),
        _num(c.get("backend_compile")),
        _num(c.get("backend_compile_s")),
    ]
    header = ["command", "wall s", "CPU s", "peak RSS MiB", "XLA compilations", "compile s"]
    return _table(header, [row])


def _scaleout(d: dict[str, Any]) -> str:
    base = d["runs"][0]["wall_s"]
    rows = [
        [
            f"`-n {r['workers']}`"
            + ("".join(f" {k}={v}" for k, v in r["env"].items()) if r.get("env") else ""),
            _num(r["wall_s"]),
            _x(base / r["wall_s"]),
            str(r.get("summary", "-")),
        ]
        for r in d["runs"]
    ]
    return _table([f"`pytest {d['file']}`", "wall s", "speed-up", "result"], rows)


def _memory(d: dict[str, Any]) -> str:
    rows = [[str(s["calls"]), str(s["mappings"]), _num(s["rss_mib"], 4)] for s in d["samples"]]
    return _table(["verify calls so far", "memory mappings", "RSS MiB"], rows)


def _speed(d: dict[str, Any]) -> str:
    t = d["targets"]
    small, cold, warm = d["small"], d["catalog"]["cold"], d["catalog"]["warm"]
    worst = max(d["checks"], key=lambda c: c["ratio"])
    others = ", ".join(f"{c['pair']} {_x(c['ratio'])}" for c in d["checks"] if c is not worst)

    def row(what: str, value: float | None, shown: str, key: str, unit: str) -> list[str]:
        met = "-" if value is None else ("met" if value <= t[key] else "missed")
        return [what, shown, f"<= {t[key]:g}{unit}", met]

    suite = d["suite"].get("wall_s")
    rows = [
        row(
            f"`verify` of a small pair ({small.get('examples', 200)} examples over both dtypes), cold",
            small["cold_s"],
            f"{small['cold_s']:.2f} s",
            "small_cold_s",
            " s",
        ),
        row(
            "the same, warm compilation cache",
            small["warm_s"],
            f"{small['warm_s']:.2f} s",
            "small_warm_s",
            " s",
        ),
        row(
            "`python -m oracle losses`, cold",
            cold["wall_s"],
            f"{cold['wall_s']:.1f} s",
            "catalog_cold_s",
            " s",
        ),
        row("the same, warm", warm["wall_s"], f"{warm['wall_s']:.1f} s", "catalog_warm_s", " s"),
        *(
            [
                row(
                    f"the same, warm, `--jobs auto` ({jobs['workers']} worker processes)",
                    jobs["wall_s"],
                    f"{jobs['wall_s']:.1f} s",
                    "catalog_warm_s",
                    " s",
                )
            ]
            if (jobs := d["catalog"].get("jobs"))
            else []
        ),
        row(
            "`make test`'s suite in a fresh clone",
            suite,
            f"{suite:.0f} s" if suite else "-",
            "suite_s",
            " s",
        ),
        row(
            "check / floor from 10^5 elements, worst row",
            d["check_floor"]["worst"],
            f"{_x(d['check_floor']['worst'])} ({d['check_floor']['where']})",
            "check_floor",
            "x",
        ),
        row(
            "peak RSS of the catalog run",
            cold["peak_rss_mib"],
            f"{cold['peak_rss_mib']:.0f} MiB",
            "catalog_rss_mib",
            " MiB",
        ),
        row(
            "default checks / vjp alone, first `verify`, worst pair",
            worst["ratio"],
            f"{_x(worst['ratio'])} ({worst['pair']}; {others})",
            "default_checks",
            "x",
        ),
    ]
    return _table(["what", "measured", "target", ""], rows)


def _peer(d: dict[str, Any]) -> str:
    def flagged(v: bool) -> str:
        return "flagged" if v else "-"

    rows = [
        [
            r["case"] + (" (wrong)" if r["wrong"] else ""),
            f"{r['oracle_s']:.2f} s",
            f"{r['peer_s']:.2f} s",
            _x(r["ratio"]),
            flagged(r["oracle_flagged"]),
            flagged(r["peer_flagged"]),
        ]
        for r in d["rows"]
    ]
    rows.append(
        [
            f"**all {len(d['rows'])}** (geometric mean of the ratios)",
            f"{d['oracle_total_s']:.1f} s",
            f"{d['peer_total_s']:.1f} s",
            f"**{_x(d['geomean_ratio'])}**",
            f"{d['oracle_misses']} missed, {d['oracle_false_alarms']} false alarms",
            f"{d['peer_misses']} missed, {d['peer_false_alarms']} false alarms",
        ]
    )
    header = ["case", "oracle", "peer", "oracle / peer", "oracle says", "peer says"]
    return _table(header, rows)


def _xdist(d: dict[str, Any]) -> str:
    layouts = {
        "ini": "`oracle_modules = mypairs` in the ini",
        "conftest": "`import mypairs` in `conftest.py`",
    }
    rows = [
        [
            str(r["pairs"]),
            layouts.get(r["layout"], r["layout"]),
            f"{r['serial_s']:.1f} s",
            f"{r['n2_s']:.1f} s",
            _x(r["speedup"]),
        ]
        for r in d["rows"]
    ]
    return _table(["pairs", "layout", "serial", "`-n 2`", "speed-up"], rows)


def _campaign(d: dict[str, Any]) -> str:
    clean, wrong = d["clean"], d["wrong"]
    rows = [
        [
            "clean",
            f"{clean['pairs']} ({clean['detail']})",
            f"{clean['runs']:,}",
            f"**{clean['false_alarms']} false alarms**",
        ],
        [
            "wrong",
            f"{wrong['pairs']} ({wrong['detail']})",
            f"{wrong['runs']:,}",
            f"**{wrong['misses']} misses**",
        ],
    ]
    return _table(["", "pairs", "runs (pair x seed x dtype)", "result"], rows)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "cost": _cost,
    "gradcheck": _gradcheck,
    "mutation": _mutation,
    "catalog": _catalog,
    "scaleout": _scaleout,
    "memory": _memory,
    "speed": _speed,
    "peer": _peer,
    "xdist": _xdist,
    "campaign": _campaign,
}


def _machine(m: dict[str, Any]) -> str:
    parts = [m.get("description") or m.get("cpu") or "an unnamed machine"]
    if m.get("cpu_count"):
        parts.append(f"{m['cpu_count']} CPUs")
    if m.get("cpu") and m.get("description"):
        parts.append(m["cpu"])
    parts.append(f"torch {m.get('torch', '?')}, JAX {m.get('jax', '?')}")
    if m.get("torch_threads"):
        parts.append(f"{m['torch_threads']} torch thread" + ("s" if m["torch_threads"] > 1 else ""))
    return ", ".join(parts)


def load(name: str, bench_dir: Path = BENCH_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the table's data, the whole file) for table ``name``."""
    if name not in SOURCES:
        raise KeyError(f"unknown benchmark table {name!r}: expected one of {', '.join(SOURCES)}")
    filename, key = SOURCES[name]
    whole = json.loads((bench_dir / filename).read_text())
    data = whole if key is None else whole.get(key)
    if not data:
        raise KeyError(f"{filename} has no {key!r} section: run the benchmark that writes it")
    return data, whole


def render(name: str, bench_dir: Path = BENCH_DIR) -> str:
    """Table ``name`` as Markdown, with the date and machine of its measurement."""
    data, whole = load(name, bench_dir)
    date = data.get("date") or whole.get("date") or whole.get("machine", {}).get("date", "?")
    where = _machine(whole.get("machine", {}))
    source = f"`docs/benchmarks/{SOURCES[name][0]}`"
    return (
        RENDERERS[name](data) + f"\n\n*Measured on {date} on {where}; generated from {source}.*\n"
    )


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs hook: every ``<!-- bench-table: NAME -->`` line becomes table NAME."""
    return MARKER.sub(lambda m: render(m.group(1)), markdown)
