"""The words of a report: torch.testing-style mismatch messages and short renderings of
an example (pure functions; unit-tested)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["PREFIX", "fmt", "mismatch_message", "format_example"]

PREFIX = "[oracle] "


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return f"{x:.4g}"


def mismatch_message(
    *,
    what: str,
    mismatched: int,
    total: int,
    max_abs: float,
    max_rel: float,
    index: tuple[int, ...] | None,
    allowed: float | None,
    actual: float | None = None,
    expected: float | None = None,
) -> str:
    """The torch.testing-style body of a mismatch message (pure; unit-tested)."""
    at = f" at index {index}" if index is not None else ""
    pct = 100.0 * mismatched / total if total else 0.0
    lines = [
        f"{what} are not close!",
        f"Mismatched elements: {mismatched} / {total} ({pct:.1f}%)",
        f"Greatest absolute difference: {fmt(max_abs)}{at}"
        + (f" (up to {fmt(allowed)} allowed)" if allowed is not None else ""),
        f"Greatest relative difference: {fmt(max_rel)}",
    ]
    if actual is not None and expected is not None:
        lines.append(f"torch: {fmt(actual)}, reference: {fmt(expected)}{at}")
    return "\n".join(lines)


def format_example(example: dict[str, Any] | None, limit: int = 6) -> str:
    """A short, readable rendering of a shrunk example."""
    if not example:
        return "(no example)"
    parts = []
    if example.get("dims"):
        parts.append("dims " + ", ".join(f"{k}={v}" for k, v in example["dims"].items()))
    for i, a in enumerate(example.get("args", [])):
        if isinstance(a, np.ndarray):
            flat = a.reshape(-1)
            vals = ", ".join(
                f"{float(v):.6g}" if a.dtype.kind == "f" else str(v) for v in flat[:limit]
            )
            more = ", ..." if flat.size > limit else ""
            parts.append(f"arg {i}: {a.dtype}{list(a.shape)} [{vals}{more}]")
        else:
            parts.append(f"arg {i}: {a!r}")
    return "; ".join(parts)
