"""The checks of one example in one dtype on one device: errors, forward, vjp.

:func:`check_example` calls both sides once, compares outputs then gradients with
:mod:`oracle.judge.tolerance`, and hands every disagreement to :mod:`oracle.judge.blame` for
blame and diagnosis. Agreeing examples cost one torch forward+backward and one
compiled ``jax.vjp``; the float64 reference and finite differences are paid only
when something disagrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...pair.bridge import cast_values, low_dtype_of, precision_scope, round_to
from ...pair.guard import SideError
from ...pair.outputs import Outputs, cotangents_for
from ...pair.sides import Sides
from ...report.records import Divergence
from ..blame import (
    compiled_differs,
    disconnected,
    float32_output,
    judge_gradient,
    output_mismatch,
    output_precision,
    output_rounding_only,
    side_error,
)
from ..diagnosis import rounding_view
from ..findings import Verdict, divergence
from ..low_precision import input_values, judge_low
from ..probe import Probe
from ..rounding import OutputRounding
from ..tolerance import Comparison, compare, float64_first, tolerance_of
from .contract import mutation_findings

__all__ = ["BothRaised", "Hung", "check_example", "settings_findings"]


class BothRaised(Exception):
    """Both sides rejected the example: not a divergence, hypothesis moves on."""


class Hung(BaseException):
    """A side ran past its time limit: the run ends here, with this finding (shrinking a
    hang would repeat it); so does a pair the oracle cannot check (a complex output).
    A BaseException so that hypothesis does not catch it."""

    def __init__(self, finding: Divergence):
        super().__init__(finding.detail)
        self.finding = finding


def _error_finding(err: SideError, dtype: str, device: str) -> Divergence:
    return divergence("error", side_error(err), dtype=dtype, device=device)


def _structure_problem(t: Outputs, j: Outputs) -> str | None:
    if len(t.leaves) != len(j.leaves):
        return f"torch returned {len(t.leaves)} output(s), the twin {len(j.leaves)}"
    for i, (a, b) in enumerate(zip(t.leaves, j.leaves, strict=True)):
        if a.shape != b.shape:
            return (
                f"output {i} has shape {tuple(a.shape)} in torch and {tuple(b.shape)} in the twin"
            )
        if (a.dtype.kind == "f") != (b.dtype.kind == "f"):
            return f"output {i} is {a.dtype} in torch and {b.dtype} in the twin"
    return None


def _forward(detail: str, dtype: str, device: str, **extra: Any) -> Divergence:
    """A forward finding: who is right cannot be told from outputs alone."""
    verdict = Verdict(
        "unknown", extra.pop("diagnosis", "mismatch"), detail, reason=extra.pop("reason", "")
    )
    return divergence("forward", verdict, dtype=dtype, device=device, **extra)


def _largest(arrays: Sequence[np.ndarray]) -> float:
    """The largest magnitude over the finite floating arrays (0 if none)."""
    return max(
        (
            float(np.max(np.abs(x)))
            for x in arrays
            if x.size and x.dtype.kind == "f" and np.all(np.isfinite(x))
        ),
        default=0.0,
    )


class _Reference:
    """The twin in float64 at the same point, computed at most once per example."""

    def __init__(self, sides: Sides, values, device, cots, known: Outputs | None = None):
        self.sides, self.values, self.device, self.cots = sides, values, device, cots
        self._out: Outputs | None = known

    def get(self) -> Outputs:
        if self._out is None:
            with precision_scope("float64", self.device):
                self._out = self.sides.twin.run(self.values, "float64", self.device, self.cots)
        return self._out


def _judge(
    sides: Sides,
    actual: np.ndarray,
    lowp: np.ndarray,
    dtype: str,
    ref: _Reference,
    index: tuple[str, int],
    fallback_scale: Callable[[], float],
) -> tuple[Comparison, np.ndarray]:
    """Compare torch's ``actual`` with the twin: fast path, then the float64 reference."""
    forward = index[0] == "out"
    argument = None if forward else sides.diff_positions[index[1]]
    tol = tolerance_of(sides, dtype, forward=forward, argument=argument)
    c = compare(actual, lowp, tol, scale=fallback_scale)
    if c.ok or tol.k is None:
        return c, lowp
    r = ref.get()
    expected = r.leaves[index[1]] if index[0] == "out" else r.grads[index[1]]
    return compare(actual, expected, tol, twin_lowp=lowp, scale=fallback_scale), expected


