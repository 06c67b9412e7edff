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

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..validation import check_number
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
]

DEFAULT_DIM = (1, 8)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[0-9]+$")


def _parse_shape(shape: Any, where: str) -> tuple[str | int, ...]:
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
    parsed = _parse_shape(shape, where)
    low = check_number(low, "low", where)
    high = check_number(high, "high", where)
    if not low < high:
        raise ValueError(f"{where}: low={low} must be less than high={high}")
    if not isinstance(grad, bool):
        raise TypeError(f"{where}: grad must be True or False; got {grad!r}")
    domain = check_domain(domain, parsed, low, high, where)
    return TensorSpec(parsed, low, high, grad, domain)


def integers(shape: str = "", *, low: int | str = 0, high: int | str):
    """An int64 tensor in ``[low, high)``, never differentiated.

    ``low`` or ``high`` may name a dimension: ``high="c"`` draws class indices.
    """
    where = f"integers({shape!r})"
    parsed = _parse_shape(shape, where)
    for name, bound in (("low", low), ("high", high)):
        if isinstance(bound, str):
            if not _NAME.match(bound):
                raise ValueError(
                    f"{where}: {name}={bound!r} is neither an integer nor a dimension name"
                )
        elif isinstance(bound, bool) or not isinstance(bound, (int, np.integer)):
            raise TypeError(f"{where}: {name} must be an int or a dimension name; got {bound!r}")
    if (
        isinstance(low, (int, np.integer))
        and isinstance(high, (int, np.integer))
        and not low < high
    ):
        raise ValueError(f"{where}: low={low} must be less than high={high} (high is exclusive)")
    return IntegersSpec(
        parsed,
        low if isinstance(low, str) else int(low),
        high if isinstance(high, str) else int(high),
    )


def choice(shape: str, values: Sequence[float], *, grad: bool = False):
    """A float tensor whose elements are drawn from ``values`` (labels in {-1, 1}, say)."""
    where = f"choice({shape!r})"
    parsed = _parse_shape(shape, where)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{where}: values must be a non-empty sequence of numbers; got {values!r}")
    vals = tuple(check_number(v, "values", where) for v in values)
    for v in vals:
        if float(np.float32(v)) != v:
            raise ValueError(
                f"{where}: value {v!r} is not exactly representable in float32; the float32 "
                f"and float64 checks must see the same values"
            )
    if not isinstance(grad, bool):
        raise TypeError(f"{where}: grad must be True or False; got {grad!r}")
    return ChoiceSpec(parsed, vals, grad)


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
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"inputs must be a list with one entry per positional argument "
            f"(tensor(...), integers(...), choice(...), a strategy or a value); got {inputs!r}"
        )
    return tuple(_as_spec(e) for e in inputs)


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


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _dim_sizes(name: str, b: Any) -> DimSizes:
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
    return DimSizes([int(v) for v in sizes])


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
        if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
            b = (int(b), int(b))
        if isinstance(b, (list, range, set, frozenset)):
            bounds[name] = _dim_sizes(name, b)
            continue
        if not isinstance(b, tuple) or len(b) != 2 or not all(_is_int(v) for v in b):
            raise TypeError(
                f"dims[{name!r}] must be an int or a (min, max) pair of ints (a tuple), or "
                f"a list of allowed sizes like [4, 6, 8]; got {b!r}"
            )
        lo, hi = int(b[0]), int(b[1])
        if lo < 0 or lo > hi:
            raise ValueError(f"dims[{name!r}]=({lo}, {hi}): expected 0 <= min <= max")
        bounds[name] = (lo, hi)
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


def example_strategy(
    specs: Sequence[Spec], bounds: Mapping[str, tuple[int, int]]
) -> st.SearchStrategy[Example]:
    """One strategy for whole examples: dimension sizes, then each argument in order."""
    names = list(bounds)

    allowed = {
        name: list(getattr(b, "sizes", None) or dimension_sizes(*b)) for name, b in bounds.items()
    }

    @st.composite
    def _example(draw) -> Example:
        sizes = {name: draw(st.sampled_from(allowed[name])) for name in names}
        values = tuple(_draw_value(draw, spec, sizes) for spec in specs)
        cot_seed = draw(st.integers(0, 2**32 - 1))
        return Example(sizes, values, cot_seed)

    return _example()
