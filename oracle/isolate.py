"""Pairs checked in a worker process: user code that kills the process is a finding.

``python -m oracle --isolate`` and ``pytest --oracle-isolate`` run each pair's
:func:`~oracle.verify` in a worker child process (``python -m oracle.isolate``), one
dtype and device at a time, and reuse the worker while it lives. User code that ends
the process (``os._exit``, a segfault in a native or Triton kernel, the out-of-memory
killer) then ends only the worker: the parent turns its death into an ``error`` finding
for that pair ("the process died with SIGSEGV while the PyTorch side ran its backward
(float64, cpu), example 1: ..."), marks the row ``crashed`` (never as expected), and goes on with a fresh
worker. A worker that sends no word for twice a call's time limit (plus a margin) hangs
where the guard's alarm cannot reach (native code): it is killed, and that too is a
finding.

The worker says where it is before each call of user code (:mod:`oracle.progress`: the
dtype, device, example and its values, then the side and stage of each call) on the
pipe it sends its reports through; the parent keeps the last of these notes, which is
what it can say about a death. The worker's output (the user's prints, and the stack
``faulthandler`` prints when it crashes) goes to the parent's stderr. Reports travel as JSON (``Report.to_dict`` plus the few
fields a message needs), so what needs live objects (``Report.plot``) is not available
for an isolated pair; the reproducer text is.

Ctrl-C: the worker gets the signal too (the parent forwards it), sends the partial report
of the pair it was checking and stops; the parent raises :class:`~oracle.Interrupted`
with it, as an in-process ``verify`` does.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .judge.findings import Verdict, divergence
from .pair.guard import DEFAULT_TIMEOUT
from .report.records import Divergence, Report, RunSummary
from .report.text import format_example
from .search.interrupt import Interrupted

__all__ = ["Isolated", "IsolatedReport", "death_message", "hang_message"]

#: seconds the parent waits, after Ctrl-C, for the worker's partial report before it
#: kills the worker (the whole stop must stay under a second)
INTERRUPT_GRACE = 0.5
#: seconds a worker gets to exit on its own when the parent is done with it
CLOSE_GRACE = 2.0
#: a worker silent for twice a call's time limit plus this many seconds hangs where the
#: limit cannot reach (native code, SIGALRM ignored): it is killed, and that is a finding
HANG_MARGIN = 5.0
_DTYPES = ("float32", "float64")
_WHO = {"torch": "the PyTorch side", "twin": "the JAX twin"}


@dataclass
class IsolatedReport(Report):
    """A :class:`~oracle.Report` put together from the worker's runs; ``crashed``: the
    (dtype, device) runs during which the worker died."""

    crashed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "crashed": [list(c) for c in self.crashed]}


def death_message(returncode: int) -> str:
    """How a process ended, in words: ``died with SIGSEGV``, ``exited with status 7``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the out-of-memory killer sends it, as does kill -9)" if name == "SIGKILL" else ""
        return f"died with {name}{hint}"
    return f"exited with status {returncode} (os._exit, or a native exit)"


def hang_message(quiet: float) -> str:
    """A worker killed for silence, in words."""
    return (
        f"hung: sent no word for {quiet:g} s (twice the time limit of a call, plus "
        f"{HANG_MARGIN:g} s), where the time limit cannot interrupt it (native code, or "
        "SIGALRM ignored); the oracle killed it"
    )


def _where(note: dict[str, Any]) -> str:
    """Where the worker was, from its last progress note."""
    if note.get("side"):
        return f"while {_WHO.get(note['side'], note['side'])} ran its {note['stage']}"
    if "example" in note:
        return "between calls of user code"
    return "before any call of user code (while starting, or importing the pair's module)"


def _crash_finding(pair: Any, kwargs: dict[str, Any], note: dict[str, Any], how: str) -> Divergence:
    dtype = note.get("dtype") or kwargs["dtypes"][0]
    device = note.get("device") or (kwargs.get("devices") or ["cpu"])[0]
    example = _example(note.get("values"))
    at = f", example {note['example']}: {format_example(example)}" if example else ""
    detail = (
        f"the process {how} {_where(note)} ({dtype}, {device}){at}; the rest of the run went "
        "on in a fresh process"
    )
    verdict = Verdict(note.get("side") or "unknown", "error", detail)
    finding = divergence("error", verdict, dtype=dtype, device=device, name=pair.name)
    finding.example, finding.seed = example, kwargs.get("seed")
    return finding