def settings_findings(sides: Sides, dtype: str, device: str) -> list[Divergence]:
    """User code that changed a global setting since the last call (undone already by
    the guard). Not shrunk: a twin changes them when traced, which happens once."""
    changes, sides.torch.guard.changes[:] = list(sides.torch.guard.changes), []
    return [
        divergence(
            "error",
            Verdict(side, "error", text, reason="setting_changed"),
            dtype=dtype,
            device=device,
        )
        for side, text in dict.fromkeys(changes)
    ]


def _compared(t: Outputs, j: Outputs) -> int:
    """How many elements both sides gave finite values for (outputs and gradients)."""
    n = 0
    for a, b in zip(t.leaves + t.grads, j.leaves + j.grads, strict=False):
        if a is None or b is None or a.dtype.kind != "f" or a.shape != b.shape:
            continue
        n += int(np.count_nonzero(np.isfinite(a) & np.isfinite(b)))
    return n


def _compiled_vs_eager(
    sides: Sides, values: Sequence[Any], dtype: str, device: str, i: int, compiled: np.ndarray
) -> Divergence | None:
    """On a forward mismatch, the twin run eagerly: if XLA compiled it to a different
    result, the twin is not a reference at this example (and the reproducer, which runs
    it compiled as the oracle did, shows the compiled value)."""
    try:
        with precision_scope(dtype, device):
            eager = sides.twin.forward_eager(values, dtype, device)[i]
    except Exception:
        return None
    c = compare(compiled, eager, tolerance_of(sides, dtype, forward=True))
    if c.ok:
        return None
    return divergence("forward", compiled_differs(i, c), dtype=dtype, device=device)


def check_example(
    sides: Sides,
    values: Sequence[Any],
    cot_seed: int,
    dtype: str,
    device: str,
    tally: dict[str, int] | None = None,
) -> list[Divergence]:
    """Every finding for one example (kinks included, marked ``blame="kink"``).

    ``tally["compared"]`` (when given) counts the elements both sides gave finite values
    for, so that a run where nothing was compared is not taken for a pass;
    ``tally["floating_outputs"]`` the floating outputs of both sides (none: integers only). Raises
    :class:`Hung` when a side runs past its time limit."""
    findings = _check(sides, values, cot_seed, dtype, device, tally)
    for f in findings:
        if f.reason in ("timeout", "not_supported"):
            raise Hung(f)
    return findings


def _check(
    sides: Sides,
    values: Sequence[Any],
    cot_seed: int,
    dtype: str,
    device: str,
    tally: dict[str, int] | None,
) -> list[Divergence]:
    values = cast_values(values, sides.specs, dtype)  # once, for both sides
    ref64 = None
    if float64_first(sides, dtype):
        quick = _against_reference(sides, values, cot_seed, dtype, device, tally)
        if isinstance(quick, list):
            return quick
        called, ref64 = quick
    else:
        called = _call_both(sides, values, cot_seed, dtype, device)
    if isinstance(called, Divergence):
        if dtype.startswith("autocast-") and called.blame == "torch" and called.reason == "raised":
            _blame_autocast(called, sides, values, cot_seed, device)
        return [called]
    return _judged(sides, values, called, cot_seed, dtype, device, tally, ref64)


def _against_reference(sides, values, cot_seed, dtype, device, tally):
    """A float32 example, torch against the twin's float64 program: ``[]`` when every
    output and gradient is within the tolerance of it (what the full judgement passes
    in any case: it allows that much around the float64 reference, plus the twin's own
    float32 error), else ``(called, reference)`` for the full judgement, with the twin
    run in float32 as before and torch's call reused. The float64 programs are the ones
    the float64 run compiles too: a correct pair compiles no float32 vjp program."""
    try:
        with precision_scope("float64", device):
            shapes = sides.twin.output_shapes(values, "float64", device)
    except Exception:  # the twin fails in float64: the float32 judgement, from the start
        return _call_both(sides, values, cot_seed, dtype, device), None
    cots = cotangents_for(shapes, cot_seed)
    with precision_scope(dtype, device):
        try:
            t_out, torch_err = sides.torch.run(values, dtype, device, cots), None
        except SideError as err:
            t_out, torch_err = None, err
    ref = None
    if t_out is not None:
        try:
            with precision_scope("float64", device):
                ref = sides.twin.run(values, "float64", device, cots)
        except SideError:
            ref = None
        if ref is not None and _within_reference(sides, t_out, ref, dtype, device):
            if tally is not None:
                _count(tally, t_out, ref)
            return []
    j_out, twin_err = None, None
    with precision_scope(dtype, device):
        try:
            j_out = sides.twin.run(values, dtype, device, cots)
        except SideError as err:
            twin_err = err
    return _outcome(t_out, torch_err, j_out, twin_err, cots, dtype, device), ref


