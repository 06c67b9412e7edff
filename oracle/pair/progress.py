"""Where a run is, told to whoever listens before and after each call of user code.

A process that runs pairs for a parent (:mod:`oracle.isolate`) sets a sink; the parent
keeps the last note, so that when user code kills the process (``os._exit``, a
segfault in a native kernel, the out-of-memory killer) it can say in which call, dtype
and example. Calls nest (the checks beyond the vjp run under one guard of their own and
call the sides' guarded calls inside it): when an inner call returns, the enclosing one
is told again. Without a sink (the usual case) each note costs one test of a global.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["set_sink", "example", "call", "done"]

_sink: Callable[[dict[str, Any]], None] | None = None
_calls: list[dict[str, Any]] = []  # the calls under way, innermost last


def set_sink(sink: Callable[[dict[str, Any]], None] | None) -> None:
    """Send every note to ``sink`` from now on (None: stop)."""
    global _sink
    _sink = sink
    _calls.clear()


def example(dtype: str, device: str, number: int, describe: Callable[[], Any]) -> None:
    """Example ``number`` of the run in ``dtype`` on ``device`` begins; ``describe()``
    gives its values (called only when someone listens)."""
    if _sink is not None:
        _sink({"dtype": dtype, "device": device, "example": number, "values": describe()})


def call(side: str, stage: str) -> None:
    """User code of ``side`` ("torch" or "twin") is about to run its ``stage``."""
    if _sink is not None:
        _calls.append({"side": side, "stage": stage})
        _sink(_calls[-1])


def done() -> None:
    """The call last announced with :func:`call` returned (or raised)."""
    if _sink is not None and _calls:
        _calls.pop()
        _sink(_calls[-1] if _calls else {"side": None, "stage": None})
