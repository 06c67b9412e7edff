"""The registry of twins: ``@oracle.twin`` and ``oracle.registry()``.

A registered pair bundles the PyTorch side, its JAX twin, the input specs and, for a
specimen that is wrong on purpose, the finding the oracle must show
(:class:`Known`). :meth:`Pair.outcomes` turns a report into one row per dtype and
device that says whether the result is what the declaration expects.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .inputs.specs import normalize_dims, normalize_inputs
from .vocabulary import BLAMES, DIAGNOSES, DTYPE_NAMES, FINDING_CHECKS

__all__ = ["Known", "Pair", "Outcome", "Registry", "twin", "registry"]


def _as_tuple(value: Any, name: str, allowed: Sequence[Any] | None = None) -> tuple | None:
    if value is None:
        return None
    out = tuple(value) if isinstance(value, (tuple, list, set, frozenset)) else (value,)
    if allowed is not None:
        for v in out:
            if v not in allowed:
                raise ValueError(
                    f"Known: {name}={v!r} is not one of {', '.join(map(repr, allowed))}"
                )
    return out


@dataclass(frozen=True)
class Known:
    """The finding a specimen must show to count as caught.

    Each field left ``None`` matches anything; a tuple matches any of its values.
    ``dtypes`` lists the dtypes in which the finding must show (default: every dtype
    checked); in the others the pair is expected to be clean.
    """

    why: str
    argument: int | str | tuple[int | str, ...] | None = None
    check: str | tuple[str, ...] | None = None
    diagnosis: str | tuple[str, ...] | None = None
    blame: str | tuple[str, ...] | None = None
    factor: float | None = None
    dtypes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.why, str) or not self.why:
            raise TypeError("Known: why must be a non-empty sentence saying what is wrong")
        object.__setattr__(self, "argument", _as_tuple(self.argument, "argument"))
        object.__setattr__(self, "check", _as_tuple(self.check, "check", FINDING_CHECKS))
        object.__setattr__(
            self, "diagnosis", _as_tuple(self.diagnosis, "diagnosis", tuple(DIAGNOSES))
        )
        object.__setattr__(
            self, "blame", _as_tuple(self.blame, "blame", tuple(b for b in BLAMES if b != "kink"))
        )
        object.__setattr__(self, "dtypes", _as_tuple(self.dtypes, "dtypes", DTYPE_NAMES))

    def expected_in(self, dtype: str) -> bool:
        return self.dtypes is None or dtype in self.dtypes

    def matches(self, d: Any) -> bool:
        """Whether divergence ``d`` is the declared finding."""
        if d.is_kink:
            return False
        for name in ("argument", "check", "diagnosis", "blame"):
            want = getattr(self, name)
            if want is not None and getattr(d, name) not in want:
                return False
        if self.factor is not None:
            got = getattr(d, "factor", None)
            if got is None or abs(got - self.factor) > 1e-3 * abs(self.factor):
                return False
        return True

    def describe(self) -> str:
        parts = []
        for name in ("check", "argument", "diagnosis", "blame"):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"{name}={'|'.join(map(str, v))}")
        if self.factor is not None:
            parts.append(f"factor={self.factor:g}")
        return ", ".join(parts) or "any finding"


@dataclass(frozen=True)
class Outcome:
    """One row of the catalog table: a pair in one dtype on one device."""

    name: str
    dtype: str
    device: str
    outcome: str  # "clean" | "flagged" | "diverged" | "missed" | "interrupted" | "crashed"
    expected: bool
    blame: str | None
    diagnosis: str | None
    worst_error: float | None
    examples: int
    kinks: int
    note: str = ""
    #: the run's capability table, compact: "jvp=no,hvp=ok,vmap=no,contract=ok" ("no":
    #: unsupported, "-": not checked, "X": diverged)
    capabilities: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_SHORT = {"ok": "ok", "diverged": "X", "unsupported": "no", "not checked": "-"}


def _compact(capabilities: Mapping[str, str]) -> str:
    """``jvp=ok,hvp=no,...``: the checks beyond the vjp a table shows (the asked-only
    ones when they ran)."""
    from .report.capabilities import shown

    return ",".join(
        f"{check}={_SHORT.get(capabilities[check].split(':', 1)[0], capabilities[check])}"
        for check in shown(capabilities)
        if check != "vjp" and check in capabilities
    )


@dataclass
class Pair:
    """A registered PyTorch function and its JAX twin."""

    name: str
    torch_fn: Callable
    jax_fn: Callable | str  # "auto": built from torch_fn when verified
    inputs: tuple
    dims: Mapping[str, Any] | None
    known_divergence: Known | None
    module: str
    options: dict[str, Any] = field(default_factory=dict)

    def verify(self, **kwargs: Any):
        """Run :func:`oracle.verify` on this pair; keyword arguments override the
        registration's (``dtypes``, ``devices``, ``max_examples``, ``seed``...)."""
        from .api import check_pair  # (here: the pytest plugin imports the registry, light)

        opts = {"dims": self.dims, **self.options, **kwargs}
        return check_pair(
            self.torch_fn,
            self.jax_fn,
            list(self.inputs),
            name=self.name,
            registered=(self.name, self.module),
            **opts,
        )

    def outcomes(self, report: Any) -> list[Outcome]:
        """One row per dtype and device of ``report``, judged against the declaration."""
        rows = []
        for run in report.runs:
            found = [
                d for d in report.divergences if (d.dtype, d.device) == (run.dtype, run.device)
            ]
            real = [d for d in found if not d.is_kink]
            known = self.known_divergence
            if known is not None and known.expected_in(run.dtype):
                hit = [d for d in real if known.matches(d)]
                if hit:
                    outcome, expected, note = "flagged", True, known.why
                    real = hit
                elif real:
                    outcome, expected = "flagged", False
                    note = f"flagged, but not as declared ({known.describe()})"
                else:
                    outcome, expected, note = "missed", False, f"expected: {known.describe()}"
            elif real:
                outcome, expected, note = "diverged", False, real[0].detail
            elif getattr(run, "only", ""):
                outcome, expected, note = "float32 only", True, run.only
            else:
                outcome, expected, note = "clean", True, ""
            if getattr(run, "interrupted", False) and outcome in ("clean", "missed"):
                outcome, expected = "interrupted", False  # no verdict on a partial run
                note = f"stopped by Ctrl-C after {run.examples} examples"
            top = real[0] if real else None
            rows.append(
                Outcome(
                    name=self.name,
                    dtype=run.dtype,
                    device=run.device,
                    outcome=outcome,
                    expected=expected,
                    blame=top.blame if top else None,
                    diagnosis=top.diagnosis if top else None,
                    worst_error=top.max_abs_error if top else None,
                    examples=run.examples,
                    kinks=run.kinks,
                    note=note,
                    capabilities=_compact(getattr(run, "capabilities", {}) or {}),
                )
            )
        return rows


