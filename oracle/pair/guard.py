"""User code under guard: a time limit, no escaping ``SystemExit``, global settings kept.

Every call of the user's functions (torch's forward and backward, the twin's forward and
vjp) goes through :meth:`Guard.call`:

* **time limit**: a call that runs past ``timeout`` seconds is interrupted and becomes
  :class:`SideError` with ``timed_out=True`` (the runner then ends that run at once:
  shrinking a hang would repeat it). The interruption is ``SIGALRM`` in the main thread
  (a hung Python loop or ``time.sleep`` is stopped at its next bytecode); a timer someone
  else armed (pytest-timeout) is put back, and when it would fire first it is left
  alone. Off the main thread there is no way to interrupt Python code: no limit.
* ``SystemExit`` (and any other exception but ``KeyboardInterrupt``) from user code is a
  :class:`SideError`: a finding blamed on that side, never the end of the run.
* **global settings**: every setting of :mod:`oracle.pair.settings` (grad and anomaly
  mode, default dtype, float32 matmul precision, TF32, threads, JAX's x64 mode and
  default matmul precision) is read before the call; a call that changes one is undone
  at once and the change is recorded in :attr:`Guard.changes` (the checks report it as a
  finding blamed on that side).
* **who was running**: calls nest (the checks beyond the vjp run under one guarded call
  and call the twin inside it); :meth:`Guard.scope` marks a stretch of code as one side's
  without a time limit of its own. A time-out and a changed setting are put on the
  innermost side running at the time, not on the call that wraps it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import progress
from .settings import restore, snapshot

__all__ = ["SideError", "Guard", "DEFAULT_TIMEOUT", "raised_by"]

#: seconds per call of either side: far above any correct small call (a first XLA
#: compilation of a large twin takes a few seconds), far below "the suite hangs"
DEFAULT_TIMEOUT = 60.0


class SideError(Exception):
    """One side raised: ``side`` is "torch" or "twin", ``stage`` where it happened."""

    def __init__(self, side: str, stage: str, exc: BaseException, *, timed_out: bool = False):
        super().__init__(f"{side} {stage}: {type(exc).__name__}: {exc}")
        self.side, self.stage, self.exc, self.timed_out = side, stage, exc, timed_out


class _TimedOut(Exception):
    """Raised inside user code by the alarm (an Exception, so user ``except`` blocks
    that catch everything can swallow it: the elapsed time is checked afterwards too)."""


class Guard:
    def __init__(self, timeout: float | None = DEFAULT_TIMEOUT):
        self.timeout = timeout
        #: (side, sentence) per global-setting change made by user code (undone already)
        self.changes: list[tuple[str, str]] = []
        #: (side, setting) changes reported already: each is reported once per guard
        #: (one guard per verify), and put back every time
        self._seen: set[tuple[str, str]] = set()
        #: (side, stage) of the calls running now, innermost last
        self._running: list[tuple[str, str]] = []
        #: (side, stage) that was running when the alarm fired
        self._hung: tuple[str, str] | None = None

    def call(self, side: str, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        progress.call(side, stage)  # for a parent process, should this call kill us
        try:
            # (what scope() does, written out: this runs around every call of user code)
            saved = snapshot()
            if not self._running:
                self._hung = None
            self._running.append((side, stage))
            try:
                if self.timeout is None:
                    out = fn(*args)
                else:
                    with self._limit():
                        out = fn(*args)
            finally:
                self._running.pop()
                self._restore(side, stage, saved)
        except SideError:
            raise
        except BaseException as exc:  # SystemExit included: user code must not end the run
            if isinstance(exc, KeyboardInterrupt):
                raise
            if isinstance(exc, _TimedOut) or self._over(start):
                raise self._timed_out(side, stage) from None
            raise SideError(side, stage, exc) from exc
        finally:
            progress.done()
        if self._over(start):  # the alarm was swallowed by the user's own except clause
            raise self._timed_out(side, stage)
        return out

    @contextlib.contextmanager
    def scope(self, side: str, stage: str) -> Iterator[None]:
        """Code of ``side`` (its ``stage``) runs inside: the global settings it changes
        are put back and recorded as that side's, and a time-out of an enclosing
        :meth:`call` that fires inside is that side's. No time limit of its own, and
        exceptions pass through unchanged."""
        saved = snapshot()
        if not self._running:
            self._hung = None  # (read after the outermost call's scope has ended)
        self._running.append((side, stage))
        try:
            yield
        finally:
            self._running.pop()
            self._restore(side, stage, saved)

    def _timed_out(self, side: str, stage: str) -> SideError:
        """The time-out, on the side that was running when the alarm fired."""
        side, stage = self._hung or (side, stage)
        return SideError(side, stage, _timeout_error(self.timeout), timed_out=True)

    def _over(self, start: float) -> bool:
        return self.timeout is not None and time.perf_counter() - start > self.timeout

    def _restore(self, side: str, stage: str, saved: tuple[Any, ...]) -> None:
        who = "torch_fn" if side == "torch" else "the JAX twin"
        for name, was, now in restore(saved):
            if (side, name) in self._seen:
                continue  # put back again, reported once (a twin changes it at each trace)
            self._seen.add((side, name))
            self.changes.append(
                (
                    side,
                    f"{who} changed {name} from {_shown(was)} to {_shown(now)} globally in "
                    f"its {stage} (the oracle put it back)",
                )
            )

    @contextlib.contextmanager
    def _limit(self) -> Iterator[None]:
        if (
            self.timeout is None
            or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")
        ):
            yield
            return
        previous_timer = signal.getitimer(signal.ITIMER_REAL)
        if 0 < previous_timer[0] <= self.timeout:
            yield  # someone else's alarm fires first: leave it in charge
            return

        def _alarm(signum: int, frame: Any) -> None:
            self._hung = self._hung or (self._running[-1] if self._running else None)
            raise _TimedOut()

        previous = signal.signal(signal.SIGALRM, _alarm)
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if previous_timer[0] > 0:
                left = max(previous_timer[0] - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, left, previous_timer[1])


def _shown(value: Any) -> str:
    if isinstance(value, tuple):  # anomaly mode: (enabled, check_nan)
        return "(" + ", ".join(map(_shown, value)) + ")"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def raised_by(exc: BaseException, default: str) -> str:
    """Which side raised ``exc``, for a guard wrapped around code that calls both (the
    checks beyond the vjp): "twin" when it came through JAX (the oracle runs no torch
    code inside a JAX transform), else ``default``."""
    tb = exc.__traceback__
    while tb is not None:
        parts = tb.tb_frame.f_code.co_filename.replace("\\", "/").split("/")
        if "jax" in parts or "jaxlib" in parts:
            return "twin"
        tb = tb.tb_next
    return default


def _timeout_error(timeout: float | None) -> TimeoutError:
    return TimeoutError(f"timed out after {timeout:g} s (timeout={timeout:g})")
