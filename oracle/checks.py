"""The checks of one example in one dtype on one device: errors, forward, vjp.

:func:`check_example` calls both sides once, compares outputs then gradients with
:mod:`oracle.tolerance`, and hands every disagreement to :mod:`oracle.verdicts` for
blame and diagnosis. Agreeing examples cost one torch forward+backward and one
compiled ``jax.vjp``; the float64 reference and finite differences are paid only
when something disagrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bridge import cast_values, precision_scope
from .report import Divergence
from .sides import Outputs, SideError, TorchSide, TwinSide, cotangents_for
from .tolerance import Comparison, Tolerance, compare, default_tolerance, forward_tolerance
from .verdicts import Probe, Verdict, judge_gradient

__all__ = ["Sides", "BothRaised", "check_example"]


class BothRaised(Exception):
    """Both sides rejected the example: not a divergence, hypothesis moves on."""


@dataclass
class Sides:
    """What the checks need of a pair: both sides, the specs, the tolerance override."""

    torch: TorchSide
    twin: TwinSide
    specs: Sequence[Any]
    #: per dtype, by argument index or parameter name (None: outputs and every argument)
    user_tol: dict[str, dict[Any, Tolerance]] | None = None

    @property
    def diff_positions(self) -> list[int]:
        return [i for i, s in enumerate(self.specs) if getattr(s, "grad", False)]

    def tolerance(
        self, dtype: str, *, forward: bool = False, argument: int | str | None = None
    ) -> Tolerance:
        """The tolerance for the outputs (``forward``) or one argument's gradient."""
        user = (self.user_tol or {}).get(dtype, {})
        if not forward and argument in user:
            return user[argument]
        if None in user:
            return user[None]
        return forward_tolerance(dtype) if forward else default_tolerance(dtype)


def _error_finding(err: SideError, dtype: str, device: str) -> Divergence:
    msg = str(err.exc).strip().splitlines()
    first = msg[0] if msg else ""
    return Divergence(
        check="error",
        argument=None,
        blame=err.side,
        diagnosis="error",
        detail=f"the {'PyTorch side' if err.side == 'torch' else 'JAX twin'} raised in its "
        f"{err.stage}: {type(err.exc).__name__}: {first[:300]}",
        dtype=dtype,
        device=device,
    )


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
    return Divergence(
        check="forward",
        argument=None,
        blame="unknown",
        diagnosis=extra.pop("diagnosis", "mismatch"),
        detail=detail,
        dtype=dtype,
        device=device,
        **extra,
    )


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


def _fill(d: Divergence, c: Comparison, tol: Tolerance) -> Divergence:
    d.max_abs_error, d.max_rel_error = c.max_abs_error, c.max_rel_error
    d.worst_index, d.mismatched, d.total = c.worst_index, c.mismatched, c.total
    d.allowed, d.actual, d.expected = c.allowed_at_worst, c.actual_at_worst, c.expected_at_worst
    d.tolerance = tol.describe()
    return d


class _Reference:
    """The twin in float64 at the same point, computed at most once per example."""

    def __init__(self, sides: Sides, values, device, cots):
        self.sides, self.values, self.device, self.cots = sides, values, device, cots
        self._out: Outputs | None = None

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
    tol = sides.tolerance(dtype, forward=forward, argument=argument)
    c = compare(actual, lowp, tol, scale=fallback_scale)
    if c.ok or tol.k is None:
        return c, lowp
    r = ref.get()
    expected = r.leaves[index[1]] if index[0] == "out" else r.grads[index[1]]
    return compare(actual, expected, tol, twin_lowp=lowp, scale=fallback_scale), expected