class Registry(Mapping[str, Pair]):
    """Registered pairs by name, in registration order. Iterating yields the pairs."""

    def __init__(self, pairs: Mapping[str, Pair]):
        self._pairs = dict(pairs)

    def __getitem__(self, name: str) -> Pair:
        try:
            return self._pairs[name]
        except KeyError:
            raise KeyError(
                f"no registered pair named {name!r}; registered: {', '.join(self._pairs) or '(none)'}"
            ) from None

    def __iter__(self) -> Iterator[Pair]:  # type: ignore[override]
        return iter(self._pairs.values())

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, name: object) -> bool:
        return name in self._pairs

    def names(self) -> list[str]:
        return list(self._pairs)

    def in_modules(self, modules: Sequence[str]) -> Registry:
        """The pairs defined in any of ``modules`` or their submodules."""

        def inside(pair: Pair) -> bool:
            return any(pair.module == m or pair.module.startswith(m + ".") for m in modules)

        return Registry({p.name: p for p in self._pairs.values() if inside(p)})


_REGISTRY: dict[str, Pair] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _torch_callable(obj: Any, module_kwargs: Mapping[str, Any] | None) -> Callable:
    import torch  # imported here: the registry is imported by the pytest plugin's helpers

    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        return obj.apply
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        return obj(**dict(module_kwargs or {}))
    if callable(obj):
        return obj
    raise TypeError(
        f"@oracle.twin decorates a torch.autograd.Function subclass, an nn.Module subclass "
        f"or a function; got {obj!r}"
    )


def twin(
    jax_fn: Callable | str,
    *,
    inputs: Sequence[Any] | None = None,
    dims: Mapping[str, Any] | None = None,
    known_divergence: str | Known | None = None,
    name: str | None = None,
    module_kwargs: Mapping[str, Any] | None = None,
    **verify_options: Any,
) -> Callable[[Any], Any]:
    """Register the decorated PyTorch object with its JAX twin (or ``"auto"``: the twin
    is built from its forward, see :mod:`oracle.pair.auto_twin`).

    The decorated object is returned unchanged. ``known_divergence`` marks a specimen
    that is wrong on purpose: a string (any finding counts) or a :class:`Known` naming
    the finding it must show. ``inputs`` omitted: the specs come from the decorated
    object's jaxtyping annotations. Other keyword arguments (``rtol``, ``atol``, ``dtypes``,
    ``max_examples``...) become the pair's defaults for :func:`oracle.verify`.
    """
    if not callable(jax_fn) and jax_fn != "auto":
        raise TypeError(f'@oracle.twin: jax_fn must be callable or "auto"; got {jax_fn!r}')
    # the pair belongs to the module that registers it (the catalog's, say), which need
    # not be where the decorated object was defined
    caller = sys._getframe(1).f_globals.get("__name__", "__main__")
    specs = None if inputs is None else normalize_inputs(inputs)
    if specs is not None:
        normalize_dims(specs, dims)  # fail at import time, not at the first run
    if isinstance(known_divergence, str):
        known_divergence = Known(known_divergence)
    elif known_divergence is not None and not isinstance(known_divergence, Known):
        raise TypeError(
            f"@oracle.twin: known_divergence must be a string or oracle.Known(...); got {known_divergence!r}"
        )

    def decorate(obj: Any) -> Any:
        pair_name = name or _snake(getattr(obj, "__name__", type(obj).__name__))
        existing = _REGISTRY.get(pair_name)
        if existing is not None and existing.module != caller:
            raise ValueError(
                f"@oracle.twin: the name {pair_name!r} is already registered by "
                f"{existing.module}; pass name=... to choose another"
            )
        torch_fn = _torch_callable(obj, module_kwargs)
        pair_specs = specs
        if pair_specs is None:  # from torch_fn's jaxtyping annotations
            from .inputs.annotations import specs_from_annotations
            from .pair.factories import as_factory

            built = as_factory(torch_fn)
            target = built.build("float64", "cpu") if built is not None else torch_fn
            pair_specs = normalize_inputs(specs_from_annotations(target))
            normalize_dims(pair_specs, dims)
        _REGISTRY[pair_name] = Pair(
            name=pair_name,
            torch_fn=torch_fn,
            jax_fn=jax_fn,
            inputs=pair_specs,
            dims=dict(dims) if dims else None,
            known_divergence=known_divergence,
            module=caller,
            options=dict(verify_options),
        )
        return obj

    return decorate


def registry() -> Registry:
    """Every registered pair, by name, in registration order."""
    return Registry(_REGISTRY)
