"""Argument checks for the public API, in one place (as hypothesis keeps its validators).

Each names the argument, says what was expected and what it got, and raises ``TypeError``
for a value of the wrong kind, ``ValueError`` for one out of range. Specs' own structure
(shapes, domains) is checked where it is parsed, with these for the numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
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
    "parse_shape",
    "check_bool",
    "check_bounds",
    "check_int_bound",
    "check_choice_values",
    "check_inputs_list",
    "check_dim_sizes",
    "check_dim_range",
    "check_user_tolerances",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[0-9]+$")


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


# --- input specs ------------------------------------------------------------------------


def parse_shape(shape: Any, where: str) -> tuple[str | int, ...]:
    """A spec's shape: ``"b n"`` (or a tuple/list) -> ``("b", "n")``; names and sizes."""
    if isinstance(shape, str):
        tokens: Sequence[Any] = shape.split()
    elif isinstance(shape, (tuple, list)):
        tokens = list(shape)
    else:
        raise TypeError(
            f"{where}: shape must be a string of space-separated dimension names or "
            f'integers, like "b n" or "3 n" ("" for a scalar); got {shape!r}'
        )
    out: list[str | int] = []
    for tok in tokens:
        if isinstance(tok, bool):
            raise TypeError(f"{where}: shape entry {tok!r} is a bool; expected a name or size")
        if isinstance(tok, int):
            if tok < 0:
                raise ValueError(f"{where}: shape size {tok} is negative")
            out.append(tok)
        elif isinstance(tok, str) and _INT.match(tok):
            out.append(int(tok))
        elif isinstance(tok, str) and _NAME.match(tok):
            out.append(tok)
        else:
            raise ValueError(
                f"{where}: shape {shape!r} has a malformed entry {tok!r}; expected a "
                f'dimension name (letters, digits, "_") or a non-negative integer, '
                f"separated by spaces"
            )
    return tuple(out)


def check_bool(value: Any, name: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be True or False; got {value!r}")
    return value


def check_bounds(low: Any, high: Any, where: str) -> tuple[float, float]:
    """A float spec's ``[low, high]``: finite numbers, low below high."""
    low = check_number(low, "low", where)
    high = check_number(high, "high", where)
    if not low < high:
        raise ValueError(f"{where}: low={low} must be less than high={high}")
    return low, high


def check_int_bound(bound: Any, name: str, where: str) -> int | str:
    """An integer spec's ``low``/``high``: an int, or a dimension's name."""
    if isinstance(bound, str):
        if not _NAME.match(bound):
            raise ValueError(
                f"{where}: {name}={bound!r} is neither an integer nor a dimension name"
            )
        return bound
    if isinstance(bound, bool) or not isinstance(bound, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int or a dimension name; got {bound!r}")
    return int(bound)


def check_choice_values(values: Any, where: str) -> tuple[float, ...]:
    """A choice spec's values: numbers exactly representable in float32."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{where}: values must be a non-empty sequence of numbers; got {values!r}")
    vals = tuple(check_number(v, "values", where) for v in values)
    for v in vals:
        if float(np.float32(v)) != v:
            raise ValueError(
                f"{where}: value {v!r} is not exactly representable in float32; the float32 "
                f"and float64 checks must see the same values"
            )
    return vals


def check_inputs_list(inputs: Any) -> Sequence[Any]:
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"inputs must be a list with one entry per positional argument "
            f"(tensor(...), integers(...), choice(...), a strategy or a value); got {inputs!r}"
        )
    return inputs


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_dim_sizes(name: str, b: Any) -> list[int]:
    """An explicit list (or range, or set) of allowed sizes for dimension ``name``."""
    sizes = list(b)
    if not sizes:
        raise ValueError(
            f"dims[{name!r}]={b!r}: expected at least one allowed size, like [4, 6, 8]"
        )
    bad = [v for v in sizes if not _is_int(v) or v < 0]
    if bad:
        raise ValueError(
            f"dims[{name!r}]={b!r}: allowed sizes must be non-negative ints; got {bad[0]!r}"
        )
    return [int(v) for v in sizes]


def check_dim_range(name: str, b: Any) -> tuple[int, int]:
    """A dimension's bounds: an int (a fixed size) or a ``(min, max)`` pair."""
    if _is_int(b):
        b = (int(b), int(b))
    if not isinstance(b, tuple) or len(b) != 2 or not all(_is_int(x) for x in b):
        raise TypeError(
            f"dims[{name!r}] must be an int or a (min, max) pair of ints (a tuple), or "
            f"a list of allowed sizes like [4, 6, 8]; got {b!r}"
        )
    lo, hi = int(b[0]), int(b[1])
    if lo < 0 or lo > hi:
        raise ValueError(f"dims[{name!r}]=({lo}, {hi}): expected 0 <= min <= max")
    return lo, hi


# --- tolerances -------------------------------------------------------------------------


def _both_or_none(given: str, missing: str, value: Any) -> ValueError:
    return ValueError(
        f"{given}={value!r} was given without {missing}: pass both ({missing}=0 still lets "
        f"{given} through, as in torch.testing.assert_close), or neither to keep the "
        f"oracle's own rule"
    )


def check_user_tolerances(rtol: Any, atol: Any, arguments: Collection[int | str]) -> None:
    """``rtol``/``atol``: both or neither; numbers >= 0, or dicts with the same keys,
    each a differentiated argument (an index or a parameter name) of ``arguments``."""
    for name, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, Mapping):
            for key, x in v.items():
                check_non_negative(x, f"{name}[{key!r}]")
        elif v is not None:
            check_non_negative(v, name)
    if atol is None:
        raise _both_or_none("rtol", "atol", rtol)
    if rtol is None:
        raise _both_or_none("atol", "rtol", atol)
    if isinstance(rtol, Mapping) != isinstance(atol, Mapping):
        raise ValueError(
            f"rtol={rtol!r} and atol={atol!r}: give both as numbers (every argument) or both "
            f"as dicts with the same keys (per argument)"
        )
    if not isinstance(rtol, Mapping):
        return
    for name, v in (("rtol", rtol), ("atol", atol)):
        for key in v:
            if isinstance(key, bool) or key not in arguments:
                raise ValueError(
                    f"{name} names argument {key!r}, which is not a differentiated argument; "
                    f"expected one of: {', '.join(map(repr, arguments)) or '(none)'}"
                )
    for given, other, g, o in (("rtol", "atol", rtol, atol), ("atol", "rtol", atol, rtol)):
        extra = [k for k in g if k not in o]
        if extra:
            raise ValueError(
                f"{given} names argument {extra[0]!r} but {other} does not: give both for "
                f"each argument ({other}={{{extra[0]!r}: 0.0}} still lets {given} through)"
            )
