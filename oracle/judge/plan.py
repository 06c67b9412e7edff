"""Which checks beyond the vjp run on which example, and what they found.

:class:`Beyond` holds, for one dtype x device run, the checks asked for (``checks=``) or
the default set, the capability table built so far, and which examples get the extra
checks: every example for an asked check (and with ``every``: the campaign profile);
for the default set :data:`DEFAULT_EXAMPLES` examples whose vjp was judged right (kinks
excluded), of shapes already compiled for where possible, then every example for a check
that has found a wrong value there (so that hypothesis can shrink it). A refusal
(``unsupported``) is a finding only for an asked check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import vocabulary
from ..report.capabilities import NOT_CHECKED, worse
from ..report.records import Divergence
from ..vocabulary import CHECK_NAMES, EXTRA
from .checks import registered

__all__ = ["Beyond", "DEFAULT_EXAMPLES", "LOW_DTYPE"]

#: examples per run that get every extra check under the default set
DEFAULT_EXAMPLES = 3
#: shape signatures the default set may compile its programs for (about five JAX
#: compilations each: jvp, hvp, vmap at two positions, per-example vjp), per twin, dtype,
#: device and argument ranks, in one process. Compilation, not execution, is what the
#: extra checks cost: a later verify of the same pair looks at examples of the shapes
#: compiled already, which keeps the default verify near the vjp-only cost (measured:
#: docs/explanation/benchmarks.md, "At the user's scale")
NEW_SIGNATURES = 1
# The signatures the default set has compiled for, and how many each (twin, dtype,
# device, ranks) family has had, live on the TwinSide (``extra_compiled``,
# ``extra_budget``) with the compiled programs themselves: both are freed when the
# pair's verify ends (memory stays flat over hundreds of pairs in one process).


def _signature(sides: Any, values: Sequence[Any], dtype: str, device: str) -> tuple:
    """What the twin's compiled programs are keyed by: shapes, dtype, static values."""
    parts = []
    for v in values:
        if isinstance(v, np.ndarray):
            parts.append(("array", v.shape, v.dtype.kind))
        elif isinstance(v, float):
            parts.append(("float",))  # traced, not compiled in
        else:
            parts.append(("value", type(v).__name__, repr(v)))
    return (sides.twin.fn, dtype, device, tuple(parts))


def _family(sig: tuple) -> tuple:
    """The signature without the sizes: one budget of compilations per family."""
    fn, dtype, device, parts = sig
    return (fn, dtype, device, tuple((p[0], len(p[1])) if p[0] == "array" else p for p in parts))


#: the capability of the checks beyond the vjp in a low-dtype run (bfloat16, float16,
#: autocast): judged in float32 and float64 only, for now
LOW_DTYPE = f"{NOT_CHECKED}: low dtype"


class Beyond:
    def __init__(self, checks: Sequence[str] | None, *, every: bool = False, low: bool = False):
        self.asked = tuple(checks) if checks is not None else None
        self.capabilities = dict.fromkeys(CHECK_NAMES, NOT_CHECKED)
        #: a low-dtype run: only the forward and the vjp are judged
        self.low = low
        if low:
            self.capabilities.update(dict.fromkeys(EXTRA, LOW_DTYPE))
        self.done = 0  # examples that got the default extra checks
        self.hot: set[str] = set()  # default checks that found a wrong value: every example now
        # An asked check torch refuses is one finding, kept aside (not raised: a refusal
        # does not depend on the values, so there is nothing to shrink), and not run again,
        # so that the other asked checks still see every example.
        self.refusals: list[Divergence] = []
        self.stopped: set[str] = set()
        # the campaign profile looks at every example with the default set
        self.every = self.asked is None and every

    @property
    def vjp(self) -> bool:
        """Whether vjp findings count (the forward is checked in any case)."""
        return self.asked is None or "vjp" in self.asked

    def _due(self, sides: Any, sig: tuple) -> list[str]:
        compiled, budget = sides.twin.extra_compiled, sides.twin.extra_budget
        if self.low:
            return []
        if self.asked is not None:
            return [c for c in EXTRA if c in self.asked and c not in self.stopped]
        default = [c for c in EXTRA if vocabulary.CHECKS[c].default]
        if self.every:
            return default
        if self.done < DEFAULT_EXAMPLES and (
            sig in compiled or budget.get(_family(sig), 0) < NEW_SIGNATURES
        ):
            return default
        return [c for c in default if c in self.hot]

    def note_vjp(self, findings: Sequence[Divergence]) -> None:
        if self.vjp:
            real = [f for f in findings if f.check == "vjp" and f.blame != "kink"]
            self.capabilities["vjp"] = worse(self.capabilities["vjp"], "diverged" if real else "ok")

    def before(
        self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str
    ) -> list[Divergence]:
        """The rules due checks judge before the example runs (the contract's: see
        :func:`oracle.judge.checks.contract.check_before`)."""
        found: list[Divergence] = []
        for name in self._due(sides, _signature(sides, values, dtype, device)):
            check = registered(name)
            if check.before is None:
                continue
            try:
                mine = check.before(sides, values, seed, dtype, device)
            except Exception:
                continue  # the oracle's own failure is no finding (the ordinary check runs next)
            if mine:
                self._record(name, "diverged")
                found += mine
        return found

    def after(
        self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str
    ) -> list[Divergence]:
        """The extra checks due on an example whose forward and vjp were judged right."""
        sig = _signature(sides, values, dtype, device)
        due = self._due(sides, sig)
        if not due:
            return []
        if self.asked is None and self.done < DEFAULT_EXAMPLES:
            self.done += 1
            compiled, budget = sides.twin.extra_compiled, sides.twin.extra_budget
            if sig not in compiled:
                compiled.add(sig)
                budget[_family(sig)] = budget.get(_family(sig), 0) + 1
        findings: list[Divergence] = []
        for check in due:
            asked = self.asked is not None
            try:
                found, status = registered(check).run(
                    sides, values, seed, dtype, device, asked=asked, thorough=asked
                )
            except Exception as exc:
                # the oracle's own failure is no finding on the user's function; it shows
                # in the capability table instead of passing silently
                found = []
                status = f"unsupported: the oracle could not run it: {type(exc).__name__}: {exc}"
            self._record(check, status)
            if asked and status.startswith("unsupported"):
                self.stopped.add(check)
                self.refusals += found
                continue
            findings += found
        return findings

    def keep(self, divergences: Sequence[Divergence]) -> list[Divergence]:
        """Under the default set, a run whose vjp diverged does not report what follows
        from it: hvp differentiates that backward, and vmap's per-example gradient runs
        it (their capability still says "diverged")."""
        if self.asked is not None or not any(
            d.check == "vjp" and d.blame != "kink" for d in divergences
        ):
            return list(divergences)
        return [
            d for d in divergences if not (d.check in EXTRA and registered(d.check).follows_vjp(d))
        ]

    def look(self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str) -> None:
        """On a shrunk vjp failure, the default set still learns which transforms torch
        refuses (a refusal does not depend on the values); wrong values found there are
        left out: the first derivative is already wrong."""
        if self.asked is not None or self.low:
            return
        for check in EXTRA:
            if not registered(check).probes_refusal or self.capabilities[check] != NOT_CHECKED:
                continue
            try:
                _, status = registered(check).run(
                    sides, values, seed, dtype, device, asked=False, thorough=True
                )
            except Exception:
                continue
            if status.startswith("unsupported"):
                self._record(check, status)

    def _record(self, check: str, status: str) -> None:
        self.capabilities[check] = worse(self.capabilities[check], status)
        if status == "diverged":
            self.hot.add(check)
