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
* **global settings**: torch's default dtype and JAX's global x64 flag are read before
  the call; a call that changes them is undone at once and the change is recorded in
  :attr:`Guard.changes` (the checks report it as a finding blamed on that side).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from . import progress
from ._jax_internals import x64_global

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
        #: global-setting changes made by user code, as sentences (undone already)
        self.changes: list[tuple[str, str]] = []

    def call(self, side: str, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        dtype, x64 = torch.get_default_dtype(), x64_global()
        start = time.perf_counter()
        progress.call(side, stage)  # for a parent process, should this call kill us
        try:
            with self._limit():
                out = fn(*args)
        except SideError:
            raise
        except BaseException as exc:  # SystemExit included: user code must not end the run
            if isinstance(exc, KeyboardInterrupt):
                raise
            if isinstance(exc, _TimedOut) or self._over(start):
                raise SideError(side, stage, _timeout_error(self.timeout), timed_out=True) from None
            raise SideError(side, stage, exc) from exc
        finally:
            progress.done()
            self._restore(side, stage, dtype, x64)
        if self._over(start):  # the alarm was swallowed by the user's own except clause
            raise SideError(side, stage, _timeout_error(self.timeout), timed_out=True)
        return out

    def _over(self, start: float) -> bool:
        return self.timeout is not None and time.perf_counter() - start > self.timeout

    def _restore(self, side: str, stage: str, dtype: Any, x64: bool) -> None:
        who = "torch_fn" if side == "torch" else "the JAX twin"
        if torch.get_default_dtype() != dtype:
            now = torch.get_default_dtype()
            torch.set_default_dtype(dtype)
            self.changes.append(
                (
                    side,
                    f"{who} changed torch's default dtype from {dtype} to {now} in its {stage} (the oracle put it back)",
                )
            )
        if x64_global() != x64:
            import jax

            jax.config.update("jax_enable_x64", x64)
            self.changes.append(
                (
                    side,
                    f"{who} turned JAX's x64 mode {'on' if not x64 else 'off'} globally in its {stage} (the oracle put it back)",
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
