"""Which checks beyond the vjp run on which example, and what they found.

:class:`Beyond` holds, for one dtype x device run, the checks asked for (``checks=``) or
the default set, the capability table built so far, and which examples get the extra
checks: every example for an asked check (and with ``every``: the campaign profile).
The default set looks at :data:`DEFAULT_EXAMPLES` examples chosen by a rule that
depends on the example alone, never on what ran earlier in the process:

* the first example where every named dimension is at least 2 (or at its largest
  allowed size, if that is 1) and some array holds two different values ("wide": a
  row of one element, or a constant array, hides transposes, reductions and second
  derivatives);
* the first wide example where every named dimension is at its largest allowed size;
* further examples of a shape already looked at (no new compilation), up to the count.

Examples whose vjp was judged wrong still get the checks that do not depend on it (the
jvp, the contract; see :attr:`~oracle.judge.checks.base.Check.needs_right_vjp`); kinks
are skipped. A check that has found a wrong value runs on every example from then on
(so that hypothesis can shrink it). A refusal (``unsupported``) is a finding only for
an asked check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import vocabulary
from ..report.capabilities import NOT_CHECKED, worse
from ..report.records import Divergence
from ..vocabulary import CHECK_NAMES, EXTRA
from .checks import registered

__all__ = ["Beyond", "DEFAULT_EXAMPLES", "NEW_SIGNATURES", "LOW_DTYPE"]

#: examples per run that get every extra check under the default set
DEFAULT_EXAMPLES = 3
#: shape signatures the default set compiles its programs for per run (about five JAX
#: compilations each: jvp, hvp, vmap at two positions, per-example vjp): the first wide
#: example's and the largest one's. Compilation, not execution, is what the extra
#: checks cost. Counted per run (on the :class:`Beyond`), so that a verdict does not
#: depend on what ran before in the process.
NEW_SIGNATURES = 2


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


def _largest_sizes(bounds: Mapping[str, Any] | None) -> dict[str, int]:
    """The largest allowed size of each named dimension (bounds as ``normalize_dims``
    gives them: a ``(low, high)`` pair or a list of sizes)."""
    out = {}
    for name, b in (bounds or {}).items():
        sizes = getattr(b, "sizes", None)
        out[name] = int(max(sizes)) if sizes else int(b[1])
    return out


def _varied(values: Sequence[Any]) -> bool:
    """Some floating array of two elements or more holds two different values (or
    there is none)."""
    arrays = [v for v in values if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size > 1]
    return not arrays or any(np.unique(a).size > 1 for a in arrays)


#: the capability of the checks beyond the vjp in a low-dtype run (bfloat16, float16,
#: autocast): judged in float32 and float64 only, for now
LOW_DTYPE = f"{NOT_CHECKED}: low dtype"


class Beyond:
    def __init__(
        self,
        checks: Sequence[str] | None,
        *,
        every: bool = False,
        bounds: Mapping[str, Any] | None = None,
        low: bool = False,
    ):
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
        # the default set's choice of examples (see the module's docstring), per run
        self.top = _largest_sizes(bounds)
        self.compiled: set[tuple] = set()
        self.had: set[str] = set()  # "wide", "largest": looked at already
        self.kind: set[str] = set()  # what the current example is
        self.vjp_wrong = False  # the current example's vjp was judged wrong

    def see(self, dims: Mapping[str, int] | None, values: Sequence[Any]) -> None:
        """The example about to run: is it wide, is it at the largest sizes?"""
        dims = dims or {}
        wide = _varied(values) and all(
            size >= min(2, self.top.get(name, 2)) for name, size in dims.items()
        )
        largest = wide and all(size == self.top.get(name, size) for name, size in dims.items())
        self.kind = {k for k, v in (("wide", wide), ("largest", largest)) if v}
        self.vjp_wrong = False

    @property
    def vjp(self) -> bool:
        """Whether vjp findings count (the forward is checked in any case)."""
        return self.asked is None or "vjp" in self.asked

    def _new_kind(self) -> set[str]:
        return self.kind - self.had

    def _due(self, sides: Any, sig: tuple) -> list[str]:
        if self.low:
            return []
        default = [c for c in EXTRA if vocabulary.CHECKS[c].default]
        if self.asked is not None:
            due = [c for c in EXTRA if c in self.asked and c not in self.stopped]
        elif self.every:
            due = default
        elif self.done < DEFAULT_EXAMPLES and (
            self._new_kind() or ("wide" in self.kind and sig in self.compiled)
        ):
            due = default
        else:
            due = [c for c in default if c in self.hot]
        if self.vjp_wrong:
            due = [c for c in due if not registered(c).needs_right_vjp]
        return due

    def note_vjp(self, findings: Sequence[Divergence]) -> list[Divergence]:
        """Record the example's vjp verdict (and the contract's, for what torch_fn wrote
        into, found on every example by the vjp's own call); the findings to keep (the
        contract's only when it is in the set). An example where a side raised, or whose
        outputs differ, says nothing about the vjp (its gradients were not compared)."""
        contract = self.asked is None or "contract" in self.asked
        findings = [f for f in findings if f.check != "contract" or contract]
        if self.vjp and not any(f.check in ("error", "forward") for f in findings):
            real = [f for f in findings if f.check == "vjp" and f.blame != "kink"]
            self.capabilities["vjp"] = worse(self.capabilities["vjp"], "diverged" if real else "ok")
        if any(f.check == "contract" for f in findings):
            self._record("contract", "diverged")
        return list(findings)

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
            except KeyboardInterrupt:
                raise
            except BaseException:  # sys.exit() in user code too: the ordinary check, which
                continue  # runs next, reports what the call does; a failure here is no finding
            if mine:
                self._record(name, "diverged")
                found += mine
        return found

    def after(
        self, sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str
    ) -> list[Divergence]:
        """The extra checks due on an example whose forward was judged right (and its
        vjp, or the checks that do not need a right vjp: :meth:`vjp_was_wrong`)."""
        sig = _signature(sides, values, dtype, device)
        due = self._due(sides, sig)
        if not due:
            return []
        if self.asked is None and not self.every and self.done < DEFAULT_EXAMPLES:
            if self._new_kind() or ("wide" in self.kind and sig in self.compiled):
                self.done += 1
                self.had |= self.kind
                self.compiled.add(sig)
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

    def vjp_was_wrong(self) -> None:
        """The current example's vjp was judged wrong: only the checks that do not
        depend on it are due there."""
        self.vjp_wrong = True

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