def _within_reference(sides: Sides, t: Outputs, ref: Outputs, dtype: str, device: str) -> bool:
    """Nothing to report on this example: torch wrote into nothing, the outputs have the
    same structure, and every output and gradient is within tolerance of the float64
    reference (integer outputs equal, no input left without its gradient)."""
    if t.mutations or _structure_problem(t, ref) is not None:
        return False
    if any(a.dtype.kind == "c" for a in t.leaves + ref.leaves):
        return False
    if _disconnected(sides, t, ref, None, dtype, device):
        return False
    out_scale = lambda: _largest(ref.leaves)  # noqa: E731
    tol = tolerance_of(sides, dtype, forward=True)
    for a, b in zip(t.leaves, ref.leaves, strict=True):
        if a.dtype.kind != "f":
            if not np.array_equal(a, b):
                return False
        elif tol.k is None or not compare(a, b, tol, scale=out_scale).ok:
            return False
    grad_scale = lambda: _largest(ref.grads)  # noqa: E731
    for k, (tg, jg) in enumerate(zip(t.grads, ref.grads, strict=True)):
        if tg is None:
            continue
        tol = tolerance_of(sides, dtype, argument=sides.diff_positions[k])
        if tol.k is None or not compare(tg, jg, tol, scale=grad_scale).ok:
            return False
    return True


def _count(tally: dict[str, int], t_out: Outputs, j_out: Outputs) -> None:
    tally["compared"] = tally.get("compared", 0) + _compared(t_out, j_out)
    floating = sum(a.dtype.kind in "fc" for a in t_out.leaves + j_out.leaves)
    tally["floating_outputs"] = tally.get("floating_outputs", 0) + floating


def _judged(sides, values, called, cot_seed, dtype, device, tally, ref64=None) -> list[Divergence]:
    """Both sides' results on one example, judged: what torch_fn wrote into, then the
    outputs, then the gradients (``ref64``: the twin's float64 run, if made already)."""
    t_out, j_out, cots = called
    refused = _complex_output(t_out, j_out, dtype, device)
    if refused is not None:
        return [refused]
    # what torch_fn wrote into: a contract finding; its values and gradients, from
    # pristine copies, are still judged below
    written = mutation_findings(t_out.mutations, dtype, device)
    if tally is not None:
        _count(tally, t_out, j_out)
    problem = _structure_problem(t_out, j_out)
    if dtype == "float64" and not problem:
        low = [i for i, a in enumerate(t_out.leaves) if a.dtype == np.float32]
        if low:
            return [
                *written,
                divergence("forward", float32_output(low[0]), dtype=dtype, device=device),
            ]
    findings = written + _disconnected(sides, t_out, j_out, problem, dtype, device)
    if problem:
        detail = f"the outputs differ in structure: {problem}"
        findings.append(_forward(detail, dtype, device, reason="structure"))
        return findings
    if low_dtype_of(dtype):
        return findings + _judge_low(sides, values, t_out, j_out, cots, cot_seed, dtype, device)
    ref = _Reference(sides, values, device, cots, ref64)
    wrong = _judge_outputs(sides, values, t_out, j_out, ref, dtype, device)
    if wrong is not None:
        return [*findings, wrong]
    return findings + _judge_gradients(sides, values, t_out, j_out, ref, cots, dtype, device)


def _complex_output(t: Outputs, j: Outputs, dtype: str, device: str) -> Divergence | None:
    """Complex outputs are refused, not judged: torch's gradients of complex functions
    are conjugate Wirtinger derivatives, JAX's vjp pairs cotangents without the
    conjugate, and the oracle maps neither the conventions nor its tolerances yet."""
    for who, out in (("torch_fn", t), ("the twin", j)):
        for i, leaf in enumerate(out.leaves):
            if leaf.dtype.kind == "c":
                detail = (
                    f"output {i} of {who} is complex ({leaf.dtype}): complex outputs are not "
                    "supported yet (torch and JAX differentiate complex functions by different "
                    "conventions); return the real and imaginary parts as real outputs "
                    "(torch.view_as_real(z) against jnp.stack([z.real, z.imag], -1))"
                )
                verdict = Verdict("unknown", "error", detail, reason="not_supported")
                return divergence("error", verdict, dtype=dtype, device=device)
    return None


