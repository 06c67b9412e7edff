"""Tables a and b: the cost of one checked example, against the floor and against gradcheck.

The *floor* is what any cross-framework check must pay for one example: torch's forward
and backward (``torch.autograd.grad`` with a random cotangent) plus the compiled
(``jax.jit``) ``jax.vjp`` of the twin, on inputs already built in each framework. One
checked example is timed two ways:

* ``check``: :func:`oracle.judge.checks.vjp.check_example` on a prepared example (numpy values in,
  findings out): the oracle's own per-example cost;
* ``verify``: a whole :func:`oracle.verify` run on fixed dimension sizes, its run time
  divided by its examples: adds hypothesis drawing the inputs (what a user pays).

Every time is a median over repetitions after a warm-up call, so XLA compilation is
excluded on both sides. The floor and ``check`` are timed interleaved, so that noise
from other processes on the machine falls on both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import torch
from functions import Bench, elements, shapes_for
from hypothesis import settings as hsettings

import oracle
from oracle.inputs.specs import normalize_inputs
from oracle.judge.checks.vjp import check_example
from oracle.pair.bridge import precision_scope
from oracle.pair.outputs import cotangents_for
from oracle.pair.sides import Sides
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide

__all__ = ["prepare", "floor_steps", "cost_row", "gradcheck_row", "timed"]

_COT_SEED = 1234
_NO_DB = hsettings(database=None)


def prepare(bench: Bench, sizes: dict[str, int], seed: int = 0) -> tuple[np.ndarray, ...]:
    """One example's values, as the oracle holds them: float64 arrays of float32 values."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in bench.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in spec.shape)
        out.append(
            rng.uniform(spec.low, spec.high, size=shape).astype(np.float32).astype(np.float64)
        )
    return tuple(out)


def _sides(bench: Bench) -> Sides:
    specs = normalize_inputs(list(bench.inputs))
    return Sides(TorchSide(bench.torch_fn, specs), TwinSide(bench.jax_fn, specs), specs)


def floor_steps(
    bench: Bench, values: tuple[np.ndarray, ...], dtype: str
) -> tuple[Callable, Callable]:
    """(torch step, jax step): forward + backward with a random cotangent, inputs prebuilt."""
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    targs = [
        torch.tensor(v, dtype=tdt, requires_grad=s.grad)
        for v, s in zip(values, bench.inputs, strict=True)
    ]
    diff = [a for a, s in zip(targs, bench.inputs, strict=True) if s.grad]
    with torch.no_grad():
        out_shape = tuple(bench.torch_fn(*targs).shape)
    (cot,) = cotangents_for([out_shape], _COT_SEED)
    tcot = torch.tensor(cot, dtype=tdt)

    def torch_step() -> None:
        out = bench.torch_fn(*targs)
        torch.autograd.grad(out, diff, tcot)

    grad_pos = [i for i, s in enumerate(bench.inputs) if s.grad]

    def vjp(diff_args, rest, ct):
        def f(*d):
            args = list(rest)
            for i, x in zip(grad_pos, d, strict=True):
                args[i] = x
            return bench.jax_fn(*args)

        out, pull = jax.vjp(f, *diff_args)
        return out, pull(ct)

    jitted = jax.jit(vjp)
    with precision_scope(dtype, "cpu"):
        np_dt = np.float32 if dtype == "float32" else np.float64
        jargs = [jax.device_put(np.asarray(v, dtype=np_dt)) for v in values]
        jdiff = tuple(jargs[i] for i in grad_pos)
        jcot = jax.device_put(np.asarray(cot, dtype=np_dt))

    def jax_step() -> None:
        with precision_scope(dtype, "cpu"):
            jax.block_until_ready(jitted(jdiff, jargs, jcot))

    return torch_step, jax_step


def timed(
    fns: dict[str, Callable[[], Any]], *, budget_s: float, min_reps: int = 5, max_reps: int = 200
) -> dict[str, dict[str, float]]:
    """Median and minimum seconds of each function, called in turn (interleaved) after
    one warm-up call each, until ``budget_s`` is spent (at least ``min_reps`` rounds)."""
    for f in fns.values():
        f()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    reps = 0
    while reps < min_reps or (reps < max_reps and time.perf_counter() - start < budget_s):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            samples[k].append(time.perf_counter() - t)
        reps += 1
    return {
        k: {"median": statistics.median(v), "min": min(v), "reps": len(v)}
        for k, v in samples.items()
    }


def _verify_per_example(
    bench: Bench, sizes: dict[str, int], dtype: str, examples: int
) -> dict[str, Any]:
    """Seconds per example of a whole verify run (after a warm-up run that compiles).

    When the warm-up run reports an error (hypothesis could not draw the inputs, say),
    the timed run is skipped and ``failed`` says why."""
    dims = {k: (v, v) for k, v in sizes.items()}
    kw = dict(dims=dims, dtypes=(dtype,), devices=["cpu"], seed=0, settings=_NO_DB)
    start = time.perf_counter()
    warm = oracle.verify(bench.torch_fn, bench.jax_fn, list(bench.inputs), max_examples=2, **kw)
    errors = [d for d in warm.findings if d.check == "error"]
    if errors:
        return {
            "failed": errors[0].detail,
            "seconds": time.perf_counter() - start,
            "examples": warm.runs[0].examples,
            "per_example": None,
            "ok": False,
        }
    report = oracle.verify(
        bench.torch_fn, bench.jax_fn, list(bench.inputs), max_examples=examples, **kw
    )
    run = report.runs[0]
    return {
        "seconds": run.seconds,
        "examples": run.examples,
        "per_example": run.seconds / max(run.examples, 1),
        "ok": report.ok,
        "failed": None if report.ok else report.findings[0].detail,
    }


