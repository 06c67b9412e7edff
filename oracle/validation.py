"""Argument checks for the public API, in one place (as hypothesis keeps its validators).

Each names the argument, says what was expected and what it got, and raises ``TypeError``
for a value of the wrong kind, ``ValueError`` for one out of range. Specs' own structure
(shapes, domains) is checked where it is parsed, with these for the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .vocabulary import CHECK_NAMES, DTYPE_NAMES

__all__ = [
    "InputSpecError",
    "InputSpecTypeError",
    "check_int",
    "check_number",
    "check_non_negative",
    "check_timeout",
    "normalize_checks",
    "normalize_dtypes",
]


class InputSpecError(ValueError):
    """An input spec failed on a value hypothesis drew (a ``.map`` that raised)."""


class InputSpecTypeError(TypeError):
    """An input spec made a value of the wrong kind (a ``.map`` returning no floats)."""


def check_int(value: Any, name: str, minimum: int) -> int:
    """An int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}")
    return int(value)


def check_number(value: Any, name: str, where: str = "") -> float:
    """A finite real number (not a bool). ``where`` prefixes the message (the spec)."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{prefix}{name} must be a number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{prefix}{name}={value} must be finite")
    return value


def check_non_negative(value: Any, name: str) -> float:
    """A tolerance: a number >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number; got {value!r}")
    return float(value)


def check_timeout(timeout: Any) -> float | None:
    """Seconds per call of either side: a positive number, or None for no limit."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None; got {timeout!r}")
    if not timeout > 0 or timeout == float("inf"):
        raise ValueError(f"timeout={timeout} must be a positive number of seconds (or None)")
    return float(timeout)


def normalize_checks(checks: Any) -> tuple[str, ...] | None:
    """``None`` (the default set) or the asked checks, validated, in table order."""
    if checks is None:
        return None
    if isinstance(checks, str):
        checks = [c.strip() for c in checks.split(",") if c.strip()]
    if not isinstance(checks, Iterable):
        raise TypeError(
            f"checks must be None or a list of check names from {', '.join(CHECK_NAMES)}; got {checks!r}"
        )
    asked = list(checks)
    for c in asked:
        if c not in CHECK_NAMES:
            raise ValueError(
                f"checks: unknown check {c!r}; expected a subset of "
                f"{', '.join(map(repr, CHECK_NAMES))} (or None for the default set)"
            )
    if not asked:
        raise ValueError(
            f"checks: expected at least one of {', '.join(map(repr, CHECK_NAMES))} "
            "(or None for the default set)"
        )
    return tuple(c for c in CHECK_NAMES if c in asked)


def normalize_dtypes(dtypes: Any) -> tuple[str, ...]:
    """The dtypes to check in, by name, each once (``torch.float32`` is taken too)."""
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    out = []
    for d in dtypes:
        name = str(d).replace("torch.", "")
        if name not in DTYPE_NAMES:
            raise ValueError(
                f"dtypes: unknown dtype {d!r}; expected one of {', '.join(map(repr, DTYPE_NAMES))}"
            )
        out.append(name)
    if not out:
        raise ValueError(f"dtypes: expected at least one of {', '.join(map(repr, DTYPE_NAMES))}")
    return tuple(dict.fromkeys(out))
