"""Ctrl-C: the run stops at once, and what was checked so far is reported.

A ``KeyboardInterrupt`` must never be taken for a finding. hypothesis re-raises one
from a test, except in one place: when it replays several distinct failures at the end
(``report_multiple_bugs``) it collects whatever each replay raised, an interrupt
included, into one ``BaseExceptionGroup``, which the runner reads as findings: the
interrupt was swallowed and the run went on. :func:`surfaced_interrupts` finds it
inside such a group (or a ``FlakyFailure``, which wraps BaseExceptions) and raises it.

:func:`oracle.verify` then raises :class:`Interrupted`, a ``KeyboardInterrupt`` that
carries the partial report (``report.interrupted``; ``report.ok`` is False): a script
stops as it would on any Ctrl-C, and the message shows what was checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["Interrupted", "keyboard_interrupt_in", "surfaced_interrupts"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`oracle.verify`; ``report`` is what was checked until then."""

    def __init__(self, report: Any):
        super().__init__(report)
        self.report = report

    def __str__(self) -> str:
        return f"interrupted (Ctrl-C); what was checked until then:\n{self.report}"


def keyboard_interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` inside ``exc`` (itself, a member of an exception group,
    or the cause of a wrapper), or None."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, KeyboardInterrupt):
            return e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        # hypothesis's FlakyFailure wraps BaseExceptions in an Exception whose cause they are
        todo.append(e.__cause__)
    return None


@contextlib.contextmanager
def surfaced_interrupts() -> Iterator[None]:
    """Raise the ``KeyboardInterrupt`` hidden in an exception group as itself."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        found = keyboard_interrupt_in(exc)
        if found is None:
            raise
        raise found from None
