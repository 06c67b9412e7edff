"""Input specs and the hypothesis strategies they become.

A spec list (``[tensor("b n"), integers("b", low=0, high="n"), 2.0]``) describes one
positional argument each. :func:`example_strategy` turns the list into one hypothesis
strategy that draws the named dimensions first, then every argument, so that a name
means the same size everywhere in one example.

Floating values are drawn as float32-representable numbers and held in float64 arrays:
the float32 and float64 checks of one example then see exactly the same values, and a
reproducer can write them bit for bit. Nothing here knows about torch or JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..validation import (
    check_bool,
    check_bounds,
    check_choice_values,
    check_dim_range,
    check_dim_sizes,
    check_inputs_list,
    check_int_bound,
    parse_shape,
)
from .arrays import BULK_THRESHOLD, choice_array, float_array, int_array
from .domains import apply_maps, check_domain, domain_array, map_name

__all__ = [
    "Example",
    "TensorSpec",
    "IntegersSpec",
    "ChoiceSpec",
    "StrategySpec",
    "ConstantSpec",
    "tensor",
    "integers",
    "choice",
    "normalize_inputs",
    "normalize_dims",
    "example_strategy",
    "DEFAULT_DIM",
    "BULK_THRESHOLD",
    "DimSizes",
    "dimension_sizes",
    "size_combinations",
]

DEFAULT_DIM = (1, 8)


@dataclass(frozen=True)
class TensorSpec:
    """A float tensor of the dtype under test, values in ``[low, high]`` (or in
    ``domain``), passed through ``maps`` in order."""

    shape: tuple[str | int, ...]
    low: float = -10.0
    high: float = 10.0
    grad: bool = True
    domain: str | None = None
    maps: tuple[Callable[[np.ndarray], Any], ...] = ()

    def __repr__(self) -> str:
        return (
            f"tensor({' '.join(map(str, self.shape))!r}, low={self.low}, high={self.high}"
            + ("" if self.grad else ", grad=False")
            + ("" if self.domain is None else f", domain={self.domain!r}")
            + ")"
            + "".join(f".map({map_name(fn)})" for fn in self.maps)
        )

    def map(self, fn: Callable[[np.ndarray], Any]) -> TensorSpec:
        """The same spec with ``fn`` applied to each drawn float64 array: the mapped
        value (rounded to float32, held in float64) is what both sides receive and what
        is differentiated."""
        if not callable(fn):
            raise TypeError(
                f"{self!r}.map(fn): fn must be callable (a function of the drawn float64 "
                f"array); got {fn!r}"
            )
        return TensorSpec(self.shape, self.low, self.high, self.grad, self.domain, (*self.maps, fn))


@dataclass(frozen=True)
class IntegersSpec:
    """An int64 tensor in ``[low, high)``; a bound may name a dimension."""

    shape: tuple[str | int, ...]
    low: int | str
    high: int | str
    grad = False

    def __repr__(self) -> str:
        return f"integers({' '.join(map(str, self.shape))!r}, low={self.low!r}, high={self.high!r})"


@dataclass(frozen=True)
class ChoiceSpec:
    """A float tensor whose elements are drawn from ``values``."""

    shape: tuple[str | int, ...]
    values: tuple[float, ...]
    grad: bool = False

    def __repr__(self) -> str:
        return f"choice({' '.join(map(str, self.shape))!r}, {list(self.values)!r})"


@dataclass(frozen=True)
class StrategySpec:
    """A hypothesis strategy: its drawn value goes as-is to both sides."""

    strategy: st.SearchStrategy
    grad = False

    def __repr__(self) -> str:
        return repr(self.strategy)


@dataclass(frozen=True)
class ConstantSpec:
    """Any other value, passed as-is to both sides."""

    value: Any
    grad = False

    def __repr__(self) -> str:
        return repr(self.value)


Spec = TensorSpec | IntegersSpec | ChoiceSpec | StrategySpec | ConstantSpec


def tensor(
    shape: str = "",
    *,
    low: float = -10.0,
    high: float = 10.0,
    grad: bool = True,
    domain: str | None = None,
) -> TensorSpec:
    """A float tensor of the dtype under test with elements in ``[low, high]``.

    ``domain``: "positive", "spd", "orthogonal", "simplex" or "distinct" (see
    :mod:`oracle.inputs.domains` for how each is drawn and what ``low``/``high`` mean there).
    """
    where = f"tensor({shape!r})"
    parsed = parse_shape(shape, where)
    low, high = check_bounds(low, high, where)
    check_bool(grad, "grad", where)
    domain = check_domain(domain, parsed, low, high, where)
    return TensorSpec(parsed, low, high, grad, domain)


def integers(shape: str = "", *, low: int | str = 0, high: int | str):
    """An int64 tensor in ``[low, high)``, never differentiated.

    ``low`` or ``high`` may name a dimension: ``high="c"`` draws class indices.
    """
    where = f"integers({shape!r})"
    parsed = parse_shape(shape, where)
    low, high = check_int_bound(low, "low", where), check_int_bound(high, "high", where)
    if isinstance(low, int) and isinstance(high, int) and not low < high:
        raise ValueError(f"{where}: low={low} must be less than high={high} (high is exclusive)")
    return IntegersSpec(parsed, low, high)


def choice(shape: str, values: Sequence[float], *, grad: bool = False):
    """A float tensor whose elements are drawn from ``values`` (labels in {-1, 1}, say)."""
    where = f"choice({shape!r})"
    parsed = parse_shape(shape, where)
    vals = check_choice_values(values, where)
    return ChoiceSpec(parsed, vals, check_bool(grad, "grad", where))


def _as_spec(entry: Any) -> Spec:
    if isinstance(entry, (TensorSpec, IntegersSpec, ChoiceSpec, StrategySpec, ConstantSpec)):
        return entry
    if isinstance(entry, st.SearchStrategy):
        return StrategySpec(entry)
    return ConstantSpec(entry)


def _shape_names(spec: Spec) -> list[str]:
    shape = getattr(spec, "shape", ())
    names = [d for d in shape if isinstance(d, str)]
    if isinstance(spec, IntegersSpec):
        names += [b for b in (spec.low, spec.high) if isinstance(b, str)]
    return names


def normalize_inputs(inputs: Any) -> tuple[Spec, ...]:
    """Turn the user's input list into specs; raise on anything malformed."""
    return tuple(_as_spec(e) for e in check_inputs_list(inputs))


