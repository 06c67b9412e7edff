"""Pairs checked in several worker processes at once: ``python -m oracle --jobs N``.

Each of the ``N`` workers is an :class:`~oracle.isolate.Isolated` worker process (so a
pair that kills its process is a finding there too), driven by a thread of the parent
that takes the next unchecked pair, in registration order, when its worker is free; a
pair is one request with all its dtypes, as in one process (a run at a time only after
its worker died in it, as :meth:`~oracle.isolate.Isolated.verify` says). A
pair's verdict does not depend on which worker checked it or on what that worker checked
before (each run is seeded by the run's seed and the pair alone; a worker keeps compiled
programs only, as a process checking pairs one after another does), so ``--jobs`` changes
the time a catalog takes, not its table: the rows come out in registration order.

Ctrl-C: the parent passes the signal on to every worker (a terminal sends it to all of
them, a ``kill`` to the parent alone); each sends the partial report of the pair it was
checking, within :data:`~oracle.isolate.INTERRUPT_GRACE`, and stops; a worker that does
not is killed. The pairs no worker reached are listed as not checked.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .isolate import CLOSE_GRACE, INTERRUPT_GRACE, Isolated
from .search.interrupt import Interrupted

__all__ = ["AUTO_JOBS_MAX", "Checked", "Stopped", "check_in_workers", "parse_jobs"]


#: ``--jobs auto`` starts at most this many workers: each holds its own torch and JAX
#: (about half a GiB), and a catalog's pairs are few
AUTO_JOBS_MAX = 8


def parse_jobs(text: str) -> int:
    """``--jobs``: a positive number of worker processes, or ``auto`` (one per CPU this
    process may use, at most :data:`AUTO_JOBS_MAX`); an ``argparse`` type."""
    import argparse

    if text == "auto":
        if hasattr(os, "sched_getaffinity"):
            cpus = len(os.sched_getaffinity(0))
        else:
            cpus = os.cpu_count() or 1
        return max(1, min(cpus, AUTO_JOBS_MAX))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a positive number of worker processes, or auto"
        )
    return value


@dataclass
class Checked:
    """What the workers made of the pairs: per pair index, its report and rows (in
    registration order when read by index); ``interrupted``: the indices Ctrl-C stopped
    in a worker (their partial reports are in ``reports``); ``unchecked``: the indices no
    worker reached."""

    reports: dict[int, Any] = field(default_factory=dict)
    rows: dict[int, list[Any]] = field(default_factory=dict)
    interrupted: list[int] = field(default_factory=list)
    unchecked: list[int] = field(default_factory=list)


class Stopped(KeyboardInterrupt):
    """Ctrl-C during :func:`check_in_workers`; ``checked``: what was checked until then."""

    def __init__(self, checked: Checked):
        super().__init__(checked)
        self.checked = checked


def check_in_workers(
    pairs: Sequence[Any],
    kwargs: dict[str, Any],
    jobs: int,
    done: Callable[[int, Any, list[Any], float], None] | None = None,
    triton: str | None = None,
) -> Checked:
    """Verify ``pairs`` with ``kwargs`` in ``jobs`` worker processes; ``done(index,
    pair, rows, seconds)`` is called as each pair ends (from the parent's threads, one at
    a time); ``triton``: ``--triton``'s mode, set up in each worker before it imports a
    pair's module. Ctrl-C ends the run with what was checked: :class:`Stopped` carries it."""
    checked = Checked()
    lock = threading.Lock()
    queue = list(range(len(pairs)))
    stop = threading.Event()
    errors: list[BaseException] = []
    workers = [Isolated(triton) for _ in range(max(1, min(jobs, len(pairs))))]

    def take() -> int | None:
        with lock:
            if stop.is_set() or not queue:
                return None
            return queue.pop(0)

    def drive(isolated: Isolated) -> None:
        try:
            while (i := take()) is not None:
                pair, t0 = pairs[i], time.perf_counter()
                try:
                    report = isolated.verify(pair, whole=True, **kwargs)
                except Interrupted as exc:  # Ctrl-C, passed on by the parent
                    with lock:
                        checked.reports[i] = exc.report
                        checked.rows[i] = isolated.outcomes(pair, exc.report)
                        checked.interrupted.append(i)
                    return
                rows = isolated.outcomes(pair, report)
                with lock:
                    if stop.is_set() and getattr(report, "crashed", None):
                        return  # killed by the parent for not stopping: not a crash
                    checked.reports[i], checked.rows[i] = report, rows
                    if done is not None:
                        done(i, pair, rows, time.perf_counter() - t0)
        except BaseException as exc:  # a misuse the worker reported (ValueError...)
            with lock:
                errors.append(exc)
                stop.set()
        finally:
            isolated.close()
            with lock:
                ended[0] += 1

    def wait(seconds: float | None = None) -> None:
        # polled, not Thread.join: a join that Ctrl-C interrupts leaves the thread
        # looking ended to later joins (CPython 3.11), and its partial report is lost
        deadline = None if seconds is None else time.monotonic() + seconds
        while ended[0] < len(workers) and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.02)

    ended = [0]
    threads = [threading.Thread(target=drive, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        wait()
    except KeyboardInterrupt:
        stop.set()
        _stop_workers(workers, wait)
        with lock:
            checked.unchecked = [i for i in range(len(pairs)) if i not in checked.reports]
        raise Stopped(checked) from None
    if errors:
        raise errors[0]
    return checked


def _stop_workers(workers: Sequence[Isolated], wait: Callable[[float], None]) -> None:
    """Ctrl-C: passed on to each worker; their threads take the partial reports; a worker
    that sends none within the grace is killed (its thread then ends)."""
    for w in workers:
        w.interrupt()
    wait(INTERRUPT_GRACE)
    for w in workers:
        w.kill()
    wait(CLOSE_GRACE)