class Isolated:
    """Verifies registered pairs in a worker process, reused while it lives::

    with Isolated() as isolated:
        report = isolated.verify(pair, seed=0)
        rows = isolated.outcomes(pair, report)
    """

    def __init__(self, triton: str | None = None) -> None:
        #: ``--triton``'s mode: the worker sets Triton up so before it imports a module
        self.triton = triton
        self._proc: subprocess.Popen | None = None
        self._requests: int | None = None  # our end of the worker's request pipe
        self._replies: int | None = None  # our end of the pipe the worker answers on
        self._buffer = b""
        #: set by whoever passed Ctrl-C on to the worker (:mod:`oracle.pool`): its death
        #: from then on is the end of an interrupted run, not a crash
        self.stopping = False

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the public face ---------------------------------------------------------

    def verify(self, pair: Any, *, whole: bool = False, **kwargs: Any) -> IsolatedReport:
        """``pair.verify(**kwargs)`` in the worker, one run per dtype and device; or, with
        ``whole``, all of them in one request, as an in-process ``verify`` runs them (the
        later dtype starts from what the earlier one found: the same table), and a run at
        a time only when the worker dies in it (the runs before its death are kept)."""
        if pair.module == "__main__":
            raise ValueError(
                f"{pair.name}: a pair checked in a worker process must be registered in an "
                "importable module, not in __main__ (move it into a module and import that)"
            )
        opts = {**pair.options, **kwargs}
        dtypes = opts.get("dtypes") or _DTYPES
        dtypes = (dtypes,) if isinstance(dtypes, str) else tuple(dtypes)
        devices = opts.get("devices")
        devices = [None] if devices is None else [devices] if isinstance(devices, str) else devices
        parts: list[Report] = []
        if whole:
            one = {**kwargs, "dtypes": list(dtypes)}
            if devices != [None]:
                one["devices"] = list(devices)
            report = self._one(pair, one, parts)
            if not getattr(report, "crashed", None):
                return _merge(pair.name, [report])
        for device in devices:
            for dtype in dtypes:
                one = {**kwargs, "dtypes": [dtype]}
                if device is not None:
                    one["devices"] = [device]
                parts.append(self._one(pair, one, parts))
        return _merge(pair.name, parts)

    def outcomes(self, pair: Any, report: Report) -> list[Any]:
        """``pair.outcomes(report)``, with the runs the worker died in as ``crashed``
        (never as expected, whatever the pair's declaration)."""
        crashed = set(getattr(report, "crashed", ()))
        rows = []
        for row in pair.outcomes(report):
            if (row.dtype, row.device) in crashed:
                found = [
                    d
                    for d in report.divergences
                    if (d.dtype, d.device) == (row.dtype, row.device) and d.check == "error"
                ]
                note = found[-1].detail if found else "the worker process died"
                row = dataclasses.replace(row, outcome="crashed", expected=False, note=note)
            rows.append(row)
        return rows

    def interrupt(self) -> None:
        """Pass Ctrl-C on to the worker (from another thread than the one verifying):
        it sends the partial report of the pair it checks, which that thread's
        :meth:`verify` raises as :class:`~oracle.Interrupted`."""
        self.stopping = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
            except OSError:
                pass

    def kill(self) -> None:
        """End the worker now (from another thread); its thread's :meth:`verify` then
        raises :class:`~oracle.Interrupted` with what the worker last said."""
        self.stopping = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def stop(self) -> None:
        """End the worker at once and close the pipes (its partial report is in)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.close()

    def close(self) -> None:
        """End the worker: it exits when its request pipe closes; killed if it lingers."""
        proc, self._proc = self._proc, None
        for fd in (self._requests, self._replies):
            if fd is not None:
                os.close(fd)
        self._requests = self._replies = None
        self._buffer = b""
        if proc is not None:
            try:
                proc.wait(CLOSE_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # --- one run in the worker ---------------------------------------------------

    def _one(self, pair: Any, kwargs: dict[str, Any], done: Sequence[Report]) -> Report:
        request = {
            "module": pair.module,
            "name": pair.name,
            "kwargs": kwargs,
            "path": list(sys.path),
            "cache": _compile_cache_dir(),
            "triton": self.triton,
        }
        try:
            line = json.dumps(request) + "\n"
        except TypeError as exc:
            raise TypeError(
                f"{pair.name}: options for a pair checked in a worker process must be plain "
                f"values (numbers, strings, lists): {exc}"
            ) from None
        limit = {**pair.options, **kwargs}.get("timeout", DEFAULT_TIMEOUT)
        quiet = None if limit is None else 2 * limit + HANG_MARGIN
        if self._proc is None:
            self._start()
        note: dict[str, Any] = {}
        try:
            _write(self._requests, line.encode())
            while True:
                try:  # (no limit until the first word: starting and importing take long)
                    msg = self._receive(quiet if note else None)
                except TimeoutError:
                    assert self._proc is not None and quiet is not None
                    self._proc.kill()
                    self._proc.wait()
                    return self._crashed(pair, kwargs, note, hang_message(quiet))
                if msg is None:  # the worker is gone
                    if self.stopping:  # killed when it did not stop in time: not a crash
                        self.stop()
                        raise Interrupted(
                            _merge(pair.name, [*done, _unfinished(pair, kwargs, note)])
                        )
                    return self._crashed(pair, kwargs, note)
                if "progress" in msg:
                    if "example" in msg["progress"]:  # a new example: no call made yet
                        note = {}
                    note.update(msg["progress"])
                elif "report" in msg:
                    return report_from_dict(msg["report"])
                elif "interrupted" in msg:  # Ctrl-C reached the worker first
                    partial = report_from_dict(msg["interrupted"])
                    self.stop()
                    raise Interrupted(_merge(pair.name, [*done, partial]))
                elif "error" in msg:
                    raise _error(msg["error"])
        except BrokenPipeError:  # it died between two pairs
            return self._crashed(pair, kwargs, note)
        except Interrupted:
            raise
        except KeyboardInterrupt:
            partial = self._interrupted()
            if partial is None:
                raise
            raise Interrupted(_merge(pair.name, [*done, partial])) from None

    def _crashed(
        self, pair: Any, kwargs: dict[str, Any], note: dict[str, Any], how: str | None = None
    ) -> Report:
        assert self._proc is not None
        rc = self._proc.wait()
        self.close()
        finding = _crash_finding(pair, kwargs, note, how or death_message(rc))
        run = RunSummary(dtype=finding.dtype, device=finding.device)
        run.examples = note.get("example", 0)
        return IsolatedReport(
            name=pair.name,
            runs=[run],
            divergences=[finding],
            seed=kwargs.get("seed"),
            crashed=[(finding.dtype, finding.device)],
        )

    def _interrupted(self) -> Report | None:
        """Ctrl-C: pass it on to the worker (a terminal sends it to both, a kill to us
        alone), take its partial report if it comes at once, and end it."""
        report = None
        if self._proc is not None and self._proc.poll() is None:
            self.interrupt()
            deadline = time.monotonic() + INTERRUPT_GRACE
            while True:
                try:
                    msg = self._receive(deadline - time.monotonic())
                except (KeyboardInterrupt, TimeoutError):
                    break  # a second Ctrl-C, or no report in time: no more waiting
                if msg is None:
                    break
                if "interrupted" in msg:
                    report = report_from_dict(msg["interrupted"])
                    break
        if self._proc is not None:
            self._proc.kill()
        self.close()
        return report

    # --- the worker process and its pipes ----------------------------------------

    def _start(self) -> None:
        self.stopping = False  # a fresh worker: nobody asked it to stop
        requests_r, self._requests = os.pipe()
        self._replies, replies_w = os.pipe()
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        # the same oracle as ours, whatever made it importable here
        env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
        # Ctrl-C is ignored until the worker is ready to answer it (_serve): one that
        # comes while it imports torch and JAX ends it without a traceback
        boot = (
            "import signal, runpy; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "runpy.run_module('oracle.isolate', run_name='__main__', alter_sys=True)"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-c", boot, str(requests_r), str(replies_w)],
            pass_fds=(requests_r, replies_w),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else None,
            env=env,
        )
        os.close(requests_r)
        os.close(replies_w)

    def _receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The worker's next message; None when it is gone; ``TimeoutError`` when it
        sent nothing for ``timeout`` seconds."""
        assert self._replies is not None
        while b"\n" not in self._buffer:
            if timeout is not None:
                ready, _, _ = select.select([self._replies], [], [], max(timeout, 0))
                if not ready:
                    raise TimeoutError
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