class DimSizes(tuple):
    """A dimension's (min, max), from an explicit list of allowed sizes (``sizes``)."""

    sizes: tuple[int, ...]

    def __new__(cls, sizes: Sequence[int]) -> DimSizes:
        allowed = tuple(sorted(set(sizes)))
        obj = super().__new__(cls, (allowed[0], allowed[-1]))
        obj.sizes = allowed
        return obj

    def __repr__(self) -> str:
        return repr(list(self.sizes))


def normalize_dims(
    specs: Sequence[Spec], dims: Mapping[str, Any] | None
) -> dict[str, tuple[int, int]]:
    """Bounds (inclusive) for every dimension name the specs use: a ``(min, max)``
    range, or a :class:`DimSizes` (a list of allowed sizes; its min and max as a pair)."""
    dims = dict(dims or {})
    used: list[str] = []
    for spec in specs:
        for name in getattr(spec, "shape", ()):
            if isinstance(name, str) and name not in used:
                used.append(name)
    for i, spec in enumerate(specs):
        if isinstance(spec, IntegersSpec):
            for bname in ("low", "high"):
                bound = getattr(spec, bname)
                if isinstance(bound, str) and bound not in used:
                    raise ValueError(
                        f"inputs[{i}]: {spec!r} has {bname}={bound!r}, a dimension that no "
                        f"input's shape uses; expected one of: {', '.join(used) or '(none)'}"
                    )
    for name in dims:
        if name not in used:
            raise ValueError(
                f"dims: {name!r} is not a dimension of any input; the inputs use: "
                f"{', '.join(used) or '(no named dimensions)'}"
            )
    bounds: dict[str, tuple[int, int]] = {}
    for name in used:
        b = dims.get(name, DEFAULT_DIM)
        if isinstance(b, (list, range, set, frozenset)):
            bounds[name] = DimSizes(check_dim_sizes(name, b))
        else:
            bounds[name] = check_dim_range(name, b)
    for i, spec in enumerate(specs):
        if isinstance(spec, IntegersSpec):
            lo_min = spec.low if isinstance(spec.low, int) else bounds[spec.low][0]
            lo_max = spec.low if isinstance(spec.low, int) else bounds[spec.low][1]
            hi_min = spec.high if isinstance(spec.high, int) else bounds[spec.high][0]
            if hi_min <= lo_max:
                raise ValueError(
                    f"inputs[{i}]: {spec!r} can be empty: high can be {hi_min} while low can "
                    f"be {lo_max}; raise the lower bound of the dimension in dims "
                    f"(e.g. dims={{{(spec.high if isinstance(spec.high, str) else spec.low)!r}: "
                    f"({max(lo_min, 0) + 1}, ...)}})"
                )
    return bounds


