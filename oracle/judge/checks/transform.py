r"""What the checks beyond the first-order vjp share: running torch and the twin under
one transform, comparing, judging a float32 gap again in float64, blame and diagnosis.

Each transform check (:mod:`.jvp`, :mod:`.hvp`, :mod:`.vmap`) compares torch under a
transform with the same transform of the twin in JAX, and is run by a
:class:`Transform`: how to compare one example and how to blame a disagreement.

The rule: a wrong value is always a finding; a transform torch refuses (it raises under
it, while the plain call works) is ``"unsupported: <reason>"``, a finding (diagnosis
``"unsupported"``) only when that check was asked for. A float32 disagreement is judged
again in float64 (float32's own rounding is not a bug); a float64 one is blamed by
finite differences (of the forward for jvp, of the twin's vjp for hvp).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ...pair.bridge import jax_device, precision_scope
from ...pair.compiling import options_for
from ...report.capabilities import NOT_CHECKED
from ...report.records import Divergence
from ..findings import Verdict, divergence
from ..probe import directional_derivative
from ..tolerance import (
    Comparison,
    Tolerance,
    compare,
    default_tolerance,
    float64_first,
    forward_tolerance,
    tolerance_of,
)

__all__ = [
    "Transform",
    "unsupported_reason",
    "tolerance_for",
    "Judged",
    "Refused",
    "Skip",
]

#: a float64 disagreement this small relative to the quantity is rounding, not a bug
_ROUNDING = 1e-9


def twin_program(
    twin: Any,
    which: str,
    body: Callable,
    statics: tuple,
    values: Sequence[Any],
    dtype: str,
    device: str,
    *extra,
    axes=(),
):
    """The twin's program ``body`` for one transform, compiled once per signature by the
    pair's :class:`~oracle.pair.twin_side.TwinSide` (which frees it when verify ends)."""
    layout, g = twin.split(values, dtype, device)
    args = (twin.fn, layout, tuple(g["static"]), *axes)
    # the twin's code: a time-out or a changed global setting in it is the twin's
    with twin.guard.scope("twin", which), jax.default_device(jax_device(device)):
        program = twin.program((which, device), body, statics, options_for(True, device))
        out = program(*args, tuple(g["diff"]), tuple(g["array"]), tuple(g["scalar"]), *extra)
    return jax.tree_util.tree_map(np.asarray, out)


class Skip(Exception):
    """Nothing to compare on this example (its outputs differ in structure)."""


class Refused(Exception):
    """torch (or the twin) raised under a transform: the reason, for the capability table."""

    def __init__(self, side: str, reason: str):
        super().__init__(reason)
        self.side, self.reason = side, reason


