"""The hypothesis loop: one search per dtype x device, shrinking real findings only.

Each run is a hypothesis test whose body is :func:`oracle.checks.check_example`. A real
finding raises, so hypothesis shrinks it and replays the minimal example last; a kink
is recorded and the search moves on (it neither fails the test nor pulls shrinking
toward kinks); an example both sides reject is discarded. The database key is made
from the pair's name, dtype and device, so hypothesis's example database replays a
past failure of that very run first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable

from . import progress
from .beyond import Beyond
from .bridge import precision_scope
from .capability import EXTRA
from .checks import BothRaised, Hung, Sides, check_example, settings_findings
from .database import database_key, seeded, set_database_key
from .findings import Verdict, divergence
from .guard import SideError, raised_by
from .interrupt import surfaced_interrupts
from .replay import example_dict, reproducer
from .report import Divergence, RunSummary
from .sides import cotangents_for
from .validation import InputSpecError, InputSpecTypeError
from .verdicts import side_error

__all__ = ["run_config", "RunResult"]

#: kink findings kept per run, to show in the report (all are counted)
_KEEP_KINKS = 3
#: where user code ran when the checks beyond the vjp call it (for error findings)
_BEFORE = "forward or backward under the contract checks"
_AFTER = "calls under the checks beyond the vjp"


class _Diverged(Exception):
    def __init__(self, findings: list[Divergence]):
        super().__init__("; ".join(f.detail for f in findings))
        self.findings = findings


# One exception type per kind of finding: hypothesis tells distinct failures apart by
# type, so a wrong forward and a wrong gradient are each shrunk and reported.
class _ForwardDiverged(_Diverged):
    pass


class _GradientDiverged(_Diverged):
    pass


class _ErrorDiverged(_Diverged):
    pass


_KIND = {"forward": _ForwardDiverged, "vjp": _GradientDiverged, "error": _ErrorDiverged}
_KIND.update({c: type(f"_{c.capitalize()}Diverged", (_Diverged,), {}) for c in EXTRA})


def _collect(exc: BaseException) -> list[Divergence]:
    if isinstance(exc, _Diverged):
        return exc.findings
    if isinstance(exc, BaseExceptionGroup):
        found = [d for e in exc.exceptions for d in _collect(e)]
        order = {"error": 0, "forward": 1, "vjp": 2}
        return sorted(found, key=lambda d: order.get(d.check, 3))
    return []


def _internal(exc: BaseException, name: str, dtype: str, device: str) -> Divergence:
    if isinstance(exc, (InputSpecError, InputSpecTypeError)):
        why = f"an input spec failed on a drawn value: {exc}"
    elif isinstance(exc, SystemExit):
        why = f"sys.exit({exc.code!r}) was called outside both sides' calls (by an input strategy?)"
    else:
        why = f"the oracle itself failed on this pair: {type(exc).__name__}: {exc}"
    return divergence(
        "error", Verdict("unknown", "error", why), dtype=dtype, device=device, name=name
    )


@dataclass
class RunResult:
    summary: RunSummary
    divergences: list[Divergence] = field(default_factory=list)


def run_config(
    sides: Sides,
    strategy: st.SearchStrategy,
    *,
    name: str,
    dtype: str,
    device: str,
    max_examples: int,
    seed: int | None,
    parent: settings | None,
    fn_refs: dict[str, Any],
    checks: Sequence[str] | None = None,
) -> RunResult:
    summary = RunSummary(dtype=dtype, device=device)
    beyond = Beyond(checks)  # which checks beyond the vjp run where; the capability table
    summary.capabilities = beyond.capabilities
    kinks: list[Divergence] = []
    last_real: list[list[Divergence]] = []
    tally: dict[str, int] = {"compared": 0}
    changed: dict[str, Divergence] = {}  # global settings user code changed, once each

    def note_changes(ex: Any) -> None:
        for f in settings_findings(sides, dtype, device):
            if f.detail not in changed:
                attach([f], ex)
                changed[f.detail] = f

    def attach(findings: list[Divergence], ex: Any) -> None:
        info = example_dict(ex, sides.specs)
        try:
            with precision_scope(dtype, device):
                cots = cotangents_for(
                    sides.twin.output_shapes(ex.values, dtype, device), ex.cotangent_seed
                )
        except Exception:
            cots = []
        for f in findings:
            f.name = name
            f.example = info
            f.replay_data = {
                "torch_fn": sides.torch.fn,
                "jax_fn": sides.twin.fn,
                "specs": sides.specs,
                "values": info["args"],
                "cotangent_seed": ex.cotangent_seed,
            }
            if not f.is_kink:
                f.reproducer = reproducer(f, info, fn_refs, sides.specs, cots)

    def guarded(ex: Any, stage: str, fn: Any, *args: Any) -> Any:
        """The checks beyond the vjp call user code too: under the same guard (a time
        limit; global settings put back and reported)."""
        try:
            return sides.torch.guard.call("torch", stage, fn, *args)
        except SideError as err:
            if not err.timed_out and isinstance(err.exc, Exception):
                raise err.exc from None
            if not err.timed_out:  # sys.exit() and other BaseExceptions: a finding, no exit
                err.side = raised_by(err.exc, err.side)
                fail([divergence("error", side_error(err), dtype=dtype, device=device)], ex)
            hung = divergence("error", side_error(err), dtype=dtype, device=device)
            attach([hung], ex)
            raise Hung(hung) from None

    def fail(real: list[Divergence], ex: Any) -> None:
        attach(real, ex)
        last_real[:] = [real]
        raise _KIND[real[0].check](real)

    def body(ex: Any) -> None:
        summary.examples += 1
        progress.example(dtype, device, summary.examples, lambda: example_dict(ex, sides.specs))
        pre = guarded(
            ex, _BEFORE, beyond.before, sides, ex.values, ex.cotangent_seed, dtype, device
        )
        if pre:
            fail(pre, ex)
        try:
            findings = check_example(sides, ex.values, ex.cotangent_seed, dtype, device, tally)
        except Hung as hung:
            attach([hung.finding], ex)
            raise
        except BothRaised:
            note_changes(ex)
            summary.rejected += 1
            hypothesis.reject()
        note_changes(ex)
        if not beyond.vjp:  # (kinks stay: the extra checks must skip them all the same)
            findings = [f for f in findings if f.check != "vjp" or f.is_kink]
        beyond.note_vjp(findings)
        real = [f for f in findings if not f.is_kink]
        if real:
            fail(real, ex)
        if not findings:  # the extra checks skip kinks: both conventions are valid there
            refused = len(beyond.refusals)
            extra = guarded(
                ex, _AFTER, beyond.after, sides, ex.values, ex.cotangent_seed, dtype, device
            )
            attach(beyond.refusals[refused:], ex)
            if extra:
                fail(extra, ex)
        if findings:
            summary.kinks += 1
            if len(kinks) < _KEEP_KINKS:
                attach(findings, ex)
                kinks.extend(findings[:1])

    set_database_key(body, database_key(name, dtype, device, sides.specs))
    test_settings = settings(
        parent,
        max_examples=max_examples,
        deadline=None,  # first calls compile with XLA; no timing failures
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
        verbosity=Verbosity.quiet,
        phases=[p for p in (parent or settings.default).phases if p is not Phase.explain],
        print_blob=False,
    )
    # seeded, and still replaying the example database first (see oracle.database)
    test = seeded(given(strategy)(body), seed, test_settings)
    start = time.perf_counter()
    divergences: list[Divergence] = []
    try:
        with surfaced_interrupts():  # never taken for a finding (see oracle.interrupt)
            test()
    except KeyboardInterrupt:
        summary.interrupted = True  # what was found so far is kept; nothing more runs
        divergences = last_real[0] if last_real else []
    except Hung as hung:
        divergences = [hung.finding]
    except Flaky as exc:
        divergences = last_real[0] if last_real else _collect(exc)
        for d in divergences:
            d.detail += (
                " (the example did not fail again when replayed: nondeterministic function?)"
            )
    except (_Diverged, BaseExceptionGroup) as found:
        divergences = _collect(found) or [_internal(found, name, dtype, device)]
    except Unsatisfiable:
        why = (
            "both sides raised on every example: check the input specs"
            if summary.rejected
            else "hypothesis could not draw a single example from the input specs"
        )
        divergences = [
            divergence(
                "error", Verdict("unknown", "error", why), dtype=dtype, device=device, name=name
            )
        ]
    except (Exception, SystemExit, GeneratorExit) as exc:  # an oracle bug (or a user's
        # strategy that exits) must not crash the run: report it
        divergences = [_internal(exc, name, dtype, device)]
    finally:
        summary.seconds = time.perf_counter() - start
    for d in divergences:  # the capability table, from the shrunk vjp failure
        if d.check == "vjp" and d.replay_data and not summary.interrupted:
            data = d.replay_data
            beyond.look(sides, tuple(data["values"]), data["cotangent_seed"], dtype, device)
            break
    if not divergences and tally["compared"] == 0 and not summary.interrupted:
        divergences = [_vacuous(summary, name, dtype, device)]
    found = list(changed.values()) + beyond.keep(divergences) + beyond.refusals
    return RunResult(summary, found + kinks)


def _vacuous(summary: RunSummary, name: str, dtype: str, device: str) -> Divergence:
    """A run that compared nothing is no pass."""
    if summary.examples and summary.rejected == summary.examples:
        why = "both sides raised on every example"
    elif summary.examples:
        why = (
            "every output and gradient was empty or not finite on both sides in all "
            f"{summary.examples} examples (only empty tensors drawn, or NaN everywhere)"
        )
    else:
        why = "no example was run"
    why = f"nothing was compared: {why}; check the input specs and dims"
    return divergence(
        "error", Verdict("unknown", "error", why), dtype=dtype, device=device, name=name
    )