def _call_both(sides: Sides, values: Sequence[Any], cot_seed: int, dtype: str, device: str):
    """Both sides on the example: (torch's, the twin's outputs, the cotangents), or the
    error finding of the side that raised (a time-out first). Raises
    :class:`BothRaised` when both raised."""
    # the twin's output structure decides the cotangents; one random one per output
    try:
        with precision_scope(dtype, device):
            shapes = sides.twin.output_shapes(values, dtype, device)
    except Exception as exc:
        twin_err: SideError | None = (
            exc if isinstance(exc, SideError) else SideError("twin", "forward", exc)
        )
        shapes = None
    else:
        twin_err = None
    cots = cotangents_for(shapes, cot_seed) if shapes is not None else None
    low = low_dtype_of(dtype)
    if low and cots is not None:  # the same cotangents for torch, the naive twin and the reference
        cots = [None if c is None else round_to(c, low) for c in cots]
    t_out = j_out = None
    torch_err = None
    with precision_scope(dtype, device):
        try:
            t_out = sides.torch.run(values, dtype, device, cots)
        except SideError as err:
            torch_err = err
        if cots is not None:
            try:
                j_out = sides.twin.run(values, dtype, device, cots)
            except SideError as err:
                twin_err = err
    return _outcome(t_out, torch_err, j_out, twin_err, cots, dtype, device)


def _outcome(t_out, torch_err, j_out, twin_err, cots, dtype: str, device: str):
    """Both calls' results: (torch's, the twin's outputs, the cotangents), or the error
    finding of the side that raised (a time-out first). Raises :class:`BothRaised` when
    both raised."""
    if torch_err and twin_err and not (torch_err.timed_out or twin_err.timed_out):
        raise BothRaised(f"{torch_err}; {twin_err}")
    if torch_err and torch_err.timed_out:
        twin_err = None
    if torch_err or twin_err:
        first = next(e for e in (torch_err, twin_err) if e is not None)
        if twin_err is not None and twin_err.timed_out:
            first = twin_err
        return _error_finding(first, dtype, device)
    assert t_out is not None and j_out is not None and cots is not None
    return t_out, j_out, cots


def _blame_autocast(
    found: Divergence, sides: Sides, values: Sequence[Any], cot_seed: int, device: str
) -> None:
    """Torch raised under autocast: say whether autocast caused it (the same example in
    float32 without autocast runs)."""
    try:
        plain = _call_both(sides, values, cot_seed, "float32", device)
    except BothRaised:
        return
    if isinstance(plain, Divergence):
        return
    found.detail += (
        "; under torch.autocast only: the same example in float32 without autocast runs, so "
        "autocast caused it (a backward without @torch.amp.custom_bwd that meets a low-dtype "
        "grad_output, or an op given tensors of two dtypes?)"
    )
    found.reason = "autocast"