def _unfinished(pair: Any, kwargs: dict[str, Any], note: dict[str, Any]) -> IsolatedReport:
    """The partial report of a run the worker was killed in after Ctrl-C (it sent none)."""
    run = RunSummary(
        dtype=note.get("dtype") or kwargs["dtypes"][0],
        device=note.get("device") or (kwargs.get("devices") or ["cpu"])[0],
    )
    run.examples = note.get("example", 0)
    return IsolatedReport(name=pair.name, runs=[run], seed=kwargs.get("seed"), interrupted=True)


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _write(fd: int | None, data: bytes) -> None:
    assert fd is not None
    while data:
        data = data[os.write(fd, data) :]


def _compile_cache_dir() -> str | None:
    """The parent's JAX compilation cache, for the worker to share (the programs turn it
    on; a library call never does)."""
    jax = sys.modules.get("jax")
    return getattr(jax.config, "jax_compilation_cache_dir", None) if jax else None


def _error(info: dict[str, Any]) -> BaseException:
    """An error the worker's verify raised (misuse, say), raised again here."""
    kind = {"TypeError": TypeError, "ValueError": ValueError}.get(info["type"], RuntimeError)
    if kind is RuntimeError:
        return RuntimeError(f"in the worker process:\n{info['traceback']}")
    return kind(info["message"])


