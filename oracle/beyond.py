"""Which checks beyond the vjp run on which example, and what they found.

:class:`Beyond` holds, for one dtype x device run, the checks asked for (``checks=``) or
the default set, the capability table built so far, and which examples get the extra
checks: every example for an asked check; for the default set the first
:data:`DEFAULT_EXAMPLES` examples whose vjp was judged right (kinks excluded), then every
example for a check that has found a wrong value there (so that hypothesis can shrink
it). A refusal (``unsupported``) is a finding only for an asked check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .capability import CHECKS, EXTRA, NOT_CHECKED, worse
from .contract import check_before, check_contract
from .report import Divergence
from .transforms import run_transform

__all__ = ["Beyond", "DEFAULT_EXAMPLES"]

#: examples per run that get every extra check under the default set (measured: this
#: keeps the default verify under 1.5x the vjp-only cost; see the README)
DEFAULT_EXAMPLES = 3


class Beyond:
    def __init__(self, checks: Sequence[str] | None):
        self.asked = tuple(checks) if checks is not None else None
        self.capabilities = dict.fromkeys(CHECKS, NOT_CHECKED)
        self.done = 0  # examples that got the default extra checks
        self.hot: set[str] = set()  # default checks that found a wrong value: every example now

    @property
    def vjp(self) -> bool:
        """Whether vjp findings count (the forward is checked in any case)."""
        return self.asked is None or "vjp" in self.asked

    def _due(self) -> list[str]:
        if self.asked is not None:
            return [c for c in EXTRA if c in self.asked]
        if self.done < DEFAULT_EXAMPLES:
            return list(EXTRA)
        return [c for c in EXTRA if c in self.hot]

    def note_vjp(self, findings: Sequence[Divergence]) -> None:
        if self.vjp:
            real = [f for f in findings if f.check == "vjp" and f.blame != "kink"]
            self.capabilities["vjp"] = worse(self.capabilities["vjp"], "diverged" if real else "ok")

    def before(
        self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str
    ) -> list[Divergence]:
        """The contract rules checked before the example runs (see
        :func:`oracle.contract.check_before`)."""
        if "contract" not in self._due():
            return []
        found = check_before(sides, values, seed, dtype, device)
        if found:
            self._record("contract", "diverged")
        return found

    def after(
        self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str
    ) -> list[Divergence]:
        """The extra checks due on an example whose forward and vjp were judged right."""
        due = self._due()
        if not due:
            return []
        if self.asked is None and self.done < DEFAULT_EXAMPLES:
            self.done += 1
        findings: list[Divergence] = []
        for check in due:
            asked = self.asked is not None
            if check == "contract":
                found = check_contract(sides, values, seed, dtype, device)
                status = "diverged" if found else "ok"
            else:
                positions = None if asked else _ends(values)
                found, status = run_transform(
                    check, sides, values, seed, dtype, device, asked=asked, vmap_positions=positions
                )
            self._record(check, status)
            findings += found
        return findings

    def look(self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str) -> None:
        """On a shrunk vjp failure, the default set still learns which transforms torch
        refuses (a refusal does not depend on the values); wrong values found there are
        left out: the first derivative is already wrong."""
        if self.asked is not None:
            return
        for check in EXTRA:
            if check == "contract" or self.capabilities[check] != NOT_CHECKED:
                continue
            try:
                _, status = run_transform(check, sides, values, seed, dtype, device, asked=False)
            except Exception:
                continue
            if status.startswith("unsupported"):
                self._record(check, status)

    def _record(self, check: str, status: str) -> None:
        self.capabilities[check] = worse(self.capabilities[check], status)
        if status == "diverged":
            self.hot.add(check)


def _ends(values: Sequence[Any]) -> list[int]:
    import numpy as np

    ndim = max((np.ndim(v) for v in values if isinstance(v, np.ndarray)), default=0)
    return sorted({0, ndim})
