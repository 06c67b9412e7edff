"""The hypothesis loop: one search per dtype x device, shrinking real findings only.

Each run is a hypothesis test whose body is :func:`oracle.judge.checks.vjp.check_example`. A real
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

from ..judge.blame import side_error
from ..judge.checks.vjp import BothRaised, Hung, check_example, settings_findings
from ..judge.findings import Verdict, divergence
from ..judge.plan import Beyond
from ..pair import progress
from ..pair.bridge import low_dtype_of, precision_scope
from ..pair.guard import SideError, raised_by
from ..pair.outputs import cotangents_for
from ..pair.sides import Sides
from ..report.records import Divergence, RunSummary
from ..report.replay import example_dict, reproducer
from ..validation import InputSpecError, InputSpecTypeError
from ..vocabulary import EXTRA
from .constants import pair_constants, pinned_constants
from .database import database_key, seeded, set_database_key
from .interrupt import surfaced_interrupts
from .profiles import CAMPAIGN_PROFILE

__all__ = ["run_config", "RunResult"]

#: kink findings kept per run, to show in the report (all are counted)
_KEEP_KINKS = 3
#: where user code ran when the checks beyond the vjp call it (for error findings)
_BEFORE = "forward or backward under the contract checks"
_AFTER = "calls under the checks beyond the vjp"


#: examples that both sides reject, with none accepted, before the run gives up
_GIVE_UP = 50


class _AllRejected(BaseException):
    """Both sides raised on the first :data:`_GIVE_UP` examples: the run ends (a
    BaseException so that hypothesis does not catch it)."""


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
        why, reason = f"an input spec failed on a drawn value: {exc}", "spec_failed"
    elif isinstance(exc, SystemExit):
        why = f"sys.exit({exc.code!r}) was called outside both sides' calls (by an input strategy?)"
        reason = "raised"
    else:
        why = f"the oracle itself failed on this pair: {type(exc).__name__}: {exc}"
        reason = "oracle_failed"
    verdict = Verdict("unknown", "error", why, reason=reason)
    return divergence("error", verdict, dtype=dtype, device=device, name=name)


def campaign_profile_loaded() -> bool:
    """Whether hypothesis's current profile is the campaign's (every example gets the
    default set of checks beyond the vjp)."""
    return settings.get_current_profile_name() == CAMPAIGN_PROFILE


@dataclass
class RunResult:
    summary: RunSummary
    divergences: list[Divergence] = field(default_factory=list)
    #: the examples the real findings were shown on (shrunk), for a later run to try first
    failing: list[Any] = field(default_factory=list)


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
    bounds: Any = None,
    first: Sequence[Any] = (),
    hot: Sequence[str] = (),
) -> RunResult:
    """One hypothesis search of the pair in ``dtype`` on ``device``: its summary and
    findings (settings user code changed, real ones shrunk, refusals, a few kinks).
    ``bounds``: the dimensions' bounds (``normalize_dims``), for the default set's choice
    of examples (:mod:`oracle.judge.plan`). ``first``: examples to run before the search
    (the shrunk examples of an earlier dtype's findings, :attr:`RunResult.failing`): one
    that fails here too ends the run with its findings, already shrunk, and hypothesis
    draws nothing; otherwise the search runs as usual. ``hot``: the checks beyond the vjp
    that found something in an earlier dtype's run: they look at every example here, as
    after a finding of their own (:class:`oracle.judge.plan.Beyond`)."""
    run = _Run(sides, name, dtype, device, fn_refs, checks, bounds)
    run.beyond.hot |= set(hot) & set(EXTRA)
    test = run.test(strategy, max_examples, seed, parent, first)
    start = time.perf_counter()
    try:
        divergences = run.search(test)
    finally:
        run.summary.seconds = time.perf_counter() - start
    found = run.finish(divergences)
    failing = [run.examples[id(d)] for d in found if not d.is_kink and id(d) in run.examples]
    return RunResult(run.summary, found, list({id(e): e for e in failing}.values()))


class _Run:
    """The state of one search: the capability table and scheduling of the checks
    beyond the vjp, the elements compared, kinks kept, settings user code changed."""

    def __init__(
        self,
        sides: Sides,
        name: str,
        dtype: str,
        device: str,
        fn_refs: dict[str, Any],
        checks: Sequence[str] | None,
        bounds: Any = None,
    ):
        self.sides, self.name, self.dtype, self.device = sides, name, dtype, device
        self.fn_refs = fn_refs
        self.summary = RunSummary(dtype=dtype, device=device)
        # which checks beyond the vjp run where (the campaign profile: every example)
        self.beyond = Beyond(
            checks,
            every=campaign_profile_loaded(),
            bounds=bounds,
            low=low_dtype_of(dtype) is not None,
        )
        self.summary.capabilities = self.beyond.capabilities
        self.kinks: list[Divergence] = []
        self.last_real: list[Divergence] | None = None
        self.tally: dict[str, int] = {"compared": 0}
        self.changed: dict[str, Divergence] = {}  # global settings user code changed, once each
        self.both_raised = ""  # what both sides raised on the first example they both rejected
        self.examples: dict[int, Any] = {}  # id of a raised finding -> its example

    # --- one example ------------------------------------------------------------------

    def body(self, ex: Any) -> None:
        """The hypothesis test's body: raises on a real finding (to be shrunk)."""
        sides, dtype, device, beyond = self.sides, self.dtype, self.device, self.beyond
        self.summary.examples += 1
        progress.example(
            dtype, device, self.summary.examples, lambda: example_dict(ex, sides.specs)
        )
        beyond.see(getattr(ex, "dims", None), ex.values)
        pre = self.guarded(
            ex, _BEFORE, beyond.before, sides, ex.values, ex.cotangent_seed, dtype, device
        )
        if pre:
            self.fail(pre, ex)
        try:
            findings = check_example(sides, ex.values, ex.cotangent_seed, dtype, device, self.tally)
        except Hung as hung:
            self.attach([hung.finding], ex)
            raise
        except BothRaised as both:
            self.note_changes(ex)
            self.summary.rejected += 1
            self.both_raised = self.both_raised or str(both)
            if self.summary.rejected == self.summary.examples >= _GIVE_UP:
                raise _AllRejected() from None
            hypothesis.reject()
        self.note_changes(ex)
        if not beyond.vjp:  # (kinks stay: the extra checks must skip them all the same)
            findings = [f for f in findings if f.check != "vjp" or f.is_kink]
        findings = beyond.note_vjp(findings)
        real = [f for f in findings if not f.is_kink]
        if real and all(f.check == "vjp" for f in real):
            # a wrong vjp: the checks that do not depend on it still judge the example,
            # so that a Function wrong in two modes shows both
            beyond.vjp_was_wrong()
            refused = len(beyond.refusals)
            real += self.guarded(
                ex, _AFTER, beyond.after, sides, ex.values, ex.cotangent_seed, dtype, device
            )
            self.attach(beyond.refusals[refused:], ex)
        if real:
            self.fail(real, ex)
        if not findings:  # the extra checks skip kinks: both conventions are valid there
            refused = len(beyond.refusals)
            extra = self.guarded(
                ex, _AFTER, beyond.after, sides, ex.values, ex.cotangent_seed, dtype, device
            )
            self.attach(beyond.refusals[refused:], ex)
            if extra:
                self.fail(extra, ex)
            return
        self.summary.kinks += 1
        if len(self.kinks) < _KEEP_KINKS:
            self.attach(findings, ex)
            self.kinks.extend(findings[:1])

    def note_changes(self, ex: Any) -> None:
        for f in settings_findings(self.sides, self.dtype, self.device):
            if f.detail not in self.changed:
                self.attach([f], ex)
                self.changed[f.detail] = f

    def attach(self, findings: list[Divergence], ex: Any) -> None:
        """The pair's name, the example, what replays it."""
        sides = self.sides
        info = example_dict(ex, sides.specs)
        try:
            with precision_scope(self.dtype, self.device):
                shapes = sides.twin.output_shapes(ex.values, self.dtype, self.device)
            cots = cotangents_for(shapes, ex.cotangent_seed)
        except Exception:
            cots = []
        for f in findings:
            f.name = self.name
            f.example = info
            f.replay_data = {
                "torch_fn": sides.torch.fn,
                "jax_fn": sides.twin.fn,
                "specs": sides.specs,
                "values": info["args"],
                "cotangent_seed": ex.cotangent_seed,
            }
            if not f.is_kink:
                f.reproducer = reproducer(f, info, self.fn_refs, sides.specs, cots)

    def guarded(self, ex: Any, stage: str, fn: Any, *args: Any) -> Any:
        """The checks beyond the vjp call user code too: under the same guard (a time
        limit; global settings put back and reported; ``sys.exit()`` a finding)."""
        try:
            return self.sides.torch.guard.call("torch", stage, fn, *args)
        except SideError as err:
            if not err.timed_out and isinstance(err.exc, Exception):
                raise err.exc from None
            if not err.timed_out:  # sys.exit() and other BaseExceptions: a finding, no exit
                err.side = raised_by(err.exc, err.side)
                self.fail(
                    [divergence("error", side_error(err), dtype=self.dtype, device=self.device)], ex
                )
            hung = divergence("error", side_error(err), dtype=self.dtype, device=self.device)
            self.attach([hung], ex)
            raise Hung(hung) from None

    def fail(self, real: list[Divergence], ex: Any) -> None:
        self.attach(real, ex)
        self.examples.update((id(f), ex) for f in real)
        self.last_real = real
        raise _KIND[real[0].check](real)

    # --- the search -------------------------------------------------------------------

    def test(
        self,
        strategy: st.SearchStrategy,
        max_examples: int,
        seed: int | None,
        parent: Any,
        first: Sequence[Any] = (),
    ) -> Any:
        """The hypothesis test: seeded, and still replaying the example database first
        (see :mod:`oracle.search.database`); ``first`` as explicit examples before both."""

        def body(ex: Any) -> None:  # a function of its own: hypothesis keeps state on it
            self.body(ex)

        set_database_key(body, database_key(self.name, self.dtype, self.device, self.sides.specs))
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
        test = given(strategy)(body)
        for ex in reversed(first):  # hypothesis runs explicit examples last-applied first
            test = hypothesis.example(ex)(test)
        return seeded(test, seed, test_settings)

    def search(self, test: Any) -> list[Divergence]:
        """Run the test; what it found, shrunk (an oracle bug is reported, not raised)."""
        name, dtype, device = self.name, self.dtype, self.device
        try:
            # never taken for a finding (see .interrupt); the draws depend on the seed and
            # the pair's own code, not on what else is imported (see .constants)
            pool = pair_constants(self.sides.torch.fn, self.sides.twin.fn)
            with surfaced_interrupts(), pinned_constants(pool):
                test()
        except KeyboardInterrupt:
            self.summary.interrupted = True  # what was found so far is kept; nothing more runs
            return self.last_real or []
        except Hung as hung:
            return [hung.finding]
        except _AllRejected:
            return [self.all_rejected()]
        except Flaky as exc:
            divergences = self.last_real or _collect(exc)
            for d in divergences:
                d.detail += (
                    " (the example did not fail again when replayed: nondeterministic function?)"
                )
            return divergences
        except (_Diverged, BaseExceptionGroup) as found:
            return _collect(found) or [_internal(found, name, dtype, device)]
        except Unsatisfiable:
            if self.summary.rejected:
                return [self.all_rejected()]
            why = "hypothesis could not draw a single example from the input specs"
            verdict = Verdict("unknown", "error", why, reason="nothing_compared")
            return [divergence("error", verdict, dtype=dtype, device=device, name=name)]
        except (Exception, SystemExit, GeneratorExit) as exc:  # an oracle bug (or a user's
            # strategy that exits) must not crash the run: report it
            return [_internal(exc, name, dtype, device)]
        return []

    def all_rejected(self) -> Divergence:
        """Both sides raised on every example: what they raised, first time."""
        why = (
            f"both sides raised on every example ({self.summary.rejected} tried), e.g. "
            f"{self.both_raised}: check the input specs"
        )
        verdict = Verdict("unknown", "error", why, reason="nothing_compared")
        return divergence("error", verdict, dtype=self.dtype, device=self.device, name=self.name)

    def finish(self, divergences: list[Divergence]) -> list[Divergence]:
        """The run's findings: the capability table completed from the shrunk vjp
        failure, a run that compared nothing reported, refusals and kinks added."""
        for d in divergences:
            if d.check == "vjp" and d.replay_data and not self.summary.interrupted:
                data = d.replay_data
                values = tuple(data["values"])
                # user code again: its global settings put back and reported
                with self.sides.torch.guard.scope("torch", "checks beyond the vjp"):
                    self.beyond.look(
                        self.sides, values, data["cotangent_seed"], self.dtype, self.device
                    )
                for f in settings_findings(self.sides, self.dtype, self.device):
                    f.name, f.example = self.name, d.example
                    self.changed.setdefault(f.detail, f)
                break
        if not divergences and self.tally["compared"] == 0 and not self.summary.interrupted:
            divergences = [_vacuous(self.summary, self.tally, self.name, self.dtype, self.device)]
        kept = self.beyond.keep(divergences)
        out = list(self.changed.values()) + kept + self.beyond.refusals + self.kinks
        _say_why_unshown(self.summary.capabilities, divergences, out)
        return out


def _say_why_unshown(
    capabilities: dict[str, str], found: list[Divergence], shown: list[Divergence]
) -> None:
    """The capability table says only what the report shows: a check that diverged on
    some example but has no finding in the report says why (its finding only repeated
    the wrong vjp, or the shrunk example the report shows is another failure's)."""
    for check in EXTRA:
        # (a check may report as another: opcheck's failures are contract findings)
        if capabilities.get(check) != "diverged" or any(
            d.check == check or d.phase == check for d in shown
        ):
            continue
        if any(d.check == check for d in found):
            why = "only where the vjp is wrong too (not shown: it follows from the vjp)"
        else:
            why = "on an example the search moved past (the report shows another failure's)"
        capabilities[check] = f"diverged: {why}"


def _vacuous(
    summary: RunSummary, tally: dict[str, int], name: str, dtype: str, device: str
) -> Divergence:
    """A run that compared nothing is no pass."""
    if summary.examples and summary.rejected == summary.examples:
        why = "both sides raised on every example"
    elif summary.examples and not tally.get("floating_outputs"):
        why = (
            "nothing was compared: every output of both sides is an integer tensor, so "
            "nothing is differentiable; return floating values (a max's values, not its "
            "indices)"
        )
        verdict = Verdict("unknown", "error", why, reason="nothing_compared")
        return divergence("error", verdict, dtype=dtype, device=device, name=name)
    elif summary.examples:
        why = (
            "every output and gradient was empty or not finite on both sides in all "
            f"{summary.examples} examples (only empty tensors drawn, or NaN everywhere)"
        )
    else:
        why = "no example was run"
    why = f"nothing was compared: {why}; check the input specs and dims"
    verdict = Verdict("unknown", "error", why, reason="nothing_compared")
    return divergence("error", verdict, dtype=dtype, device=device, name=name)
