"""Fixed-width text tables for the benchmark's results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["render", "ms", "x", "num"]


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds, three significant digits."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    v = seconds * 1e3
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"


def x(ratio: float | None) -> str:
    """A ratio as ``1.23x``."""
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "-"
    return f"{ratio:.3g}x" if ratio < 1000 else f"{ratio:,.0f}x"


def num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], note: str = ""
) -> str:
    """A titled table; text columns left-aligned, numeric-looking ones right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def numeric(col: int) -> bool:
        vals = [r[col] for r in cells[1:] if r[col] not in ("-", "")]
        return bool(vals) and all(
            v.lstrip("~<>")
            .replace(",", "")
            .replace(".", "", 1)
            .rstrip("x%s")
            .replace("e-", "")
            .replace("e+", "")
            .lstrip("-")
            .isdigit()
            for v in vals
        )

    right = [numeric(i) for i in range(len(headers))]
    lines = [title, "=" * len(title)]
    for n, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if right[i] else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if note:
        lines += ["", note]
    return "\n".join(lines)
