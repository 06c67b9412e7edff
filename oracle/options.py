"""What the command line and the pytest plugin share: option values, JAX's persistent
compilation cache, and reproducer files.

Light at import time (the pytest plugin imports it): JAX loads only when the compile
cache is turned on, and only the two programs do that, never a library call.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable
from typing import Any

from .vocabulary import CHECK_NAMES

__all__ = [
    "CHECKS",
    "parse_checks",
    "parse_timeout",
    "enable_compile_cache",
    "torch_built_for_gpu",
    "reproducer_filename",
    "write_reproducers",
]

#: the checks ``verify(checks=...)`` takes (see the contract)
CHECKS = CHECK_NAMES


def torch_built_for_gpu() -> bool | None:
    """Whether the installed torch was built for a GPU (CUDA or ROCm), read from its
    ``torch/version.py`` without importing torch; None when that cannot be told.

    A CPU build can see no GPU, so the plugin's header can say "cpu" without importing
    torch and JAX: an xdist controller, which runs no test, then never loads them."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), "version.py")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    values = dict(re.findall(r"^(cuda|hip)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", text, re.M))
    if set(values) != {"cuda", "hip"}:
        return None
    return any(v != "None" for v in values.values())


def parse_checks(text: str) -> tuple[str, ...]:
    """``"vjp,jvp"`` -> ``("vjp", "jvp")``; an ``argparse`` type (pytest's options too)."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in CHECKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a comma-separated list of {', '.join(CHECKS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return tuple(dict.fromkeys(names))


def parse_timeout(text: str) -> float:
    """Seconds per call of either side: a positive number; an ``argparse`` type."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of seconds")
    return value


def enable_compile_cache(path: str) -> str:
    """Turn on JAX's persistent compilation cache in ``path`` for this process, unless
    the user already chose a directory (``JAX_COMPILATION_CACHE_DIR``), which is kept.
    Returns the directory in use. Process-wide: for the programs only."""
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    jax.config.update("jax_compilation_cache_dir", path)
    # the twins' programs are small and quick to compile: keep every one of them
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def reproducer_filename(d: Any) -> str:
    """``<pair>-<dtype>-<device>-<check>[-arg<argument>].py`` for divergence ``d``."""
    arg = f"-arg{d.argument}" if d.argument is not None else ""
    stem = f"{d.name or 'pair'}-{d.dtype}-{d.device}-{d.check}{arg}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) + ".py"


def write_reproducers(reports: Iterable[Any], directory: str) -> list[str]:
    """Write one script per finding (kinks aside) of ``reports`` into ``directory``;
    returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths: list[str] = []
    for report in reports:
        for d in report.findings:
            if not d.reproducer:
                continue
            path = os.path.join(directory, reproducer_filename(d))
            stem, n = path[:-3], 2
            while path in paths:  # two findings of one kind: keep both
                path, n = f"{stem}-{n}.py", n + 1
            with open(path, "w") as fh:
                fh.write(d.reproducer)
            paths.append(path)
    return paths
