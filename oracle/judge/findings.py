"""Plain verdict records, and the one place that turns them into :class:`Divergence`.

The judging code (:mod:`oracle.judge.blame`, :mod:`oracle.judge.checks`) decides and returns
:class:`Verdict` records; :func:`divergence` is where a verdict, with the comparison that
measured it, becomes the public :class:`~oracle.report.records.Divergence` (the runner fills in
the pair's name, the example and the reproducer). Nothing here imports torch or JAX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..report.records import Divergence

__all__ = ["Verdict", "divergence"]


@dataclass(frozen=True)
class Verdict:
    """Who is to blame and what it looks like. ``blame="none"``: no divergence after all."""

    blame: str
    diagnosis: str
    detail: str
    factor: float | None = None
    #: a code from ``oracle.vocabulary.REASONS`` ("" for a disagreement of values)
    reason: str = ""
    #: where it was found (the call of user code for an error: "forward", "backward"...)
    phase: str = ""


def divergence(
    check: str,
    verdict: Verdict,
    *,
    dtype: str,
    device: str,
    argument: int | str | None = None,
    comparison: Any = None,
    tolerance: Any = None,
    name: str = "",
    **numbers: Any,
) -> Divergence:
    """The public record of one finding. ``comparison`` (a
    :class:`~oracle.tolerance.Comparison`) and ``tolerance`` fill in the torch.testing-style
    numbers; ``numbers`` sets others directly (``max_abs_error``, ``mismatched``...)."""
    d = Divergence(
        check=check,
        argument=argument,
        blame=verdict.blame,
        diagnosis=verdict.diagnosis,
        detail=verdict.detail,
        dtype=dtype,
        device=device,
        factor=verdict.factor,
        name=name,
        **{"reason": verdict.reason, "phase": verdict.phase, **numbers},
    )
    if comparison is not None:
        c = comparison
        d.max_abs_error, d.max_rel_error = c.max_abs_error, c.max_rel_error
        d.worst_index, d.mismatched, d.total = c.worst_index, c.mismatched, c.total
        d.allowed, d.actual = c.allowed_at_worst, c.actual_at_worst
        d.expected = c.expected_at_worst
    if tolerance is not None:
        d.tolerance = tolerance.describe()
    return d
