"""Table c: which tool detects which mutant, and which raises false alarms on the originals.

Tools:

* ``oracle f32`` / ``oracle f64``: ``oracle.verify(max_examples=100, seed=0,
  devices=["cpu"], dtypes=(dtype,))`` with no example database; detected when the report
  is not ok.
* ``gradcheck`` / ``gradcheck fast``: ``torch.autograd.gradcheck`` at its default
  tolerances (and ``fast_mode=True``) in float64 on one fixed random input, as a user
  writes it: every named dimension at its upper bound (capped at 8), values uniform in
  the spec's range from a seeded generator. Detected when it returns False or raises.
* ``smoke``: the naive test, on the same input: the backward of the summed outputs runs
  and gives every differentiated input a finite gradient of its shape.

Mutants run once (seed 0). False alarms are rarer events, so the originals also run
with further seeds (``alarm_seeds``: hypothesis seeds for the oracle, input draws for
the others).
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import settings as hsettings
from mutants import MUTANTS, Mutant, originals

import oracle
from oracle.inputs.specs import (
    ChoiceSpec,
    ConstantSpec,
    IntegersSpec,
    TensorSpec,
    normalize_dims,
    normalize_inputs,
)

__all__ = ["TOOLS", "fixed_input", "run_tool", "mutation_table"]

TOOLS = ("oracle f32", "oracle f64", "gradcheck", "gradcheck fast", "smoke")
_NO_DB = hsettings(database=None)
_CAP = 8


def fixed_input(m: Mutant, seed: int = 0) -> tuple[list[Any], list[int]]:
    """One seeded float64 draw of ``m``'s inputs and the positions of the differentiated ones."""
    specs = normalize_inputs(list(m.inputs))
    bounds = normalize_dims(specs, m.dims)
    sizes = {k: min(hi, max(lo, _CAP)) for k, (lo, hi) in bounds.items()}
    rng = np.random.default_rng(seed)
    args, diff = [], []
    for i, s in enumerate(specs):
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in getattr(s, "shape", ()))
        if isinstance(s, TensorSpec):
            args.append(
                torch.tensor(
                    rng.uniform(s.low, s.high, size=shape),
                    dtype=torch.float64,
                    requires_grad=s.grad,
                )
            )
            if s.grad:
                diff.append(i)
        elif isinstance(s, IntegersSpec):
            lo = sizes[s.low] if isinstance(s.low, str) else s.low
            hi = sizes[s.high] if isinstance(s.high, str) else s.high
            args.append(torch.tensor(rng.integers(lo, hi, size=shape), dtype=torch.int64))
        elif isinstance(s, ChoiceSpec):
            args.append(torch.tensor(rng.choice(s.values, size=shape), dtype=torch.float64))
        elif isinstance(s, ConstantSpec):
            args.append(s.value)
        else:
            raise TypeError(f"{m.name}: no fixed input for {s!r}; give the mutant constant inputs")
    return args, diff


def _wrap(fn: Callable, args: list[Any], diff: list[int]) -> Callable:
    def f(*d):
        a = list(args)
        for i, x in zip(diff, d, strict=True):
            a[i] = x
        return fn(*a)

    return f