def _merge(name: str, parts: Iterable[Report]) -> IsolatedReport:
    parts = list(parts)
    return IsolatedReport(
        name=name,
        runs=[r for p in parts for r in p.runs],
        divergences=[d for p in parts for d in p.divergences],
        twin=parts[0].twin if parts else "hand",
        seed=next((p.seed for p in parts if p.seed is not None), None),
        interrupted=any(p.interrupted for p in parts),
        crashed=[c for p in parts for c in getattr(p, "crashed", ())],
    )


# --- reports as JSON, both ways ---------------------------------------------------


def report_to_dict(report: Report) -> dict[str, Any]:
    """``report.to_dict()`` with what the messages also need (name, values at worst)."""
    data = report.to_dict()
    for d, out in zip(report.divergences, data["divergences"], strict=True):
        out.update(name=d.name, actual=d.actual, expected=d.expected)
    return data


def _float(x: Any) -> float | None:
    return None if x is None else float(x)  # "nan", "inf" come back as floats


def _example(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    args = []
    for a in data.get("args", []):
        if isinstance(a, dict) and {"dtype", "shape", "values"} <= set(a):
            values = [float(v) if isinstance(v, str) else v for v in a["values"]]
            args.append(np.array(values, dtype=a["dtype"]).reshape(a["shape"]))
        else:
            args.append(a)
    return {"dims": dict(data.get("dims", {})), "args": args}


def _plain_example(ex: dict[str, Any]) -> dict[str, Any]:
    """An example's dims and values as JSON (arrays as dtype, shape and flat values)."""
    args = []
    for a in ex.get("args", []):
        if isinstance(a, np.ndarray):
            flat = [v if np.isfinite(v) else str(v) for v in a.reshape(-1).tolist()]
            args.append({"dtype": str(a.dtype), "shape": list(a.shape), "values": flat})
        elif isinstance(a, (int, float, str, bool)) or a is None:
            args.append(a)
        else:
            args.append(repr(a))
    return {"dims": dict(ex.get("dims", {})), "args": args}


def report_from_dict(data: dict[str, Any]) -> IsolatedReport:
    names = {f.name for f in dataclasses.fields(Divergence)} - {"example", "replay_data"}
    divergences = []
    for d in data["divergences"]:
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("max_abs_error", "max_rel_error", "allowed", "actual", "expected"):
            if k in kw:
                kw[k] = _float(kw[k])
        if kw.get("worst_index") is not None:
            kw["worst_index"] = tuple(kw["worst_index"])
        divergences.append(Divergence(**kw, example=_example(d.get("example"))))
    run_names = {f.name for f in dataclasses.fields(RunSummary)}
    return IsolatedReport(
        name=data["name"],
        runs=[RunSummary(**{k: v for k, v in r.items() if k in run_names}) for r in data["runs"]],
        divergences=divergences,
        twin=data.get("twin", "hand"),
        seed=data.get("seed"),
        interrupted=bool(data.get("interrupted")),
        crashed=[tuple(c) for c in data.get("crashed", [])],
    )


# --- the worker --------------------------------------------------------------------


def _serve(requests_fd: int, replies_fd: int) -> None:
    """Answer requests (one JSON line each) until the parent closes the pipe."""
    import faulthandler
    import traceback

    from .pair import progress

    faulthandler.enable()  # a native crash prints its stack to stderr before we die

    def send(msg: dict[str, Any]) -> None:
        _write(replies_fd, (json.dumps(msg, default=repr) + "\n").encode())

    def note(n: dict[str, Any]) -> None:
        if "values" in n:
            n = {**n, "values": _plain_example(n["values"])}
        send({"progress": n})

    def first_interrupt_only(signum: int, frame: Any) -> None:
        # a terminal's Ctrl-C reaches us, and the parent passes it on too: one is enough
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first_interrupt_only)
    progress.set_sink(note)
    cache = triton = None
    with os.fdopen(requests_fd, "r") as requests:
        for line in requests:
            req = json.loads(line)
            try:
                sys.path[:0] = [p for p in req["path"] if p not in sys.path]
                if req.get("cache") and cache is None:
                    from .options import enable_compile_cache

                    cache = enable_compile_cache(req["cache"])
                if req.get("triton") and triton is None:  # before the module's kernels
                    from .pair.triton import prepare

                    triton = prepare(req["triton"])
                importlib.import_module(req["module"])
                from .registration import registry

                report = registry()[req["name"]].verify(**req["kwargs"])
            except Interrupted as exc:
                send({"interrupted": report_to_dict(exc.report)})
                return
            except KeyboardInterrupt:
                return
            except Exception as exc:
                send(
                    {
                        "error": {
                            "type": type(exc).__name__,
                            "message": str(exc),
                            "traceback": traceback.format_exc(),
                        }
                    }
                )
                continue
            send({"report": report_to_dict(report)})


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
