"""Strategies of arrays, the bricks of the input specs' strategies: float64 arrays of
float32-representable values within bounds (special values included, large arrays filled
by numpy from drawn choices), integer arrays and arrays of given values. Nothing here
knows about specs, torch or JAX."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "inward32",
    "float_elements",
    "float_array",
    "int_array",
    "choice_array",
    "BULK_THRESHOLD",
]

#: Arrays with more elements than this are filled by numpy from drawn choices (a seed,
#: special values and where they go) instead of element by element: hypothesis's own
#: arrays() would repeat one fill value over most of a large array, and drawing ~1000
#: elements one by one overruns hypothesis's buffer for one example.
BULK_THRESHOLD = 128


def inward32(value: float, up: bool) -> float:
    """The float32 nearest ``value`` that stays inside the interval."""
    f = np.float32(value)
    if up and float(f) < value:
        f = np.nextafter(f, np.float32(np.inf))
    if not up and float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def float_elements(low: float, high: float) -> st.SearchStrategy[float]:
    lo, hi = inward32(low, up=True), inward32(high, up=False)
    # Subnormals are excluded: XLA on CPU flushes them to zero, torch does not, and
    # that difference says nothing about the gradient under test.
    return st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def specials(low: float, high: float) -> list[float]:
    cands = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, low, high, 2.0, -2.0]
    return [float(np.float32(v)) for v in cands if low <= v <= high]


@st.composite
def bulk(draw, shape: tuple[int, ...], fill, element: st.SearchStrategy, specials=()) -> np.ndarray:
    """A large array: numpy fills the bulk from a drawn seed, hypothesis draws a few
    special values (0, bounds, ties, any element) and where they go, so that shrinking
    still acts on the choices that matter and the draw stays small."""
    n = int(np.prod(shape))
    seed = draw(st.integers(0, 2**32 - 1))
    flat = fill(np.random.default_rng(seed), n)
    kinds = ["value", "tie"] + (["special"] if specials else [])
    for _ in range(draw(st.integers(0, 8))):
        where = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(kinds))
        if kind == "special":
            flat[where] = draw(st.sampled_from(specials))
        elif kind == "tie":
            flat[where] = flat[draw(st.integers(0, n - 1))]
        else:
            flat[where] = draw(element)
    return flat.reshape(shape)


def float_array(shape: tuple[int, ...], low: float, high: float) -> st.SearchStrategy:
    elements = float_elements(low, high)
    if int(np.prod(shape)) <= BULK_THRESHOLD:
        arrays = hnp.arrays(np.float32, shape, elements=elements, fill=st.nothing())
        return arrays.map(lambda a: a.astype(np.float64))
    lo32, hi32 = np.float32(inward32(low, True)), np.float32(inward32(high, False))

    def fill(rng, n):
        # uniform() can round up to high in float32: keep the bounds inclusive and exact
        return np.clip(rng.uniform(low, high, size=n).astype(np.float32), lo32, hi32)

    return bulk(shape, fill, elements, specials(low, high)).map(lambda a: a.astype(np.float64))


def int_array(shape: tuple[int, ...], low: int, high: int) -> st.SearchStrategy:
    elements = st.integers(low, high - 1)
    if int(np.prod(shape)) <= BULK_THRESHOLD:
        return hnp.arrays(np.int64, shape, elements=elements, fill=st.nothing())
    return bulk(shape, lambda rng, n: rng.integers(low, high, size=n, dtype=np.int64), elements)


def choice_array(shape: tuple[int, ...], values: tuple[float, ...]) -> st.SearchStrategy:
    elements = st.sampled_from(values)
    if int(np.prod(shape)) <= BULK_THRESHOLD:
        return hnp.arrays(np.float64, shape, elements=elements, fill=st.nothing())
    return bulk(shape, lambda rng, n: rng.choice(np.array(values, np.float64), size=n), elements)