def check_example(
    sides: Sides, values: Sequence[Any], cot_seed: int, dtype: str, device: str
) -> list[Divergence]:
    """Every finding for one example (kinks included, marked ``blame="kink"``)."""
    values = cast_values(values, sides.specs, dtype)  # once, for both sides
    # the twin's output structure decides the cotangents; one random one per output
    try:
        with precision_scope(dtype, device):
            shapes = sides.twin.output_shapes(values, dtype, device)
    except Exception as exc:
        twin_err: SideError | None = SideError("twin", "forward", exc)
        shapes = None
    else:
        twin_err = None
    cots = cotangents_for(shapes, cot_seed) if shapes is not None else None

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
    if torch_err and twin_err:
        raise BothRaised(f"{torch_err}; {twin_err}")
    if torch_err or twin_err:
        return [_error_finding(torch_err or twin_err, dtype, device)]
    assert t_out is not None and j_out is not None and cots is not None

    problem = _structure_problem(t_out, j_out)
    findings: list[Divergence] = []
    diff_pos = sides.diff_positions
    ref = _Reference(sides, values, device, cots)
    grad_scale = lambda: _largest(j_out.grads)  # noqa: E731  (only needed when a gradient is all 0)

    # a differentiated input that gets no gradient at all, where the twin says it has one
    # (judged even when the outputs differ in structure, if no torch output carries a
    # gradient: an integer output, say, from using max's indices instead of its values)
    if not problem or not any(t_out.connected):
        for k, (tg, jg) in enumerate(zip(t_out.grads, j_out.grads, strict=True)):
            if tg is None and (np.any(jg != 0) or not np.all(np.isfinite(jg))):
                cut = not any(t_out.connected)
                findings.append(
                    Divergence(
                        check="vjp",
                        argument=diff_pos[k],
                        blame="torch",
                        diagnosis="disconnected",
                        detail=(
                            f"no gradient reaches argument {diff_pos[k]}: "
                            + (
                                "no output of torch_fn requires grad (the graph is cut inside "
                                "the function: .detach(), .numpy(), .item(), torch.no_grad(), "
                                "or an integer output)"
                                if cut
                                else "torch.autograd.grad returned None for it (the graph is cut "
                                "between this input and the outputs)"
                            )
                            + "; the twin's gradient is not zero"
                        ),
                        dtype=dtype,
                        device=device,
                        max_abs_error=float(np.max(np.abs(np.nan_to_num(jg, nan=np.inf))))
                        if jg.size
                        else 0.0,
                    )
                )

    if problem:
        findings.append(_forward(f"the outputs differ in structure: {problem}", dtype, device))
        return findings

    out_scale = lambda: _largest(j_out.leaves)  # noqa: E731
    t64 = None  # torch's own float64 forward, if a float32 output needs it
    for i, (a, b) in enumerate(zip(t_out.leaves, j_out.leaves, strict=True)):
        if a.dtype.kind != "f":
            if not np.array_equal(a, b):
                n = int(np.sum(a != b))
                detail = f"integer output {i} differs in {n} of {a.size} elements"
                findings.append(_forward(detail, dtype, device, mismatched=n, total=int(a.size)))
                return findings
            continue
        c, expected = _judge(sides, a, b, dtype, ref, ("out", i), out_scale)
        if not c.ok and not c.nonfinite_mismatch and dtype != "float64":
            # right in float64, off in float32: the rounding of torch's formula, not a bug
            if t64 is None:
                with precision_scope("float64", device):
                    t64 = sides.torch.run(values, "float64", device, None, backward=False)
            if compare(t64.leaves[i], expected, forward_tolerance("float64"), scale=out_scale).ok:
                continue
        if not c.ok:
            diag = "nonfinite" if c.nonfinite_mismatch else "mismatch"
            findings.append(
                _fill(
                    _forward(
                        f"output {i} differs: {c.mismatched} of {c.total} elements beyond "
                        "tolerance (the gradient cannot be judged where the forward disagrees)",
                        dtype,
                        device,
                        diagnosis=diag,
                    ),
                    c,
                    sides.tolerance(dtype, forward=True),
                )
            )
            return findings

    probe = None
    for k, (tg, jg) in enumerate(zip(t_out.grads, j_out.grads, strict=True)):
        if tg is None:
            continue
        c, expected = _judge(sides, tg, jg, dtype, ref, ("grad", k), grad_scale)
        if c.ok:
            continue
        if probe is None:
            probe = Probe(sides.torch, sides.twin, values, diff_pos, cots, device)
        v: Verdict = judge_gradient(probe, k, torch_grad=tg, reference=expected, dtype=dtype)
        if v.blame == "none":
            continue
        findings.append(
            _fill(
                Divergence(
                    check="vjp",
                    argument=diff_pos[k],
                    blame=v.blame,
                    diagnosis=v.diagnosis,
                    detail=v.detail,
                    dtype=dtype,
                    device=device,
                    factor=v.factor,
                ),
                c,
                sides.tolerance(dtype, argument=diff_pos[k]),
            )
        )
    return findings