def _judge_low(
    sides: Sides,
    values: Sequence[Any],
    t_out: Outputs,
    j_out: Outputs,
    cots: Sequence[Any],
    cot_seed: int,
    dtype: str,
    device: str,
) -> list[Divergence]:
    """A low-dtype example by the error budget (:mod:`oracle.judge.low_precision`): torch
    against the float64 twin, within a factor of the twin's own error in the low dtype."""
    low = low_dtype_of(dtype)
    at = input_values(sides, values, low)  # the low dtype's values, in float64
    naive = j_out
    if dtype != low:  # under autocast torch saw float32 values: the naive twin runs in low
        try:
            with precision_scope(low, device):
                naive = sides.twin.run(cast_values(values, sides.specs, low), low, device, cots)
        except SideError as err:  # a twin without that dtype (no bfloat16 Cholesky in JAX)
            return [_error_finding(err, dtype, device)]
        at = [
            np.asarray(v, np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
            for v in values
        ]
    with precision_scope("float64", device):
        ref = sides.twin.run(at, "float64", device, cots)
    for i, (a, b) in enumerate(zip(t_out.leaves, naive.leaves, strict=True)):
        if a.dtype.kind != "f" and not np.array_equal(a, b):
            n = int(np.sum(a != b))
            detail = f"integer output {i} differs in {n} of {a.size} elements"
            return [_forward(detail, dtype, device, mismatched=n, total=int(a.size))]
    return judge_low(
        sides,
        at,
        t_out,
        naive,
        ref,
        cots,
        dtype,
        device,
        lambda: _check(sides, at, cot_seed, "float32", device, None),
    )


def _disconnected(
    sides: Sides, t_out: Outputs, j_out: Outputs, problem: str | None, dtype: str, device: str
) -> list[Divergence]:
    """A differentiated input that gets no gradient at all, where the twin says it has
    one (judged even when the outputs differ in structure, if no torch output carries a
    gradient: an integer output, say, from using max's indices instead of its values)."""
    if problem and any(t_out.connected):
        return []
    found = []
    diff_pos = sides.diff_positions
    for k, (tg, jg) in enumerate(zip(t_out.grads, j_out.grads, strict=True)):
        v = disconnected(diff_pos[k], tg, jg, cut=not any(t_out.connected))
        if v is not None:
            worst = float(np.max(np.abs(np.nan_to_num(jg, nan=np.inf)))) if jg.size else 0.0
            found.append(
                divergence(
                    "vjp", v, dtype=dtype, device=device, argument=diff_pos[k], max_abs_error=worst
                )
            )
    return found


def _judge_outputs(
    sides: Sides,
    values: Sequence[Any],
    t_out: Outputs,
    j_out: Outputs,
    ref: _Reference,
    dtype: str,
    device: str,
) -> Divergence | None:
    """The first output that differs beyond rounding, as a forward finding."""
    out_scale = lambda: _largest(j_out.leaves)  # noqa: E731
    mags = OutputRounding(sides.twin, values, device)
    t64 = None  # torch's own forward in float64, if a float32 output needs it
    for i, (a, b) in enumerate(zip(t_out.leaves, j_out.leaves, strict=True)):
        if a.dtype.kind != "f":
            if not np.array_equal(a, b):
                n = int(np.sum(a != b))
                detail = f"integer output {i} differs in {n} of {a.size} elements"
                return _forward(detail, dtype, device, mismatched=n, total=int(a.size))
            continue
        c, expected = _judge(sides, a, b, dtype, ref, ("out", i), out_scale)
        if not c.ok and not c.nonfinite_mismatch and dtype != "float64":
            if t64 is None:  # torch's own forward in float64, computed once
                with precision_scope("float64", device):
                    t64 = sides.torch.run(values, "float64", device, None, backward=False)
            if output_rounding_only(t64.leaves[i], expected, out_scale):
                continue
            if mags.within(i, t64.leaves[i], expected):
                continue
            if dtype == "float32" and mags.within_float32(i, a, expected):
                continue
        if not c.ok and not c.nonfinite_mismatch and dtype == "float64":
            if mags.within(i, a, expected):
                continue
            # at float32's level of its terms: the gradients' rule (rounding_view)
            view = rounding_view(a, expected, mags.terms(i, np.shape(expected)))
            if view.precision_only:
                verdict = output_precision(i, view.worst_level)
                return divergence("forward", verdict, dtype=dtype, device=device, comparison=c)
        if not c.ok:
            compiled = _compiled_vs_eager(sides, values, dtype, device, i, b)
            if compiled is not None:
                return compiled
            return divergence(
                "forward",
                output_mismatch(i, c),
                dtype=dtype,
                device=device,
                comparison=c,
                tolerance=tolerance_of(sides, dtype, forward=True),
            )
    return None


def _judge_gradients(
    sides: Sides,
    values: Sequence[Any],
    t_out: Outputs,
    j_out: Outputs,
    ref: _Reference,
    cots: Sequence[Any],
    dtype: str,
    device: str,
) -> list[Divergence]:
    """Each gradient that differs: the fast comparison, then blame and diagnosis."""
    diff_pos = sides.diff_positions
    grad_scale = lambda: _largest(j_out.grads)  # noqa: E731  (only needed when a gradient is all 0)
    probe = None
    findings = []
    for k, (tg, jg) in enumerate(zip(t_out.grads, j_out.grads, strict=True)):
        if tg is None:
            continue
        c, expected = _judge(sides, tg, jg, dtype, ref, ("grad", k), grad_scale)
        if c.ok:
            continue
        if probe is None:
            probe = Probe(sides.torch, sides.twin, values, diff_pos, cots, device)
        # one float64 scope around the whole judgement: its finite differences would
        # otherwise switch JAX's x64 mode (and forget its traces) twice per evaluation
        with precision_scope("float64", device):
            v: Verdict = judge_gradient(probe, k, torch_grad=tg, reference=expected, dtype=dtype)
        if v.blame == "none":
            continue
        findings.append(
            divergence(
                "vjp",
                v,
                dtype=dtype,
                device=device,
                argument=diff_pos[k],
                comparison=c,
                tolerance=tolerance_of(sides, dtype, argument=diff_pos[k]),
            )
        )
    return findings