def _gradcheck(fn: Callable, m: Mutant, fast: bool, seed: int) -> tuple[bool, str]:
    args, diff = fixed_input(m, seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.autograd.gradcheck(
                _wrap(fn, args, diff),
                tuple(args[i] for i in diff),
                fast_mode=fast,
                raise_exception=False,
            )
    except Exception as exc:  # the function itself raised: that is a detection too
        return True, f"raised {type(exc).__name__}"
    return (not ok), ("gradcheck failed" if not ok else "")


def _smoke(fn: Callable, m: Mutant, seed: int) -> tuple[bool, str]:
    args, diff = fixed_input(m, seed)
    try:
        out = fn(*args)
        leaves = list(out) if isinstance(out, (tuple, list)) else [out]
        loss = sum(o.sum() for o in leaves if torch.is_tensor(o) and o.is_floating_point())
        grads = torch.autograd.grad(loss, [args[i] for i in diff], allow_unused=True)
    except Exception as exc:
        return True, f"raised {type(exc).__name__}"
    for i, g in zip(diff, grads, strict=True):
        if g is None:
            return True, f"no gradient for argument {i}"
        if g.shape != args[i].shape:
            return True, f"gradient of argument {i} has shape {tuple(g.shape)}"
        if not torch.isfinite(g).all():
            return True, f"gradient of argument {i} is not finite"
    return False, ""


def _oracle(
    fn: Callable, m: Mutant, dtype: str, examples: int, name: str, seed: int
) -> tuple[bool, str, dict]:
    report = oracle.verify(
        fn,
        m.twin,
        list(m.inputs),
        dims=m.dims,
        dtypes=(dtype,),
        devices=["cpu"],
        max_examples=examples,
        seed=seed,
        settings=_NO_DB,
        name=name,
    )
    found = report.findings
    info = {
        "examples": report.runs[0].examples,
        "seconds": report.runs[0].seconds,
        "kinks": report.runs[0].kinks,
    }
    if not found:
        return False, "", info
    d = found[0]
    info.update(
        check=d.check,
        argument=d.argument,
        blame=d.blame,
        diagnosis=d.diagnosis,
        factor=d.factor,
        detail=d.detail,
        reproducer=d.reproducer,
        example=_example(d.example),
    )
    what = d.diagnosis if d.check == "vjp" else f"{d.check}:{d.diagnosis}"
    return (
        True,
        f"{what} (arg {d.argument}, blame {d.blame})" if d.argument is not None else what,
        info,
    )


def _example(ex: dict[str, Any] | None) -> Any:
    if not ex:
        return None
    return {
        "dims": ex.get("dims"),
        "args": [a.tolist() if hasattr(a, "tolist") else repr(a) for a in ex.get("args", [])],
    }


def run_tool(
    tool: str, fn: Callable, m: Mutant, *, examples: int, name: str, seed: int = 0
) -> dict[str, Any]:
    start = time.perf_counter()
    info: dict[str, Any] = {}
    try:
        if tool == "oracle f32":
            flagged, note, info = _oracle(fn, m, "float32", examples, name, seed)
        elif tool == "oracle f64":
            flagged, note, info = _oracle(fn, m, "float64", examples, name, seed)
        elif tool == "gradcheck":
            flagged, note = _gradcheck(fn, m, fast=False, seed=seed)
        elif tool == "gradcheck fast":
            flagged, note = _gradcheck(fn, m, fast=True, seed=seed)
        else:
            flagged, note = _smoke(fn, m, seed)
    except Exception as exc:  # a benchmark bug, not a detection: record it loudly
        flagged, note = False, f"BENCHMARK ERROR: {type(exc).__name__}: {exc}"
        info = {"traceback": traceback.format_exc()}
    return {"flagged": flagged, "note": note, "seconds": time.perf_counter() - start, **info}


def mutation_table(
    *,
    examples: int,
    tools: tuple[str, ...] = TOOLS,
    names: list[str] | None = None,
    alarm_seeds: tuple[int, ...] = (0,),
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Every tool on every mutant (seed 0) and every distinct original.

    False alarms are stochastic: each original is also run with the other
    ``alarm_seeds`` (hypothesis seeds for the oracle, input seeds for the others);
    ``false_alarms`` counts seed 0 only, ``false_alarms_any_seed`` any of them."""
    mutants = [m for m in MUTANTS if names is None or m.name in names]
    origs = {k: v for k, v in originals().items() if any(m.original_name == k for m in mutants)}
    rows, orig_rows = [], []
    for i, m in enumerate(mutants, 1):
        results = {t: run_tool(t, m.mutated, m, examples=examples, name=m.name) for t in tools}
        rows.append(
            {
                "name": m.name,
                "category": m.category,
                "bug": m.bug,
                "expect": m.expect,
                "results": results,
            }
        )
        progress(
            f"mutant {i}/{len(mutants)} {m.name}: "
            + ", ".join(f"{t}={'caught' if r['flagged'] else 'MISSED'}" for t, r in results.items())
        )
    for name, m in origs.items():
        results = {}
        for t in tools:
            runs = {
                seed: run_tool(t, m.original, m, examples=examples, name=name, seed=seed)
                for seed in alarm_seeds
            }
            first = runs[alarm_seeds[0]]
            first["seeds_flagged"] = [seed for seed, r in runs.items() if r["flagged"]]
            first["other_seeds"] = {
                seed: r for seed, r in runs.items() if seed != alarm_seeds[0] and r["flagged"]
            }
            first["seconds"] = sum(r["seconds"] for r in runs.values())
            results[t] = first
        orig_rows.append({"name": name, "results": results})
        progress(
            f"original {name}: "
            + ", ".join(
                f"{t}={'FALSE ALARM seeds ' + str(r['seeds_flagged']) if r['seeds_flagged'] else 'clean'}"
                for t, r in results.items()
            )
        )
    summary = {}
    for t in tools:
        caught = sum(r["results"][t]["flagged"] for r in rows)
        alarms = sum(r["results"][t]["flagged"] for r in orig_rows)
        alarms_any = sum(bool(r["results"][t]["seeds_flagged"]) for r in orig_rows)
        summary[t] = {
            "detected": caught,
            "mutants": len(rows),
            "rate": caught / len(rows) if rows else float("nan"),
            "false_alarms": alarms,
            "false_alarms_any_seed": alarms_any,
            "originals": len(orig_rows),
            "seconds": sum(r["results"][t]["seconds"] for r in rows + orig_rows),
            "missed": [r["name"] for r in rows if not r["results"][t]["flagged"]],
            "alarmed": [r["name"] for r in orig_rows if r["results"][t]["flagged"]],
            "alarmed_any_seed": {
                r["name"]: r["results"][t]["seeds_flagged"]
                for r in orig_rows
                if r["results"][t]["seeds_flagged"]
            },
        }
    return {
        "summary": summary,
        "mutants": rows,
        "originals": orig_rows,
        "examples": examples,
        "alarm_seeds": list(alarm_seeds),
    }