def cost_row(
    bench: Bench,
    n: int,
    dtype: str,
    *,
    budget_s: float,
    verify_examples: int,
    skip_verify: str | None = None,
) -> dict[str, Any]:
    """Table a: one row (a function at a size in a dtype). ``skip_verify``: a reason not
    to time ``verify`` (it already failed at this size in another dtype)."""
    sizes = shapes_for(bench, n)
    values = prepare(bench, sizes)
    sides = _sides(bench)
    torch_step, jax_step = floor_steps(bench, values, dtype)
    t = timed(
        {
            "torch": torch_step,
            "jax": jax_step,
            "check": lambda: check_example(sides, values, _COT_SEED, dtype, "cpu"),
        },
        budget_s=budget_s,
    )
    findings = check_example(sides, values, _COT_SEED, dtype, "cpu")
    if skip_verify:
        ver = {"per_example": None, "examples": 0, "ok": False, "failed": skip_verify}
    else:
        ver = _verify_per_example(bench, sizes, dtype, verify_examples)
    floor = t["torch"]["median"] + t["jax"]["median"]
    return {
        "function": bench.name,
        "kind": bench.kind,
        "target_elements": n,
        "elements": elements(bench, sizes),
        "sizes": sizes,
        "dtype": dtype,
        "torch_s": t["torch"]["median"],
        "jax_s": t["jax"]["median"],
        "floor_s": floor,
        "check_s": t["check"]["median"],
        "check_min_s": t["check"]["min"],
        "floor_min_s": t["torch"]["min"] + t["jax"]["min"],
        "reps": t["check"]["reps"],
        "check_ratio": t["check"]["median"] / floor,
        "check_ratio_min": t["check"]["min"] / (t["torch"]["min"] + t["jax"]["min"]),
        "verify_per_example_s": ver["per_example"],
        "verify_examples": ver["examples"],
        "verify_ratio": ver["per_example"] / floor if ver["per_example"] else None,
        "verify_failed": ver["failed"],
        "clean": not findings,
    }


def _gradcheck_call(bench: Bench, values: tuple[np.ndarray, ...], fast: bool) -> Callable[[], bool]:
    targs = [
        torch.tensor(v, dtype=torch.float64, requires_grad=s.grad)
        for v, s in zip(values, bench.inputs, strict=True)
    ]
    grad_pos = [i for i, s in enumerate(bench.inputs) if s.grad]

    def f(*d):
        args = list(targs)
        for i, x in zip(grad_pos, d, strict=True):
            args[i] = x
        return bench.torch_fn(*args)

    diff = tuple(targs[i] for i in grad_pos)
    return lambda: torch.autograd.gradcheck(f, diff, fast_mode=fast)


def _once(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def gradcheck_row(
    bench: Bench,
    n: int,
    *,
    budget_s: float,
    previous: dict[str, Any] | None,
    default_limit_s: float = 60.0,
    skip_verify: str | None = None,
) -> dict[str, Any]:
    """Table b: one verify example in float64 against gradcheck (default and fast mode).

    Default gradcheck builds two dense Jacobians, so its cost grows with the square of
    the size; when the estimate from the previous size exceeds ``default_limit_s`` it is
    not run and the estimate is reported instead (``default_estimated``)."""
    sizes = shapes_for(bench, n)
    if bench.name == "gram" and n <= 10:
        sizes = {"b": 1, "k": 3}
    values = prepare(bench, sizes)
    sides = _sides(bench)
    fast = _gradcheck_call(bench, values, fast=True)
    assert fast(), f"{bench.name}: gradcheck(fast_mode=True) fails on a correct backward"
    t = timed(
        {
            "check": lambda: check_example(sides, values, _COT_SEED, "float64", "cpu"),
            "fast": fast,
        },
        budget_s=budget_s,
        min_reps=3,
    )
    default = _gradcheck_call(bench, values, fast=False)
    est = None
    if previous is not None and previous.get("default_s"):
        # gradcheck's cost per element grows with the size; extrapolate with the
        # growth seen between the two previous sizes (at least linear, at most quadratic)
        ratio = elements(bench, sizes) / previous["elements"]
        growth = previous.get("default_growth") or ratio**2
        growth = min(max(growth, ratio), ratio**2)
        est = previous["default_s"] * growth
    if est is not None and est > default_limit_s:
        default_s, estimated = est, True
    else:
        default()  # warm
        reps = []
        while not reps or (sum(reps) < budget_s and len(reps) < 5):
            reps.append(_once(default))
        default_s, estimated = statistics.median(reps), False
    if skip_verify:
        verify64 = {"per_example": None, "failed": skip_verify}
    else:
        verify64 = _verify_per_example(bench, sizes, "float64", 20 if n <= 1000 else 8)
    vpe = verify64["per_example"]
    check_s = t["check"]["median"]
    growth = None
    if previous is not None and previous.get("default_s") and not estimated:
        growth = default_s / previous["default_s"]
    return {
        "function": bench.name,
        "target_elements": n,
        "elements": elements(bench, sizes),
        "sizes": sizes,
        "check_s": check_s,
        "verify_per_example_s": vpe,
        "verify_failed": verify64["failed"],
        "default_s": default_s,
        "default_estimated": estimated,
        "default_growth": growth,
        "fast_s": t["fast"]["median"],
        "speedup_vs_default": default_s / check_s,
        "speedup_vs_fast": t["fast"]["median"] / check_s,
        "verify_speedup_vs_default": default_s / vpe if vpe else None,
        "verify_speedup_vs_fast": t["fast"]["median"] / vpe if vpe else None,
    }
