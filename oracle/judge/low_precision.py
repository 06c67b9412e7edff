"""One example in a low dtype (bfloat16, float16, or float32 under autocast), judged by the
error budget (:mod:`oracle.judge.budget`).

Torch's outputs and gradients are compared with the twin's in float64 (the reference,
on the same rounded inputs and cotangents), within :data:`~oracle.judge.budget.FACTOR`
times the error of the twin run by JAX in the low dtype (the naive implementation) plus
a floor. A tensor beyond the budget is checked once more in float32 on the same values:
if torch is right there, the finding is ``precision`` (blamed on torch); if float32
finds the same bug, it is that bug, ``mismatch`` here, with float32's blame; if float32
finds a kink, it is a kink.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..pair.bridge import cast_values, low_dtype_of, precision_scope
from ..pair.outputs import Outputs
from ..pair.sides import Sides
from ..report.records import Divergence
from .budget import EPS, LARGEST, TINY, Budget, budget_sentence, error_budget
from .findings import Verdict, divergence
from .jitter import jittered

__all__ = ["judge_low", "input_values"]


def input_values(sides: Sides, values: Sequence[Any], low: str) -> list[Any]:
    """The example's float arrays rounded to ``low`` and held in float64 (what the
    naive twin and the reference see)."""
    return [
        np.asarray(v, dtype=np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for v in cast_values(values, sides.specs, low)
    ]


class _Lazy:
    """What the budget allows beyond the naive error, paid only for a tensor beyond the
    rest: the reference at inputs moved by one rounding of the dtype, and the twin's
    formula with every operation rounded at random (:mod:`oracle.judge.jitter`)."""

    def __init__(self, sides: Sides, values: Sequence[Any], cots, device: str, low: str):
        self.sides, self.values, self.cots, self.device, self.low = sides, values, cots, device, low
        self._samples: list[tuple[list, list]] | None = None

    def samples(self) -> list[tuple[list, list]]:
        """(outputs, gradients) of each sample, in float64."""
        if self._samples is None:
            self._samples = self._moved() + self._jittered()
        return self._samples

    def _jittered(self) -> list[tuple[list, list]]:
        low = self.low
        try:
            with precision_scope("float64", self.device):
                limits = (EPS[low], TINY[low], LARGEST[low])
                return jittered(self.sides.twin, self.values, self.device, self.cots, limits)
        except Exception:
            return []

    def _moved(self) -> list[tuple[list, list]]:
        """Every differentiated input scaled by 1 + eps, 1 - eps and 1 +- eps at random."""
        eps = EPS[self.low]
        rng = np.random.default_rng(5)
        out = []
        for how in ("up", "down", "random"):
            vals = []
            for v, s in zip(self.values, self.sides.specs, strict=True):
                if getattr(s, "grad", False) and isinstance(v, np.ndarray):
                    sign = {"up": 1.0, "down": -1.0}.get(how)
                    if sign is None:
                        sign = rng.choice([-1.0, 1.0], size=v.shape)
                    v = v * (1.0 + sign * eps)
                vals.append(v)
            try:
                with precision_scope("float64", self.device):
                    o = self.sides.twin.run(vals, "float64", self.device, self.cots)
            except Exception:
                continue
            out.append((o.leaves, o.grads))
        return out


def _spread(samples: list[tuple[list, list]], kind: str, i: int, r: np.ndarray) -> float:
    """The largest distance of a sample's tensor from the reference."""
    worst = 0.0
    for leaves, grads in samples:
        got = leaves if kind == "out" else grads
        if i >= len(got):
            continue
        x = np.asarray(got[i], dtype=np.float64)
        if x.shape == r.shape and x.size:
            d = np.abs(x - r)
            d = d[np.isfinite(d)]
            if d.size:
                worst = max(worst, float(d.max()))
    return worst


def _overflowing(samples: list[tuple[list, list]], kind: str, i: int, shape) -> np.ndarray:
    """Where some sample of the twin's formula is not finite (it overflows in the dtype)."""
    where = np.zeros(shape, dtype=bool)
    for leaves, grads in samples:
        got = leaves if kind == "out" else grads
        if i < len(got) and np.shape(got[i]) == shape:
            where |= ~np.isfinite(np.asarray(got[i], dtype=np.float64))
    return where