def unsupported_reason(exc: BaseException) -> str:
    """A short reason for a transform torch refuses, from the exception it raised."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    low = str(exc).lower()
    if "setup_context" in low:
        return "forward(ctx, ...) without setup_context (torch.func transforms need it)"
    if "once_differentiable" in low:
        return "backward is @once_differentiable (no double backward)"
    if isinstance(exc, NotImplementedError) and "jvp" in low:
        return "no jvp staticmethod (forward-mode AD)"
    if "generate_vmap_rule" in low or ("vmap" in low and "staticmethod" in low):
        return "no vmap staticmethod and generate_vmap_rule=False"
    if "requires_grad_()" in low:
        return "calls requires_grad_() inside (torch.func transforms refuse it)"
    if ".item()" in low:
        return "calls .item() inside (vmap refuses it)"
    if "data pointer" in low or "numpy" in low:
        return "reads a tensor's memory (.numpy(), data_ptr) inside (transforms refuse it)"
    return f"{type(exc).__name__}: {msg[:160]}"


def torch_refusal(exc: BaseException) -> Refused:
    return Refused("torch", unsupported_reason(exc))


def rng_for(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag])


def uniform(rng: np.random.Generator, shapes, np_dtype) -> list[np.ndarray]:
    return [(rng.random(s) * 2 - 1).astype(np_dtype) for s in shapes]


def diff_positions(specs) -> list[int]:
    return [i for i, s in enumerate(specs) if getattr(s, "grad", False)]


class Judged:
    """One compared quantity that disagrees: what it is, which argument, the numbers."""

    def __init__(self, what: str, argument: Any, c: Comparison, actual, expected, phase=""):
        self.what, self.argument, self.c = what, argument, c
        self.actual, self.expected = actual, expected
        #: which part of the check compared it (vmap: "per_example"); code branches on it
        self.phase = phase


#: float64 for the checks beyond the vjp: they look for wrong transforms (off by O(1))
#: and have no rounding model; the vjp's float64 tolerance (1e-10, tight for the precision
#: diagnosis) would flag the rounding of a second derivative (a saturated softmax's hvp:
#: 4.6e-11 made from terms of size 1, off by 2e-17 between torch and JAX). Values below
#: the floor, 1e-12, are below what float64 rounding lets anyone referee there.
_EXTRA_FLOAT64 = Tolerance(rtol=1e-7, atol=1e-7, k=None, floor=1e-12)


def tolerance_for(
    sides: Any, dtype: str, *, forward: bool = False, argument: Any = None
) -> Tolerance:
    """The tolerance of the pair in ``dtype``: the user's (``rtol``/``atol``; for one
    ``argument`` if given per argument) if given, else the oracle's rule (float64:
    ``_EXTRA_FLOAT64``)."""
    user = (getattr(sides, "user_tol", None) or {}).get(dtype, {})
    if argument in user or None in user:
        return tolerance_of(sides, dtype, forward=forward, argument=argument)
    if dtype == "float64" and not forward:
        return _EXTRA_FLOAT64
    return forward_tolerance(dtype) if forward else default_tolerance(dtype)


def compare_all(
    sides: Any,
    labels: Sequence[tuple[str, Any]],
    t: Sequence[np.ndarray | None],
    j: Sequence[np.ndarray],
    dtype: str,
    *,
    forward: bool = False,
) -> list[Judged]:
    """Every (label, argument) whose torch value is not close to the twin's.
    ``None`` (torch gave nothing) counts as zeros, so it is wrong only where the twin
    is not zero."""
    scale = max(
        (float(np.max(np.abs(x))) for x in j if x.size and np.all(np.isfinite(x))), default=0
    )
    bad = []
    for (what, arg), a, e in zip(labels, t, j, strict=True):
        a = np.zeros_like(e) if a is None else a
        if np.shape(a) != np.shape(e):
            n = int(np.size(e))
            c = Comparison(False, n, n, np.inf, np.inf, (), 0.0, np.nan, np.nan, False)
            shapes = f"shape {np.shape(a)} in torch, {np.shape(e)} in the twin"
            bad.append(Judged(f"{what}: {shapes}", arg, c, None, None))
            continue
        if a.dtype.kind in "biu" or e.dtype.kind in "biu":
            # integer outputs (indices): the float comparison, on exact float64 copies
            a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        tol = tolerance_for(sides, dtype, forward=forward, argument=arg)
        c = compare(a, e, tol, scale=lambda: scale)
        if not c.ok:
            bad.append(Judged(what, arg, c, a, e))
    return bad


def again_in_float64(
    run: Callable, t32: Sequence[Any], sides: Any, labels, *, forward: bool = False
) -> list[Judged]:
    """A float32 disagreement judged again in float64. ``run(twin_only)`` gives torch's
    values and the twin's in float64 (its first two items).

    When torch_fn cannot run in float64 (a float32 constant of its own, say), torch's
    float32 values ``t32`` are judged against the twin's float64 ones instead, as the
    vjp's are: the float32 run has shown that torch supports the transform, so its
    float64 error is no refusal of it."""
    try:
        t, j = run(False)[:2]
    except Refused as r:
        if r.side != "torch":
            raise
        j = run(True)[1]
        return compare_all(sides, labels, t32, j, "float32", forward=forward)
    return compare_all(sides, labels, t, j, "float64", forward=forward)


# --- verdicts -----------------------------------------------------------------------------


def structure(nt: int, nj: int) -> Judged:
    c = Comparison(
        False, 0, 0, float("nan"), float("nan"), (), 0.0, float("nan"), float("nan"), False
    )
    return Judged(
        f"torch gave {nt} result(s) under the transform, the twin {nj}", None, c, None, None
    )


def flatten(xs: Sequence[np.ndarray]):
    shapes = [np.shape(x) for x in xs]
    flat = np.concatenate([np.ravel(x) for x in xs]) if xs else np.zeros(0)
    return flat, shapes


def unflatten(flat: np.ndarray, shapes) -> list[np.ndarray]:
    out, at = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[at : at + n].reshape(s))
        at += n
    return out


def side_of(phi, xs, u, claim_t: float, claim_j: float, device: str, k: int = 0) -> str:
    """Which claim of a directional derivative finite differences contradict."""
    try:
        # phi runs in float64: one x64 scope around all its evaluations, so that JAX is
        # not switched (and its traces forgotten) twice per evaluation
        with precision_scope("float64", device):
            est, err = directional_derivative(phi, xs, k, u)
    except Exception:
        return "unknown"

    def agrees(claim: float) -> bool:
        tol = 20 * err + 1e-5 * max(abs(est), abs(claim)) + 1e-12
        return bool(np.isfinite(claim) and abs(est - claim) <= tol)

    t_ok, j_ok = agrees(claim_t), agrees(claim_j)
    if j_ok and not t_ok:
        return "torch"
    if t_ok and not j_ok:
        return "twin"
    # both match the finite differences: the elementwise gap was rounding (a saturated
    # cross-entropy's second derivative of 1e-14, made by cancelling terms of order 1)
    return "none" if t_ok else "unknown"


def _diagnosis(actual, expected) -> tuple[str, float | None]:
    """zero / disconnected / nonfinite / sign_flipped / scaled (with the factor) / mismatch."""
    if actual is None or expected is None:
        return "mismatch", None
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        return "mismatch", None
    if np.any(np.isfinite(a) != np.isfinite(e)):
        return "nonfinite", None
    if not np.any(a) and np.any(e):
        return "zero", None
    c = _ratio(a, e)
    if c is not None:
        if abs(c + 1) < 1e-6:
            return "sign_flipped", None
        if abs(c - 1) > 1e-6:
            return "scaled", float(f"{c:.6g}")
    return "mismatch", None


def _ratio(a: np.ndarray, e: np.ndarray) -> float | None:
    """The constant c with a = c e, if there is one."""
    ee = float(np.vdot(e, e))
    if ee == 0 or not np.all(np.isfinite(a)) or not np.all(np.isfinite(e)):
        return None
    c = float(np.vdot(a, e)) / ee
    if np.linalg.norm(a - c * e) <= 1e-6 * max(float(np.linalg.norm(a)), 1e-300):
        return c
    return None


def _same_ratio_elsewhere(run: Callable, sides, values, first: Judged, c: float) -> bool:
    """One element cannot tell a factor from any other error: the same ratio must hold
    at three random points around the example (in float64)."""
    rng = np.random.default_rng(3)
    pos = diff_positions(sides.specs)
    for _ in range(3):
        moved = list(values)
        for i in pos:
            x = np.asarray(values[i], np.float64)
            moved[i] = x + 0.25 * (1 + np.abs(x)) * rng.standard_normal(x.shape)
        again = [b for b in run(moved) if (b.what, b.argument) == (first.what, first.argument)]
        if not again or again[0].actual is None:
            return False
        c2 = _ratio(
            np.asarray(again[0].actual, np.float64), np.asarray(again[0].expected, np.float64)
        )
        if c2 is None or abs(c2 - c) > 1e-6 * abs(c):
            return False
    return True


def _finding(check: str, j: Judged, blame: str, dtype: str, device: str, confirm) -> Divergence:
    diag, factor = _diagnosis(j.actual, j.expected)
    if diag in ("scaled", "sign_flipped"):
        c = -1.0 if factor is None else factor
        if not _safe_bool(lambda: confirm(c)):
            diag, factor = "mismatch", None
    if diag == "zero" and j.actual is not None and not np.any(j.actual):
        what = "torch gives zeros (or no gradient at all)"
    else:
        what = f"{j.c.mismatched} of {j.c.total} elements beyond tolerance"
    detail = f"{check}: {j.what} differs from the twin's: {what}" + (
        f" (torch = {factor:g} x the twin)" if factor is not None else ""
    )
    verdict = Verdict(blame, diag, detail, factor)
    argument = None if isinstance(j.argument, tuple) else j.argument  # a cotangent: none
    return divergence(
        check,
        verdict,
        dtype=dtype,
        device=device,
        argument=argument,
        comparison=j.c,
        phase=j.phase,
    )


def refusal_finding(check: str, r: Refused, dtype: str, device: str) -> Divergence:
    detail = (
        f"{check} was asked for, and "
        + ("torch refuses it" if r.side == "torch" else "the twin cannot do it")
        + f": {r.reason}"
    )
    verdict = Verdict(r.side, "unsupported", detail)
    return divergence(check, verdict, dtype=dtype, device=device, reason="refused")


@dataclass(frozen=True)
class Transform:
    """One transform check: how to compare one example and how to blame a disagreement.

    ``compare(sides, values, seed, dtype, device, thorough)`` returns what disagrees on
    one example (raising :class:`Refused` or :class:`Skip`); ``blame(sides, values, seed,
    device, first)`` says which side finite differences contradict ("torch", "twin",
    "none": rounding after all, "unknown")."""

    name: str
    compare: Callable[..., list[Judged]]
    blame: Callable[..., str]

    def run(
        self,
        sides: Any,
        values: Sequence[Any],
        seed: int,
        dtype: str,
        device: str,
        *,
        asked: bool,
        thorough: bool,
    ) -> tuple[list[Divergence], str]:
        """One example: (findings, capability status). ``thorough``: every variant of
        the check (vmap: the batch dimension at every position)."""
        if float64_first(sides, dtype):
            # what float32 passes in any case: its disagreements are judged again in
            # float64 (again_in_float64), so agreement there is the verdict, with the
            # float64 programs the float64 run compiles too; anything else (a
            # disagreement, a refusal, a torch_fn without float64) is judged in float32
            try:
                if not self.compare(sides, values, seed, "float64", device, thorough):
                    return [], "ok"
            except Exception:
                pass
        try:
            bad = self.compare(sides, values, seed, dtype, device, thorough)
        except Skip:
            return [], NOT_CHECKED
        except Refused as r:
            status = f"unsupported: {r.reason}"
            return ([refusal_finding(self.name, r, dtype, device)] if asked else []), status
        if not bad:
            return [], "ok"
        first = bad[0]
        blame = _safe(lambda: self.blame(sides, values, seed, device, first))

        def rerun(v):
            try:
                return self.compare(sides, v, seed, "float64", device, True)
            except Refused as r:
                if r.side != "torch" or dtype == "float64":
                    raise
                # torch_fn does not run in float64 (see again_in_float64)
                return self.compare(sides, v, seed, dtype, device, True)

        if blame == "none" or _rounding(first):
            return [], "ok"

        def confirm(c: float) -> bool:
            return _same_ratio_elsewhere(rerun, sides, values, first, c)

        return [_finding(self.name, first, blame, dtype, device, confirm)], "diverged"


def _rounding(j: Judged) -> bool:
    """A float64 gap far below the quantity's own size: rounding, whatever the check (a
    wrong rule is off by a multiple of the value)."""
    if j.expected is None or j.actual is None:
        return False
    e = np.asarray(j.expected, np.float64)
    size = float(np.max(np.abs(e))) if e.size and np.all(np.isfinite(e)) else np.inf
    return bool(j.c.max_abs_error <= _ROUNDING * max(size, 1e-300))


def _safe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception:
        return "unknown"


def _safe_bool(fn: Callable[[], bool]) -> bool:
    try:
        return fn()
    except Exception:
        return False
