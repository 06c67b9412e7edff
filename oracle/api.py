"""The public entry points: :func:`verify` and :func:`assert_twins`."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from hypothesis import settings as hsettings

from .auto import auto_twin, is_auto
from .bridge import normalize_devices, normalize_dtypes
from .capability import normalize_checks
from .checks import Sides
from .factories import Factory, as_factory
from .guard import DEFAULT_TIMEOUT, Guard
from .interrupt import Interrupted
from .modules import module_pair
from .profiles import CAMPAIGN_PROFILE
from .replay import function_source
from .report import Report
from .runner import run_config
from .sides import TorchSide, TwinSide
from .specs import example_strategy, normalize_dims, normalize_inputs
from .tolerance import user_tolerances
from .validation import check_int, check_timeout

__all__ = ["verify", "assert_twins", "CAMPAIGN_PROFILE"]


_DEFAULT_EXAMPLES = 100


def _name_of(fn: Callable) -> str:
    obj = getattr(fn, "__self__", None) if getattr(fn, "__name__", "") == "apply" else None
    obj = obj if isinstance(obj, type) else fn
    qual = getattr(obj, "__qualname__", None) or type(obj).__name__
    return getattr(obj, "__name__", qual) if qual.startswith("_") else qual


def _tolerance_keys(specs: Sequence[Any], torch_fn: Callable | Factory) -> list[int | str]:
    """What a per-argument ``rtol``/``atol`` dict may name: differentiated argument
    indices, and a Module's trainable parameter names."""
    keys: list[int | str] = [i for i, s in enumerate(specs) if getattr(s, "grad", False)]
    if isinstance(torch_fn, Factory):
        torch_fn = torch_fn.build("float64", "cpu")
    if isinstance(torch_fn, torch.nn.Module):
        keys += [n for n, p in torch_fn.named_parameters() if p.requires_grad]
    return keys


