r"""Input domains (``tensor(..., domain=...)``) and mapped tensors (``tensor(...).map(fn)``).

Every domain is a deterministic function of arrays that hypothesis draws (through the
same element strategies as a plain ``tensor``), so hypothesis still does the drawing,
the shrinking and the replaying: shrinking the drawn arrays towards zero shrinks each
domain towards its simplest member (the identity, the uniform distribution, evenly
spaced values). The result is rounded to float32 and held in float64, as every drawn
float is, so that the float32 and float64 checks of one example see the same values;
each construction keeps its property after that rounding. Nothing here knows torch or
JAX.

* ``positive``: elements in ``[max(low, POSITIVE_FLOOR), high]``.
* ``spd``: :math:`A = B B^\top + \delta I` with :math:`B` drawn in ``[low, high]`` and
  :math:`\delta = \mathrm{SPD\_MARGIN}\,(1 + \lVert B\rVert_F^2 / k)`, so
  :math:`\mathrm{cond}(A) \le 1 + k / \mathrm{SPD\_MARGIN}`; symmetric to the bit.
* ``orthogonal``: :math:`Q` of the QR factorisation of a drawn :math:`B`, columns signed so
  that :math:`\mathrm{diag}(R) \ge 0`; :math:`Q^\top Q = I` to float32 rounding.
* ``simplex``: the softmax, along the last axis, of logits drawn in ``[low, high]``;
  every element positive, each row sums to 1 to float32 rounding.
* ``distinct``: values spread over ``[low, high]`` by drawn gaps of at least
  ``(high - low) / (DISTINCT_SPREAD (n + 1))``, in a drawn order: no two elements tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..validation import InputSpecError, InputSpecTypeError

__all__ = [
    "DOMAINS",
    "POSITIVE_FLOOR",
    "SPD_MARGIN",
    "SIMPLEX_MAX_SPREAD",
    "DISTINCT_SPREAD",
    "check_domain",
    "domain_array",
    "apply_maps",
    "map_name",
]


#: the smallest value "positive" draws when ``low <= 0``: closer to 0, the derivatives of
#: log, 1/x and sqrt grow faster than float32 can compare them (1/x^2 is 1e6 here); pass
#: a positive ``low`` to go closer
POSITIVE_FLOOR = 1e-3
#: the SPD diagonal shift relative to the mean squared row norm of B: it bounds the
#: condition number by 1 + k / SPD_MARGIN (41 for 4 x 4), so float32 rounding (2^-24
#: relative per entry) never makes A indefinite and Cholesky succeeds in float32
SPD_MARGIN = 0.1
#: the widest logit range the simplex accepts: e^-60 ~ 1e-26 keeps every probability a
#: normal float32 (XLA flushes subnormals to zero, torch does not)
SIMPLEX_MAX_SPREAD = 60.0
#: gaps between distinct values are drawn in [1, DISTINCT_SPREAD] before scaling to
#: [low, high]: the smallest gap is then at least 1 / DISTINCT_SPREAD of the mean one
DISTINCT_SPREAD = 4.0


def _round32(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # beyond float32's range: inf, caught by the callers
        a32 = np.asarray(a, dtype=np.float64).astype(np.float32)
    # subnormals to zero: XLA on CPU flushes them, torch does not (as for drawn floats)
    a32[np.abs(a32) < np.finfo(np.float32).tiny] = 0.0
    return a32.astype(np.float64)


def _spd(b: np.ndarray) -> np.ndarray:
    k = b.shape[-1]
    gram = b @ np.swapaxes(b, -1, -2)
    norm2 = np.sum(b * b, axis=(-1, -2), keepdims=True)
    a = gram + SPD_MARGIN * (1.0 + norm2 / max(k, 1)) * np.eye(k)
    # exactly symmetric before rounding, so the float32 matrix is exactly symmetric too
    return _round32(0.5 * (a + np.swapaxes(a, -1, -2)))


def _orthogonal(b: np.ndarray) -> np.ndarray:
    q, r = np.linalg.qr(b)
    # Householder QR is orthogonal even for a singular B (all zeros gives I); the sign
    # fix makes Q a function of B alone, whatever LAPACK's sign convention
    signs = np.where(np.diagonal(r, axis1=-2, axis2=-1) < 0, -1.0, 1.0)
    return _round32(q * signs[..., None, :])


def _simplex(logits: np.ndarray) -> np.ndarray:
    if logits.shape[-1] == 0:  # a dimension drawn at size 0: nothing to normalise
        return logits
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return _round32(z / z.sum(axis=-1, keepdims=True))


def _distinct(gaps: np.ndarray, order: Sequence[int], shape: tuple[int, ...], low, high):
    n = int(np.prod(shape))
    if n == 0:
        return np.zeros(shape)
    cum = np.cumsum(gaps)
    values = _round32(low + (high - low) * cum[:n] / cum[-1])
    if np.unique(values).size != n:
        raise ValueError(
            f"domain='distinct': {n} values do not fit apart in float32 within "
            f"[{low}, {high}]; widen the range or use fewer elements"
        )
    return values[np.asarray(order, dtype=np.int64)].reshape(shape)


def _order(n: int, bulk_threshold: int) -> st.SearchStrategy[Sequence[int]]:
    if n <= bulk_threshold:
        # shrinks towards the identity: the minimal example is sorted
        return st.permutations(range(n))
    return st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s).permutation(n))


@dataclass(frozen=True)
class Domain:
    """One value of ``tensor(..., domain=...)``: what the spec must allow (``check``
    raises a ValueError naming the spec) and how its arrays are drawn (``draw(shape,
    low, high, float_array, bulk_threshold)``, a strategy of float32-representable
    float64 arrays)."""

    name: str
    draw: Callable[..., st.SearchStrategy[np.ndarray]]
    check: Callable[[tuple[str | int, ...], float, float, str], None] = lambda *a: None


def _square(name: str) -> Callable[[tuple[str | int, ...], float, float, str], None]:
    def check(shape: tuple[str | int, ...], low: float, high: float, where: str) -> None:
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(
                f"{where}: domain={name!r} needs a square trailing pair of dimensions, like "
                f'"k k" or "b 3 3" (the same name or size twice); got shape '
                f"{' '.join(map(str, shape))!r}"
            )

    return check


def _check_simplex(shape: tuple[str | int, ...], low: float, high: float, where: str) -> None:
    if not shape:
        raise ValueError(
            f'{where}: domain="simplex" needs at least one dimension (the last axis '
            f'sums to 1), like "n" or "b n"; got a scalar shape ""'
        )
    if high - low > SIMPLEX_MAX_SPREAD:
        raise ValueError(
            f'{where}: domain="simplex" draws logits in [low, high]; high - low = '
            f"{high - low:g} must be at most {SIMPLEX_MAX_SPREAD:g} (wider, the smallest "
            f"probabilities underflow float32)"
        )


def _check_positive(shape: tuple[str | int, ...], low: float, high: float, where: str) -> None:
    if high <= max(low, POSITIVE_FLOOR):
        raise ValueError(
            f'{where}: domain="positive" draws in [max(low, {POSITIVE_FLOOR:g}), high]; '
            f"high={high} must be above {max(low, POSITIVE_FLOOR):g}"
        )


def _draw_distinct(shape, low, high, float_array, bulk_threshold):
    n = int(np.prod(shape))
    return st.tuples(float_array((n + 1,), 1.0, DISTINCT_SPREAD), _order(n, bulk_threshold)).map(
        lambda drawn: _distinct(drawn[0], drawn[1], shape, low, high)
    )


#: every domain, by name: one line registers a new one
REGISTERED: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            "positive",
            lambda shape, low, high, fa, _: fa(shape, max(low, POSITIVE_FLOOR), high),
            _check_positive,
        ),
        Domain(
            "spd", lambda shape, low, high, fa, _: fa(shape, low, high).map(_spd), _square("spd")
        ),
        Domain(
            "orthogonal",
            lambda shape, low, high, fa, _: fa(shape, low, high).map(_orthogonal),
            _square("orthogonal"),
        ),
        Domain(
            "simplex",
            lambda shape, low, high, fa, _: fa(shape, low, high).map(_simplex),
            _check_simplex,
        ),
        Domain("distinct", _draw_distinct),
    )
}
DOMAINS = tuple(REGISTERED)


def check_domain(
    domain: Any, shape: tuple[str | int, ...], low: float, high: float, where: str
) -> str | None:
    """Validate ``domain`` against the spec's shape and bounds; return it."""
    if domain is None:
        return None
    if not isinstance(domain, str) or domain not in REGISTERED:
        raise ValueError(
            f"{where}: unknown domain={domain!r}; expected one of "
            f"{', '.join(map(repr, DOMAINS))} (or .map(fn) for anything else)"
        )
    REGISTERED[domain].check(shape, low, high, where)
    return domain