def _judge_one(t, n, r, low: str, lazy: _Lazy, kind: str, i: int) -> Budget:
    """The budget for one tensor: the naive error first, then the samples' spread (and,
    where a sample of the twin's formula overflows too, torch's NaN or infinity is that
    formula's, not a finding)."""
    b = error_budget(t, n, r, low)
    if b.ok:
        return b
    samples = lazy.samples()
    r = np.asarray(r, dtype=np.float64)
    if b.nonfinite:
        t = np.asarray(t, dtype=np.float64)
        excused = ~np.isfinite(t) & _overflowing(samples, kind, i, t.shape)
        t = np.where(excused, r, t)
        n = np.where(excused, r, np.asarray(n, dtype=np.float64))
    return error_budget(t, n, r, low, input_error=_spread(samples, kind, i, r))


def judge_low(
    sides: Sides,
    values: Sequence[Any],
    t_out: Outputs,
    naive: Outputs,
    ref: Outputs,
    cots: Sequence[Any],
    dtype: str,
    device: str,
    in_float32: Callable[[], list[Divergence]],
) -> list[Divergence]:
    """The outputs (the first beyond the budget is a forward finding, and ends the
    judgement) and every gradient, by the budget. ``values``: what the reference saw
    (float64); ``in_float32``: the same example checked in float32 (called at most
    once, for a finding)."""
    low = low_dtype_of(dtype)
    assert low is not None
    lazy = _Lazy(sides, values, cots, device, low)
    f32: list[list[Divergence]] = []

    def verdict(b: Budget, what: str, argument: Any) -> Verdict:
        if not f32:
            try:
                f32.append(in_float32())
            except Exception:
                f32.append([])
        same = [f for f in f32[0] if f.argument == argument or argument is None]
        real = [f for f in same if not f.is_kink]
        how = " under torch.autocast" if dtype.startswith("autocast-") else ""
        sentence = f"{what} in {low}{how}: {budget_sentence(b, low)}"
        if real:
            first = real[0]
            return Verdict(
                first.blame,
                "mismatch",
                f"{sentence}; the float32 run of this example diverges too "
                f"({first.check}, {first.diagnosis}): not a matter of precision",
            )
        if same:
            return Verdict(
                "kink",
                "mismatch",
                f"{sentence}; in float32 the example sits on a kink (both conventions are "
                "valid there)",
            )
        return Verdict(
            "torch",
            "nonfinite" if b.nonfinite else "precision",
            f"{sentence}; in float32 torch is right on the same example: it computes at a "
            f"lower precision than {low} allows (an accumulator or a reduction in the low "
            "dtype, a gradient cast down early?)",
        )

    def finding(check: str, b: Budget, what: str, argument: Any) -> Divergence:
        d = divergence(
            check,
            verdict(b, what, argument),
            dtype=dtype,
            device=device,
            argument=argument,
            max_abs_error=b.error,
            worst_index=b.worst_index,
            mismatched=b.mismatched,
            total=b.total,
            allowed=b.allowed,
            actual=b.actual_at_worst,
            expected=b.expected_at_worst,
            error=b.error,
            naive_error=b.naive_error,
        )
        d.tolerance = "error budget: 2 x the naive error + 2 ulps (oracle.judge.budget)"
        return d

    for i, (t, n) in enumerate(zip(t_out.leaves, naive.leaves, strict=True)):
        r = ref.leaves[i]
        if np.asarray(t).dtype.kind != "f":
            continue  # integer outputs: compared exactly by the caller
        b = _judge_one(t, n, r, low, lazy, "out", i)
        if not b.ok:
            return [finding("forward", b, f"output {i}", None)]
    findings = []
    for k, (tg, ng) in enumerate(zip(t_out.grads, naive.grads, strict=True)):
        if tg is None:
            continue
        arg = sides.diff_positions[k]
        b = _judge_one(tg, ng, ref.grads[k], low, lazy, "grad", k)
        if not b.ok:
            findings.append(finding("vjp", b, f"the gradient of argument {arg}", arg))
    return findings