def verify(
    torch_fn: Callable,
    jax_fn: Callable,
    inputs: Sequence[Any] | None = None,
    *,
    dims: Mapping[str, Any] | None = None,
    dtypes: Sequence[str] | str = ("float32", "float64"),
    devices: Sequence[str] | str | None = None,
    max_examples: int | None = None,
    seed: int | None = None,
    rtol: float | Mapping[int | str, float] | None = None,
    atol: float | Mapping[int | str, float] | None = None,
    name: str | None = None,
    settings: hsettings | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    checks: Sequence[str] | None = None,
    param_specs: Mapping[str, Any] | None = None,
) -> Report:
    """Check ``torch_fn``'s gradients against ``jax.vjp`` of ``jax_fn``.

    ``inputs`` has one entry per positional argument (``tensor``, ``integers``,
    ``choice``, a hypothesis strategy, or a plain value). One hypothesis search runs per
    dtype and device; each real divergence is shrunk to a minimal example. ``seed``
    makes the run reproducible (None: a random one, kept in ``report.seed``; none under
    ``derandomize=True`` settings); a failure saved in the settings' example database
    is replayed first, whatever the seed; ``max_examples`` defaults to 100 (or the
    ``oracle-campaign`` profile's, when that profile is loaded). ``rtol``/``atol``
    (both or neither) replace the oracle's tolerance rule with torch.testing's: numbers
    for everything, or dicts from argument index (or Module parameter name) to a number
    for those arguments' gradients. ``settings`` is a parent hypothesis settings object
    (database, phases...). ``timeout``: seconds per call of either side (None: no limit).
    ``jax_fn="auto"`` builds the twin from ``torch_fn``'s forward (:mod:`oracle.auto`;
    needs ``gradient-oracle[auto]``).

    ``torch_fn`` may be a factory, built once per dtype and device (see
    :mod:`oracle.factories`). ``inputs`` omitted: the specs come from ``torch_fn``'s
    jaxtyping annotations (see :mod:`oracle.annotations`). ``checks``: a subset of "vjp",
    "jvp", "hvp", "vmap", "contract" run on every example (None: the vjp on every
    example and the others on a few). An ``nn.Module`` with trainable parameters has
    them differentiated too: the twin is called ``jax_fn(params, *inputs)``, and
    ``param_specs={"name": tensor(...)}`` draws them (default: the module's own values).
    """
    if not callable(torch_fn):
        raise TypeError(
            f"torch_fn must be callable (a Function's .apply, a Module, a function); got {torch_fn!r}"
        )
    twin = "auto" if is_auto(jax_fn) else "hand"
    if not callable(jax_fn) and twin == "hand":
        raise TypeError(
            f'jax_fn must be callable (the JAX twin of torch_fn\'s forward) or "auto"; got {jax_fn!r}'
        )
    checks = normalize_checks(checks)
    built = as_factory(torch_fn)
    if twin == "auto" and built is not None:
        raise ValueError(
            'jax_fn="auto" needs torch_fn itself, not a factory: pass the built module '
            "(one verify per dtype) or write the twin by hand"
        )
    if inputs is None:
        from .annotations import specs_from_annotations

        inputs = specs_from_annotations(built or torch_fn)
    specs = normalize_inputs(inputs)
    name = name or _name_of(built.build_fn if built else torch_fn)
    fn_refs = {**_fn_refs(torch_fn, jax_fn, name), "factory": built is not None}
    torch_call: Any = built or torch_fn
    n_params = 0
    mod = None if built is not None else module_pair(torch_fn, jax_fn, specs, param_specs)
    if mod is not None:  # the parameters become leading differentiated arguments
        n_params = len(mod.names)
        keys_of = {n: i for i, n in enumerate(mod.names)}
        torch_call, specs = mod.torch_fn, mod.specs
        # an automatic twin of the module differentiates the same functional call
        twin_fn = auto_twin(mod.torch_fn) if twin == "auto" else mod.jax_fn
        fn_refs = {**_fn_refs(mod.torch_fn, mod.jax_fn, name), "factory": False}
    else:
        twin_fn = auto_twin(torch_fn) if twin == "auto" else jax_fn
    bounds = normalize_dims(specs, dims)
    dtypes = normalize_dtypes(dtypes)
    devices = normalize_devices(devices)
    if max_examples is None:
        current = hsettings.get_current_profile_name()
        max_examples = (
            hsettings.default.max_examples if current == CAMPAIGN_PROFILE else _DEFAULT_EXAMPLES
        )
    max_examples = check_int(max_examples, "max_examples", 1)
    if seed is not None:
        seed = check_int(seed, "seed", 0)
    if settings is not None and not isinstance(settings, hsettings):
        raise TypeError(f"settings must be a hypothesis.settings object; got {settings!r}")
    if seed is None and not (settings or hsettings.default).derandomize:
        # a seed of our own, reported with the findings, so that every run can be
        # replayed (SystemRandom: the user's `random` state is left alone)
        seed = random.SystemRandom().randrange(2**31)
    user_tol = None
    if rtol is not None or atol is not None:
        keys = _tolerance_keys(specs, built or torch_fn) if isinstance(rtol, Mapping) else []
        if mod is not None:  # the user's argument indices, and the parameters' names
            keys = [i - n_params for i in keys if isinstance(i, int) and i >= n_params]
            keys += list(mod.names)
        user_tol = user_tolerances(rtol, atol, dtypes, keys)
        if mod is not None and user_tol is not None:
            # the oracle's own argument positions: parameters first
            user_tol = {
                d: {
                    (k if k is None else keys_of[k] if isinstance(k, str) else k + n_params): t
                    for k, t in per.items()
                }
                for d, per in user_tol.items()
            }

    guard = Guard(check_timeout(timeout))
    sides = Sides(
        TorchSide(torch_call, specs, guard), TwinSide(twin_fn, specs, guard), specs, user_tol
    )
    strategy = example_strategy(specs, bounds)
    if mod is not None:
        strategy = mod.strategy(strategy)
    runs, divergences = [], []
    # the user's functions may draw from torch's global generator: give it back as it was
    with (
        torch.random.fork_rng(devices=[torch.cuda.current_device()] if "cuda" in devices else []),
        _released(sides),
    ):
        for device in devices:
            for dtype in dtypes:
                res = run_config(
                    sides,
                    strategy,
                    name=name,
                    dtype=dtype,
                    device=device,
                    max_examples=max_examples,
                    seed=seed,
                    parent=settings,
                    fn_refs=fn_refs,
                    checks=checks,
                )
                runs.append(res.summary)
                divergences.extend(res.divergences)
                if res.summary.interrupted:
                    break
            if runs and runs[-1].interrupted:
                break
    if mod is not None:
        mod.rename(divergences)
    for d in divergences:
        d.twin = twin
        d.seed = seed
    interrupted = any(r.interrupted for r in runs)
    report = Report(
        name=name, runs=runs, divergences=divergences, twin=twin, seed=seed, interrupted=interrupted
    )
    if interrupted:  # Ctrl-C stops the caller too, with what was checked until then
        raise Interrupted(report)
    return report


@contextlib.contextmanager
def _released(sides: Sides) -> Iterator[None]:
    """Free the pair's compiled programs when its verify ends (memory stays flat over
    hundreds of pairs in one process)."""
    try:
        yield
    finally:
        sides.twin.release()


def _fn_refs(torch_fn: Callable, jax_fn: Callable, name: str) -> dict[str, Any]:
    from .registration import registry

    reg = registry()
    auto = is_auto(jax_fn)
    if name in reg and reg[name].torch_fn is torch_fn and reg[name].jax_fn is jax_fn:
        return {"registry": name, "module": reg[name].module, "auto": auto}
    return {
        "torch_fn": function_source(torch_fn, "torch_fn"),
        "jax_fn": None if auto else function_source(jax_fn, "jax_fn"),
        "auto": auto,
    }


def assert_twins(
    torch_fn: Callable, jax_fn: Callable, inputs: Sequence[Any] | None = None, **kwargs: Any
) -> Report:
    """:func:`verify`, then raise ``AssertionError(str(report))`` unless it is ok."""
    report = verify(torch_fn, jax_fn, inputs, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))
    return report