def domain_array(
    domain: str,
    shape: tuple[int, ...],
    low: float,
    high: float,
    float_array: Callable[[tuple[int, ...], float, float], st.SearchStrategy],
    bulk_threshold: int,
) -> st.SearchStrategy[np.ndarray]:
    """A strategy for a float64 array of ``shape`` in ``domain``, float32-representable.

    ``float_array(shape, low, high)`` is the plain tensor strategy the domains build on.
    """
    return REGISTERED[domain].draw(shape, low, high, float_array, bulk_threshold)


def map_name(fn: Callable) -> str:
    """A stable name for ``fn`` (no memory address: the name goes into database keys)."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def apply_maps(value: np.ndarray, maps: Sequence[Callable], where: str) -> np.ndarray:
    """``value`` through each of ``maps``, rounded to float32 and held in float64."""
    for fn in maps:
        try:
            out = fn(np.array(value, dtype=np.float64))
        except (Exception, SystemExit, GeneratorExit) as exc:  # user code: never the end
            raise InputSpecError(
                f"{where}: .map({map_name(fn)}) raised {type(exc).__name__}: {exc} on a drawn "
                f"array of shape {np.shape(value)}"
            ) from exc
        try:
            arr = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputSpecTypeError(
                f"{where}: .map({map_name(fn)}) returned {type(out).__name__}; expected an "
                f"array of floats"
            ) from exc
        # both dtypes must see the same values: round once, here, as drawn floats are
        value = _round32(arr)
        if not np.all(np.isfinite(value)):
            raise InputSpecError(
                f"{where}: .map({map_name(fn)}) returned non-finite values (or values beyond "
                f"float32's range, about 3.4e38)"
            )
    return value