@dataclass(frozen=True)
class Example:
    """One drawn example: dimension sizes and one value per argument.

    Floating arrays are float64 holding float32-representable values; the bridge casts
    them to the dtype under test without rounding anything.
    """

    dims: dict[str, int]
    values: tuple[Any, ...]
    cotangent_seed: int

    def __repr__(self) -> str:  # shown by hypothesis in verbose mode only
        shapes = [getattr(v, "shape", v) for v in self.values]
        return f"Example(dims={self.dims}, shapes={shapes})"


def _resolve(shape: tuple[str | int, ...], sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(sizes[d] if isinstance(d, str) else d for d in shape)


def _draw_value(draw, spec: Spec, sizes: Mapping[str, int]) -> Any:
    if isinstance(spec, TensorSpec):
        shape = _resolve(spec.shape, sizes)
        if spec.domain is None:
            value = draw(float_array(shape, spec.low, spec.high))
        else:
            value = draw(
                domain_array(spec.domain, shape, spec.low, spec.high, float_array, BULK_THRESHOLD)
            )
        return apply_maps(value, spec.maps, repr(spec)) if spec.maps else value
    if isinstance(spec, IntegersSpec):
        low = sizes[spec.low] if isinstance(spec.low, str) else spec.low
        high = sizes[spec.high] if isinstance(spec.high, str) else spec.high
        return draw(int_array(_resolve(spec.shape, sizes), low, high))
    if isinstance(spec, ChoiceSpec):
        return draw(choice_array(_resolve(spec.shape, sizes), spec.values))
    if isinstance(spec, StrategySpec):
        return draw(spec.strategy)
    return spec.value


#: at most this many distinct sizes per named dimension: every new shape costs the twin
#: a compilation (10-30 ms on a CPU), which dominates a run over small shapes
MAX_SIZES = 4


def dimension_sizes(lo: int, hi: int) -> list[int]:
    """The sizes drawn for a dimension bounded by ``(lo, hi)``: all of them when there
    are few, else the three smallest and the largest (shrinking goes to ``lo``).

    Hand-written backward passes go wrong at sizes 1 (broadcasting), 2 and 3 (a
    transpose, a reversed axis: square and non-square) or only at a larger one (a
    reduction's order); the sizes in between add compilations, not bugs (the mutation
    score of ``make bench`` is the same with the middle and the neighbour of the top)."""
    if hi - lo + 1 <= MAX_SIZES:
        return list(range(lo, hi + 1))
    return [lo, lo + 1, lo + 2, hi]


def size_combinations(allowed: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """The combinations of sizes drawn for dimensions with these allowed sizes each
    (ascending), simplest first (shrinking goes to the first).

    One dimension: each of its sizes. Several: not their product (64 combinations for
    three dimensions of four sizes, each a new compilation of the twin) but the ones
    hand-written backward passes go wrong at: every dimension at its smallest; one
    dimension one step up, the others at their smallest (a size-1 broadcast against a
    real one, each way); every dimension at its second size (square); two orders of
    distinct sizes (non-square, transposed axes, each way round); one dimension at its
    smallest with the others at their largest (a broadcast at full size, each way); and
    every dimension at its largest (a reduction's order)."""
    if len(allowed) <= 1:
        return [(s,) for s in (allowed[0] if allowed else ())] or [()]
    k = len(allowed)
    lo = tuple(a[0] for a in allowed)
    hi = tuple(a[-1] for a in allowed)
    step = lambda a, j: a[min(j, len(a) - 1)]  # noqa: E731
    pool = [lo]
    pool += [tuple(step(a, 1) if d == i else a[0] for d, a in enumerate(allowed)) for i in range(k)]
    pool.append(tuple(step(a, 1) for a in allowed))
    pool.append(tuple(a[(1 + d) % len(a)] for d, a in enumerate(allowed)))
    pool.append(tuple(a[(k - d) % len(a)] for d, a in enumerate(allowed)))
    pool += [tuple(a[0] if d == i else a[-1] for d, a in enumerate(allowed)) for i in range(k)]
    pool.append(hi)
    return list(dict.fromkeys(pool))


def example_strategy(
    specs: Sequence[Spec], bounds: Mapping[str, tuple[int, int]]
) -> st.SearchStrategy[Example]:
    """One strategy for whole examples: dimension sizes (one of
    :func:`size_combinations`), then each argument in order."""
    names = list(bounds)
    combos = size_combinations(
        [list(getattr(b, "sizes", None) or dimension_sizes(*b)) for b in bounds.values()]
    )

    @st.composite
    def _example(draw) -> Example:
        sizes = dict(zip(names, draw(st.sampled_from(combos)), strict=True))
        values = tuple(_draw_value(draw, spec, sizes) for spec in specs)
        cot_seed = draw(st.integers(0, 2**32 - 1))
        return Example(sizes, values, cot_seed)

    return _example()
