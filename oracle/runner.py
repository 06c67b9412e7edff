"""The hypothesis loop: one search per dtype x device, shrinking real findings only.

Each run is a hypothesis test whose body is :func:`oracle.checks.check_example`. A real
finding raises, so hypothesis shrinks it and replays the minimal example last; a kink
is recorded and the search moves on (it neither fails the test nor pulls shrinking
toward kinks); an example both sides reject is discarded. The database key is made
from the pair's name, dtype and device, so hypothesis's example database replays a
past failure of that very run first.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable

from .beyond import Beyond
from .bridge import precision_scope
from .capability import EXTRA
from .checks import BothRaised, Sides, check_example
from .replay import example_dict, reproducer
from .report import Divergence, RunSummary
from .sides import cotangents_for

__all__ = ["run_config", "RunResult"]

#: kink findings kept per run, to show in the report (all are counted)
_KEEP_KINKS = 3


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
    return Divergence(
        check="error",
        argument=None,
        blame="unknown",
        diagnosis="error",
        detail=f"the oracle itself failed on this pair: {type(exc).__name__}: {exc}",
        dtype=dtype,
        device=device,
        name=name,
    )


@dataclass
class RunResult:
    summary: RunSummary
    divergences: list[Divergence] = field(default_factory=list)


def _digest(name: str, dtype: str, device: str, specs: Any) -> bytes:
    return hashlib.sha256(f"oracle:{name}:{dtype}:{device}:{specs!r}".encode()).digest()


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
            f.context = {"sides": sides, "example": ex, "dtype": dtype, "device": device}
            if f.blame != "kink":
                f.reproducer = reproducer(f, info, fn_refs, sides.specs, cots)

    def fail(real: list[Divergence], ex: Any) -> None:
        attach(real, ex)
        last_real[:] = [real]
        raise _KIND[real[0].check](real)

    def body(ex: Any) -> None:
        summary.examples += 1
        pre = beyond.before(sides, ex.values, ex.cotangent_seed, dtype, device)
        if pre:
            fail(pre, ex)
        try:
            findings = check_example(sides, ex.values, ex.cotangent_seed, dtype, device)
        except BothRaised:
            summary.rejected += 1
            hypothesis.reject()
        if not beyond.vjp:  # (kinks stay: the extra checks must skip them all the same)
            findings = [f for f in findings if f.check != "vjp" or f.blame == "kink"]
        beyond.note_vjp(findings)
        real = [f for f in findings if f.blame != "kink"]
        if real:
            fail(real, ex)
        if not findings:  # the extra checks skip kinks: both conventions are valid there
            refused = len(beyond.refusals)
            extra = beyond.after(sides, ex.values, ex.cotangent_seed, dtype, device)
            attach(beyond.refusals[refused:], ex)
            if extra:
                fail(extra, ex)
        if findings:
            summary.kinks += 1
            if len(kinks) < _KEEP_KINKS:
                attach(findings, ex)
                kinks.extend(findings[:1])

    body._hypothesis_internal_add_digest = _digest(name, dtype, device, sides.specs)  # type: ignore[attr-defined]
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
    test = given(strategy)(test_settings(body))
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    start = time.perf_counter()
    divergences: list[Divergence] = []
    try:
        test()
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
            Divergence(
                check="error",
                argument=None,
                blame="unknown",
                diagnosis="error",
                detail=why,
                dtype=dtype,
                device=device,
                name=name,
            )
        ]
    except Exception as exc:  # an oracle bug must not crash the run: report it
        divergences = [_internal(exc, name, dtype, device)]
    finally:
        summary.seconds = time.perf_counter() - start
    for d in divergences:  # the capability table, from the shrunk vjp failure
        if d.check == "vjp" and isinstance(d.context, dict) and "example" in d.context:
            ex = d.context["example"]
            beyond.look(sides, ex.values, ex.cotangent_seed, dtype, device)
            break
    return RunResult(summary, beyond.keep(divergences) + beyond.refusals + kinks)
