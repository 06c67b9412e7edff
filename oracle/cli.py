"""The command line: ``python -m oracle [MODULE ...]``.

Imports the modules (default: ``losses``), checks every pair they registered, prints one
row per pair, dtype and device, and exits 0 when every outcome is as expected (clean
pairs clean, known divergences flagged as declared), 1 otherwise, 2 on usage errors,
130 after Ctrl-C (the table of what was checked until then is printed first).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .options import CHECKS, enable_compile_cache, parse_checks, parse_timeout, write_reproducers
from .pool import parse_jobs
from .vocabulary import DTYPE_NAMES

__all__ = ["main", "format_table"]


#: the exit status after Ctrl-C: 128 + SIGINT, as a shell reports a process it interrupted
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m oracle",
        description="Check hand-written PyTorch backward passes against JAX twins.",
    )
    p.add_argument(
        "modules",
        nargs="*",
        default=["losses"],
        metavar="MODULE",
        help="modules whose registered pairs to check (default: losses)",
    )
    p.add_argument(
        "--device",
        action="append",
        choices=["cpu", "cuda"],
        help="device to check on (repeatable; default: cpu, plus cuda when present)",
    )
    p.add_argument(
        "--dtype",
        action="append",
        choices=list(DTYPE_NAMES),
        help="dtype to check in (repeatable; default: float32 and float64; the low dtypes "
        "bfloat16, float16, autocast-bfloat16 and autocast-float16 only when named)",
    )
    p.add_argument(
        "--max-examples", type=int, default=None, help="examples per pair, dtype and device"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="hypothesis seed (default: a random one, printed)"
    )
    p.add_argument("-k", dest="pattern", default=None, help="only pairs whose name contains this")
    p.add_argument(
        "--json", dest="json_path", default=None, metavar="PATH", help="write the results as JSON"
    )
    p.add_argument(
        "--plot",
        dest="plot_dir",
        default=None,
        metavar="DIR",
        help="draw each gradient divergence into DIR/<name>-<dtype>-<device>.png",
    )
    p.add_argument(
        "--reproducers",
        dest="reproducer_dir",
        default=None,
        metavar="DIR",
        help="write one replay script per finding into DIR (runs from any directory)",
    )
    p.add_argument(
        "--checks",
        type=parse_checks,
        default=None,
        metavar="CHECK,...",
        help=f"checks to run, comma-separated, among {', '.join(CHECKS)} (default: the oracle's)",
    )
    p.add_argument(
        "--timeout",
        type=parse_timeout,
        default=None,
        metavar="S",
        help="seconds allowed per call of either side (default: the oracle's)",
    )
    p.add_argument(
        "--triton",
        choices=["interpret", "compiled", "auto"],
        default=None,
        help="Triton kernels: interpret (Triton's interpreter, on the CPU; set up before the "
        "MODULEs are imported), compiled (a GPU), or auto (the interpreter without a GPU)",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="check each pair in a worker process: user code that kills the process "
        "(os._exit, a segfault, the out-of-memory killer) is a finding, and the run goes on",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=parse_jobs,
        default=1,
        metavar="N",
        help="check N pairs at once, each in a worker process as with --isolate (auto: one "
        "per CPU, at most 8); the table is the same, in registration order (default: 1, in "
        "this process)",
    )
    p.add_argument("--list", action="store_true", help="list the registered pairs and exit")
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep JAX's compiled programs between runs (default: kept in "
        "$ORACLE_CACHE_DIR or ~/.cache/gradient-oracle/jax)",
    )
    return p


def _compile_cache() -> str:
    """Turn on JAX's persistent compilation cache for this process (the program's own:
    only ``python -m oracle`` does this, never a library call)."""
    path = os.environ.get("ORACLE_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "gradient-oracle", "jax"
    )
    return enable_compile_cache(path)


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if x == x else "-"
    return str(x)


def format_table(rows: Sequence[Any]) -> str:
    """The catalog table: one line per pair x dtype x device (pure; tested)."""
    head = (
        "pair",
        "dtype",
        "device",
        "outcome",
        "as expected",
        "blame",
        "diagnosis",
        "worst error",
        "examples",
        "kinks",
        "beyond the vjp",
    )
    lines = [head]
    for r in rows:
        lines.append(
            (
                r.name,
                r.dtype,
                r.device,
                r.outcome,
                "yes" if r.expected else "NO",
                _fmt(r.blame),
                _fmt(r.diagnosis),
                _fmt(r.worst_error),
                str(r.examples),
                str(r.kinks),
                getattr(r, "capabilities", "") or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _progress(out: TextIO, text: str, final: bool = False) -> None:
    if out.isatty():
        out.write("\r\033[K" + text + ("\n" if final else ""))
    elif final:
        out.write(text + "\n")
    out.flush()


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    *,
    program: bool = False,
) -> int:
    """Run the command line; ``program=True`` (``python -m oracle``) may also turn on
    JAX's persistent compilation cache, a process-wide setting."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if program and not args.no_compile_cache:
        _compile_cache()
    try:
        return _run(args, stdout, stderr)
    except _UsageError as exc:
        stderr.write(f"python -m oracle: error: {exc}\n")
        return 2


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.max_examples is not None and args.max_examples < 1:
        raise _UsageError(f"--max-examples={args.max_examples} must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise _UsageError(f"--seed={args.seed} must be non-negative")
    interpreted = False
    if args.triton:  # before the modules define their kernels
        from .pair.triton import prepare as prepare_triton

        try:
            interpreted = prepare_triton(args.triton)
        except (RuntimeError, ImportError) as exc:
            raise _UsageError(f"--triton {args.triton}: {exc}") from exc
    sys.path.insert(0, os.getcwd())
    for module in args.modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise _UsageError(f"cannot import module {module!r}: {exc}") from exc
    from .registration import registry

    # the interpreter runs kernels on CPU tensors
    devices = _devices(args.device or (["cpu"] if interpreted else None))
    pairs = list(registry().in_modules(args.modules))
    if args.pattern:
        pairs = [p for p in pairs if args.pattern in p.name]
    if not pairs:
        raise _UsageError(
            f"no registered pairs in {', '.join(args.modules)}"
            + (f" matching {args.pattern!r}" if args.pattern else "")
        )
    if args.list:
        for p in pairs:
            stdout.write(
                f"{p.name}  ({p.module})"
                + (f"  known divergence: {p.known_divergence.why}" if p.known_divergence else "")
                + "\n"
            )
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    stderr.write(
        f"oracle: checking {len(pairs)} pairs, seed {seed} (pass --seed {seed} to replay)\n"
    )
    kwargs: dict[str, Any] = {"devices": devices, "seed": seed}
    if args.dtype:
        kwargs["dtypes"] = tuple(args.dtype)
    if args.max_examples is not None:
        kwargs["max_examples"] = args.max_examples
    # passed on only when given, so verify's own defaults apply otherwise
    if args.checks is not None:
        kwargs["checks"] = args.checks
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout

    if args.jobs > 1 and len(pairs) > 1:
        done = _in_workers(pairs, kwargs, args.jobs, args.triton, stderr)
        return _report(args, seed, *done, stdout)
    rows, reports = [], {}
    start = time.perf_counter()
    interrupted = 0  # the pairs Ctrl-C left unchecked, the one it stopped included
    isolated = None
    if args.isolate:
        from .isolate import Isolated

        isolated = Isolated(args.triton)
    try:
        for i, pair in enumerate(pairs, 1):
            _progress(stderr, f"[{i}/{len(pairs)}] {pair.name} ...")
            t0 = time.perf_counter()
            report = isolated.verify(pair, **kwargs) if isolated else pair.verify(**kwargs)
            reports[pair.name] = report
            got = isolated.outcomes(pair, report) if isolated else pair.outcomes(report)
            rows.extend(got)
            mark = "ok" if all(r.expected for r in got) else "UNEXPECTED"
            _progress(
                stderr,
                f"[{i}/{len(pairs)}] {pair.name}: {', '.join(r.outcome for r in got)} "
                f"({mark}, {time.perf_counter() - t0:.1f}s)",
                final=True,
            )
    except KeyboardInterrupt as exc:  # the partial report of what was checked, then 130
        interrupted = len(pairs) - i + 1
        partial = getattr(exc, "report", None)  # oracle.Interrupted carries one
        if partial is not None:
            reports[pair.name] = partial
            rows.extend(isolated.outcomes(pair, partial) if isolated else pair.outcomes(partial))
        _progress(stderr, f"[{i}/{len(pairs)}] {pair.name}: interrupted (Ctrl-C)", final=True)
    finally:
        if isolated is not None:
            isolated.close()
    stopped = f"INTERRUPTED (Ctrl-C) in {pair.name}" if interrupted else ""
    done = (time.perf_counter() - start, stopped, interrupted, len(pairs))
    return _report(args, seed, rows, reports, done, stdout)


def _in_workers(
    pairs: Sequence[Any], kwargs: dict[str, Any], jobs: int, triton: str | None, stderr: TextIO
):
    """``--jobs N``: the pairs in N worker processes (:mod:`oracle.pool`); the rows in
    registration order, and what :func:`_report` says of an interruption."""
    from .pool import Stopped, check_in_workers

    start, count = time.perf_counter(), [0]
    n = len(pairs)

    def done(i: int, pair: Any, got: list[Any], seconds: float) -> None:
        count[0] += 1
        mark = "ok" if all(r.expected for r in got) else "UNEXPECTED"
        outcomes = ", ".join(r.outcome for r in got)
        _progress(
            stderr, f"[{count[0]}/{n}] {pair.name}: {outcomes} ({mark}, {seconds:.1f}s)", True
        )

    stderr.write(f"oracle: {min(jobs, n)} worker processes\n")
    stopped, left = "", 0
    try:
        checked = check_in_workers(pairs, kwargs, jobs, done, triton)
    except Stopped as exc:
        checked = exc.checked
        names = [pairs[i].name for i in sorted(checked.interrupted)]
        left = len(checked.interrupted) + len(checked.unchecked)
        stopped = "INTERRUPTED (Ctrl-C)" + (f" in {', '.join(names)}" if names else "")
        _progress(stderr, "interrupted (Ctrl-C)", True)
    order = sorted(checked.reports)
    rows = [r for i in order for r in checked.rows[i]]
    reports = {pairs[i].name: checked.reports[i] for i in order}
    return rows, reports, (time.perf_counter() - start, stopped, left, n)


def _report(args, seed, rows, reports, done, stdout: TextIO) -> int:
    """The table, the summary, the reports of what was unexpected, and the files asked
    for; the exit status."""
    seconds, stopped, interrupted, n = done
    stdout.write(format_table(rows) + "\n")
    unexpected = [r for r in rows if not r.expected]
    stdout.write(
        f"\n{len(rows) - len(unexpected)} of {len(rows)} outcomes as expected "
        f"in {seconds:.1f}s (seed {seed})\n"
    )
    if interrupted:
        stdout.write(f"{stopped}: {interrupted} of {n} pairs not checked to the end\n")
    for name in dict.fromkeys(r.name for r in unexpected):
        stdout.write(f"\n{reports[name]}\n")
    if args.reproducer_dir:
        for path in write_reproducers(reports.values(), args.reproducer_dir):
            stdout.write(f"reproducer: {path}  (python {path})\n")
    if args.plot_dir:
        _plots(reports, args.plot_dir, stdout)
    if args.json_path:
        payload = {
            "seed": seed,
            "ok": not unexpected and not interrupted,
            "interrupted": bool(interrupted),
            "rows": [r.to_dict() for r in rows],
            "reports": {name: rep.to_dict() for name, rep in reports.items()},
        }
        directory = os.path.dirname(args.json_path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(args.json_path, "w") as fh:
            json.dump(payload, fh, indent=2)
    return EXIT_INTERRUPTED if interrupted else 1 if unexpected else 0


def _devices(asked: list[str] | None) -> tuple[str, ...]:
    """The devices to check on; a missing GPU is said in the command line's words."""
    from .pair.bridge import available_devices

    present = available_devices()
    if not asked:
        return present
    if "cuda" in asked and "cuda" not in present:
        import torch

        why = (
            "torch sees no GPU"
            if not torch.cuda.is_available()
            else "JAX sees no GPU (install a CUDA jaxlib)"
        )
        raise _UsageError(
            f"--device cuda was asked for, but {why}; leave out --device to check on "
            "every device present"
        )
    return tuple(dict.fromkeys(asked))


def _plots(reports: dict[str, Any], directory: str, out: TextIO) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, rep in reports.items():
        for d in rep.findings:
            if d.check != "vjp" or not d.replay_data:
                continue
            path = os.path.join(directory, f"{name}-{d.dtype}-{d.device}.png")
            try:
                from .pictures import plot_divergence

                plot_divergence(d, path)
                out.write(f"plot: {path}\n")
            except ImportError as exc:
                out.write(f"plot: skipped ({exc})\n")
                return
