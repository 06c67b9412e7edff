"""The checks beyond the first derivative, by name, and how their outcomes combine.

``checks=`` on :func:`oracle.verify` names a subset of :data:`CHECKS`;
``report.capabilities`` maps each of them to one status: ``"ok"``, ``"diverged"``,
``"unsupported: <reason>"`` or ``"not checked"``. Statuses from several examples, dtypes
and devices combine by :func:`worse`. Nothing here imports torch, JAX or hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CHECKS", "EXTRA", "NOT_CHECKED", "normalize_checks", "worse", "merge"]

#: every check ``checks=`` accepts, in the order the capability table shows them
CHECKS = ("vjp", "jvp", "hvp", "vmap", "contract")
#: the checks beyond the first-order vjp, run by :mod:`oracle.transforms`
EXTRA = CHECKS[1:]
NOT_CHECKED = "not checked"

# a wrong value outranks a refusal, which outranks a pass, which outranks no look at all
_RANK = {"diverged": 3, "unsupported": 2, "ok": 1, NOT_CHECKED: 0}


def normalize_checks(checks: Any) -> tuple[str, ...] | None:
    """``None`` (the default set) or the asked checks, validated, in :data:`CHECKS` order."""
    if checks is None:
        return None
    if isinstance(checks, str):
        checks = [c.strip() for c in checks.split(",") if c.strip()]
    if not isinstance(checks, Iterable):
        raise TypeError(
            f"checks must be None or a list of check names from {', '.join(CHECKS)}; got {checks!r}"
        )
    asked = list(checks)
    for c in asked:
        if c not in CHECKS:
            raise ValueError(
                f"checks: unknown check {c!r}; expected a subset of "
                f"{', '.join(map(repr, CHECKS))} (or None for the default set)"
            )
    if not asked:
        raise ValueError(
            f"checks: expected at least one of {', '.join(map(repr, CHECKS))} "
            "(or None for the default set)"
        )
    return tuple(c for c in CHECKS if c in asked)


def _rank(status: str) -> int:
    return _RANK.get(status.split(":", 1)[0], 0)


def worse(a: str, b: str) -> str:
    """The status that says more of the two: diverged > unsupported > ok > not checked."""
    return b if _rank(b) > _rank(a) else a


def merge(tables: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """One status per check over several runs' capability tables."""
    out = dict.fromkeys(CHECKS, NOT_CHECKED)
    for table in tables:
        for check, status in table.items():
            out[check] = worse(out.get(check, NOT_CHECKED), status)
    return out
