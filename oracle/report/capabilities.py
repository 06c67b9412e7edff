"""The capability table: one status per check, and how statuses combine.

``report.capabilities`` maps each check to ``"ok"``, ``"diverged"``,
``"unsupported: <reason>"`` or ``"not checked"``. Statuses from several examples, dtypes
and devices combine by :func:`worse`. Nothing here imports torch, JAX or hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..vocabulary import CHECK_NAMES, CHECKS

__all__ = ["NOT_CHECKED", "worse", "merge", "shown", "capability_table"]

NOT_CHECKED = "not checked"

# a wrong value outranks a refusal, which outranks a pass, which outranks no look at all
_RANK = {"diverged": 3, "unsupported": 2, "ok": 1, NOT_CHECKED: 0}


def _rank(status: str) -> int:
    return _RANK.get(status.split(":", 1)[0], 0)


def worse(a: str, b: str) -> str:
    """The status that says more of the two: diverged > unsupported > ok > not checked
    (and "not checked: <why>" over a plain "not checked")."""
    if _rank(b) == _rank(a) and a == NOT_CHECKED:
        return b
    return b if _rank(b) > _rank(a) else a


def merge(tables: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """One status per check over several runs' capability tables."""
    out = dict.fromkeys(CHECK_NAMES, NOT_CHECKED)
    for table in tables:
        for check, status in table.items():
            out[check] = worse(out.get(check, NOT_CHECKED), status)
    return out


def shown(capabilities: Mapping[str, str]) -> list[str]:
    """The checks a table shows: the default set's, and the others that were looked at."""
    return [
        c
        for c in CHECK_NAMES
        if CHECKS[c].default or capabilities.get(c, NOT_CHECKED) != NOT_CHECKED
    ]


def capability_table(capabilities: Mapping[str, str]) -> str:
    """One line per check: ``  jvp       unsupported: no jvp staticmethod ...``."""
    rows = shown(capabilities)
    width = max(len(c) for c in rows)
    lines = [f"  {'check'.ljust(width)}  capability"]
    lines += [f"  {c.ljust(width)}  {capabilities.get(c, NOT_CHECKED)}" for c in rows]
    return "\n".join(lines)
