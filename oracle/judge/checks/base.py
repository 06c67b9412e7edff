"""What a check is, for the plan that schedules it (:mod:`oracle.judge.plan`).

A check beyond the first-order vjp is one module of this folder with a ``CHECK`` object,
registered by one line in :data:`oracle.vocabulary.CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Check"]


def _never(d: Any) -> bool:
    return False


@dataclass(frozen=True)
class Check:
    """One check beyond the vjp.

    ``run(sides, values, seed, dtype, device, *, asked, thorough)`` judges one example
    and returns ``(findings, status)``: the status is ``"ok"``, ``"diverged"``,
    ``"unsupported: <reason>"`` or ``"not checked"``; a refusal is a finding (reason
    ``"refused"``) only when ``asked``. ``thorough``: every variant of the check (asked
    for, or the campaign), not the cheap default.

    ``before(sides, values, seed, dtype, device)``: rules judged before the example's
    ordinary call (the contract's: inputs unchanged by the call itself).
    ``follows_vjp(finding)``: whether a finding only repeats a wrong first derivative
    (dropped under the default set when the vjp diverged). ``probes_refusal``: whether
    the default set still asks, on a shrunk vjp failure, whether torch refuses it.
    ``needs_right_vjp``: see the field.
    """

    name: str
    run: Callable[..., tuple[list[Any], str]]
    before: Callable[..., list[Any]] | None = None
    follows_vjp: Callable[[Any], bool] = _never
    probes_refusal: bool = False
    #: whether the check is meaningless on an example whose vjp was judged wrong (hvp
    #: differentiates that backward): the others also run on such examples, so that a
    #: Function wrong in two modes shows both
    needs_right_vjp: bool = False
