"""Report and Divergence: what the oracle found, as plain records, text and JSON.

Messages read like ``torch.testing.assert_close``'s (what was compared, mismatched
elements, greatest absolute and relative difference with the allowed amount), with a
``[oracle]`` prefix and what only the oracle knows: argument, dtype, device, blame,
diagnosis, the shrunk example and how to replay it. Nothing here imports torch, JAX
or hypothesis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..vocabulary import CHECKS
from .capabilities import capability_table, merge, shown
from .text import PREFIX, fmt, format_example, mismatch_message

__all__ = [
    "Divergence",
    "RunSummary",
    "Report",
    "mismatch_message",
    "format_example",
    "capability_table",
]

#: what a finding of each check compares, for its mismatch message
_WHAT = {
    "forward": "Outputs",
    **{c.name: c.compares for c in CHECKS.values() if c.name != "contract"},
}


@dataclass
class Divergence:
    """One finding: a disagreement, an error, or a kink where both sides are right."""

    check: str
    argument: int | None
    blame: str
    diagnosis: str
    detail: str
    dtype: str
    device: str
    max_abs_error: float = float("nan")
    max_rel_error: float = float("nan")
    worst_index: tuple[int, ...] | None = None
    example: dict[str, Any] | None = None
    reproducer: str = ""
    factor: float | None = None
    mismatched: int = 0
    total: int = 0
    allowed: float | None = None
    actual: float | None = None
    expected: float | None = None
    tolerance: str = ""
    name: str = ""
    #: "hand" (a JAX twin the user wrote) or "auto" (built from torch_fn: jax_fn="auto")
    twin: str = "hand"
    #: the seed of the run that found it (pass it to replay the search)
    seed: int | None = None
    #: the kind of finding within its check, a code from ``oracle.vocabulary.REASONS``
    #: ("" for an ordinary disagreement of values): what code branches on
    reason: str = ""
    #: where in the check it was found: the call of user code ("forward", "backward",
    #: "checks beyond the vjp"...) for errors, the part of a check ("per_example")
    phase: str = ""
    #: low dtypes (the error budget, oracle.judge.budget): torch's largest error against
    #: the float64 reference, and the naive implementation's in the same dtype
    error: float | None = None
    naive_error: float | None = None
    #: what a plot needs to draw the finding again: the two functions, the input specs,
    #: the example's values and cotangent seed (plain data; no live engine objects)
    replay_data: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def is_kink(self) -> bool:
        """A kink: both sides right by their own conventions (does not count)."""
        return self.blame == "kink"

    def headline(self) -> str:
        target = f"gradient of argument {self.argument}" if self.argument is not None else "outputs"
        if self.check in ("jvp", "hvp", "vmap", "contract"):
            target = f"argument {self.argument}" if self.argument is not None else "the function"
        if self.check == "error":
            target = "call"
        elif self.check == "forward":
            target = "forward outputs"
        return (
            f"{PREFIX}{self.name + ': ' if self.name else ''}{self.check}: {target} "
            f"({self.dtype}, {self.device}): blame={self.blame}, diagnosis={self.diagnosis}"
            + (", twin=auto" if self.twin == "auto" else "")
        )

    def message(self) -> str:
        lines = [self.headline(), f"  {self.detail}"]
        if self.check in _WHAT and self.total:
            what = _WHAT[self.check]
            body = mismatch_message(
                what=what,
                mismatched=self.mismatched,
                total=self.total,
                max_abs=self.max_abs_error,
                max_rel=self.max_rel_error,
                index=self.worst_index,
                allowed=self.allowed,
                actual=self.actual,
                expected=self.expected,
            )
            lines += ["  " + ln for ln in body.splitlines()]
            if self.tolerance:
                lines.append(f"  Tolerance: {self.tolerance}")
        lines.append(f"  Example (shrunk): {format_example(self.example)}")
        lines.append(f"  Seed: {_seed_text(self.seed)}")
        if self.reproducer:
            lines.append(
                "  Replay: save `.reproducer` of this divergence to a file and run it with python"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message()

    def to_dict(self) -> dict[str, Any]:
        ex = None
        if self.example is not None:
            ex = {
                "dims": dict(self.example.get("dims", {})),
                "args": [_jsonable(a) for a in self.example.get("args", [])],
            }
        return {
            "check": self.check,
            "argument": self.argument,
            "blame": self.blame,
            "diagnosis": self.diagnosis,
            "detail": self.detail,
            "dtype": self.dtype,
            "device": self.device,
            "max_abs_error": _num(self.max_abs_error),
            "max_rel_error": _num(self.max_rel_error),
            "worst_index": list(self.worst_index) if self.worst_index is not None else None,
            "factor": self.factor,
            "mismatched": self.mismatched,
            "total": self.total,
            "allowed": _num(self.allowed),
            "tolerance": self.tolerance,
            "example": ex,
            "reproducer": self.reproducer,
            "twin": self.twin,
            "seed": self.seed,
            "reason": self.reason,
            "phase": self.phase,
            "error": _num(self.error),
            "naive_error": _num(self.naive_error),
        }


def _seed_text(seed: int | None) -> str:
    return str(seed) if seed is not None else "none (derandomized: the same examples every run)"


def _num(x: float | None) -> float | str | None:
    if x is None:
        return None
    return x if math.isfinite(x) else str(x)


def _jsonable(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f":
            return {
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "values": [_num(float(v)) for v in a.reshape(-1)],
            }
        return {"dtype": str(a.dtype), "shape": list(a.shape), "values": a.reshape(-1).tolist()}
    if isinstance(a, (int, float, str, bool)) or a is None:
        return a
    return repr(a)


@dataclass
class RunSummary:
    """How one dtype x device run went."""

    dtype: str
    device: str
    examples: int = 0
    kinks: int = 0
    rejected: int = 0
    seconds: float = 0.0
    #: check -> "ok" | "diverged" | "unsupported: <reason>" | "not checked"
    capabilities: dict[str, str] = field(default_factory=dict)
    #: "float32 only: <why>" when torch_fn cannot run in this (float64) run while its
    #: float32 run was clean: its float32 results are judged against the twin's float64
    #: values, and this run reports no finding of its own
    only: str = ""
    #: stopped by Ctrl-C after ``examples`` examples
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "capabilities": dict(self.capabilities)}


@dataclass
class Report:
    """The result of :func:`oracle.verify`."""

    name: str
    runs: list[RunSummary]
    divergences: list[Divergence]
    #: "hand" or "auto" (the twin was built from torch_fn's forward: jax_fn="auto")
    twin: str = "hand"
    seed: int | None = None
    #: stopped by Ctrl-C: the runs and findings are those until then (never ok)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing diverged and the run was not interrupted; kink findings do
        not count."""
        return not self.interrupted and not any(not d.is_kink for d in self.divergences)

    @property
    def kinks(self) -> list[Divergence]:
        return [d for d in self.divergences if d.is_kink]

    @property
    def capabilities(self) -> dict[str, str]:
        """Check -> "ok" | "diverged" | "unsupported: <reason>" | "not checked", over
        every dtype and device (the worst status of any run); the checks run only when
        asked (opcheck, compile) appear when they were."""
        merged = merge(r.capabilities for r in self.runs)
        return {c: merged[c] for c in shown(merged)}

    @property
    def findings(self) -> list[Divergence]:
        """The divergences that count (not kinks)."""
        return [d for d in self.divergences if not d.is_kink]

    def __str__(self) -> str:
        examples = sum(r.examples for r in self.runs)
        real = self.findings
        head = (
            f"{PREFIX}{self.name}"
            + (" (automatic twin)" if self.twin == "auto" else "")
            + ": "
            + (
                f"{len(real)} divergence{'s' if len(real) != 1 else ''}"
                if real
                else "no divergence"
            )
            + f" in {examples} examples"
            + (f" (seed {self.seed})" if self.seed is not None else " (derandomized)")
            + (": INTERRUPTED (Ctrl-C), the runs below are partial" if self.interrupted else "")
        )
        rows = [
            ("dtype", "device", "examples", "outcome", "blame", "diagnosis", "worst error", "kinks")
        ]
        for r in self.runs:
            mine = [d for d in real if (d.dtype, d.device) == (r.dtype, r.device)]
            top = mine[0] if mine else None
            outcome = (
                "DIVERGED"
                if mine
                else "interrupted"
                if r.interrupted
                else ("float32 only" if r.only else "ok")
            )
            rows.append(
                (
                    r.dtype,
                    r.device,
                    str(r.examples),
                    outcome,
                    top.blame if top else "-",
                    top.diagnosis if top else "-",
                    fmt(top.max_abs_error) if top else "-",
                    str(r.kinks),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        table = "\n".join(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
        )
        parts = [head, table, capability_table(self.capabilities)]
        parts += [f"  {r.dtype} on {r.device}: {r.only}" for r in self.runs if r.only]
        for d in real:
            parts.append(d.message())
        kinks = self.kinks
        if kinks:
            k = kinks[0]
            parts.append(
                f"{PREFIX}{sum(r.kinks for r in self.runs)} example(s) sat on a kink, where torch and "
                f"JAX may pick different subgradients (not counted): e.g. {k.detail} "
                f"[{format_example(k.example, limit=4)}]"
            )
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "twin": self.twin,
            "seed": self.seed,
            "interrupted": self.interrupted,
            "runs": [r.to_dict() for r in self.runs],
            "capabilities": self.capabilities,
            "divergences": [d.to_dict() for d in self.divergences],
        }
