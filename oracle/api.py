"""The public entry points: :func:`verify` and :func:`assert_twins`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from hypothesis import settings as hsettings

from .bridge import normalize_devices, normalize_dtypes
from .capability import normalize_checks
from .checks import Sides
from .modules import module_pair
from .profiles import CAMPAIGN_PROFILE
from .replay import function_source
from .report import Report
from .runner import run_config
from .sides import TorchSide, TwinSide
from .specs import example_strategy, normalize_dims, normalize_inputs
from .tolerance import user_tolerance

__all__ = ["verify", "assert_twins", "CAMPAIGN_PROFILE"]


_DEFAULT_EXAMPLES = 100


def _name_of(fn: Callable) -> str:
    obj = getattr(fn, "__self__", None) if getattr(fn, "__name__", "") == "apply" else None
    obj = obj if isinstance(obj, type) else fn
    qual = getattr(obj, "__qualname__", None) or type(obj).__name__
    return getattr(obj, "__name__", qual) if qual.startswith("_") else qual


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}")
    return value


def verify(
    torch_fn: Callable,
    jax_fn: Callable,
    inputs: Sequence[Any],
    *,
    dims: Mapping[str, Any] | None = None,
    dtypes: Sequence[str] | str = ("float32", "float64"),
    devices: Sequence[str] | str | None = None,
    max_examples: int | None = None,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    name: str | None = None,
    settings: hsettings | None = None,
    checks: Sequence[str] | None = None,
    param_specs: Mapping[str, Any] | None = None,
) -> Report:
    """Check ``torch_fn``'s gradients against ``jax.vjp`` of ``jax_fn``.

    ``inputs`` has one entry per positional argument (``tensor``, ``integers``,
    ``choice``, a hypothesis strategy, or a plain value). One hypothesis search runs per
    dtype and device; each real divergence is shrunk to a minimal example. ``seed``
    makes the run reproducible; ``max_examples`` defaults to 100 (or the
    ``oracle-campaign`` profile's, when that profile is loaded). ``rtol``/``atol``
    replace the oracle's tolerance rule with torch.testing's. ``settings`` is a parent
    hypothesis settings object (database, phases...). ``checks``: a subset of "vjp",
    "jvp", "hvp", "vmap", "contract" run on every example (None: the vjp on every
    example and the others on a few). An ``nn.Module`` with trainable parameters has
    them differentiated too: the twin is called ``jax_fn(params, *inputs)``, and
    ``param_specs={"name": tensor(...)}`` draws them (default: the module's own values).
    """
    if not callable(torch_fn):
        raise TypeError(
            f"torch_fn must be callable (a Function's .apply, a Module, a function); got {torch_fn!r}"
        )
    if not callable(jax_fn):
        raise TypeError(
            f"jax_fn must be callable (the JAX twin of torch_fn's forward); got {jax_fn!r}"
        )
    checks = normalize_checks(checks)
    specs = normalize_inputs(inputs)
    name = name or _name_of(torch_fn)
    fn_refs = _fn_refs(torch_fn, jax_fn, name)
    mod = module_pair(torch_fn, jax_fn, specs, param_specs)
    if mod is not None:  # the parameters become leading differentiated arguments
        torch_fn, jax_fn, specs = mod.torch_fn, mod.jax_fn, mod.specs
        fn_refs = _fn_refs(torch_fn, jax_fn, name)
    bounds = normalize_dims(specs, dims)
    dtypes = normalize_dtypes(dtypes)
    devices = normalize_devices(devices)
    if max_examples is None:
        current = hsettings.get_current_profile_name()
        max_examples = (
            hsettings.default.max_examples if current == CAMPAIGN_PROFILE else _DEFAULT_EXAMPLES
        )
    max_examples = _check_int(max_examples, "max_examples", 1)
    if seed is not None:
        seed = _check_int(seed, "seed", 0)
    if settings is not None and not isinstance(settings, hsettings):
        raise TypeError(f"settings must be a hypothesis.settings object; got {settings!r}")
    user_tol = None
    if rtol is not None or atol is not None:
        user_tol = {d: user_tolerance(rtol, atol, d) for d in dtypes}

    sides = Sides(TorchSide(torch_fn, specs), TwinSide(jax_fn, specs), specs, user_tol)
    strategy = example_strategy(specs, bounds)
    if mod is not None:
        strategy = mod.strategy(strategy)
    runs, divergences = [], []
    # the user's functions may draw from torch's global generator: give it back as it was
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if "cuda" in devices else []):
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
    if mod is not None:
        mod.rename(divergences)
    return Report(name=name, runs=runs, divergences=divergences)


def _fn_refs(torch_fn: Callable, jax_fn: Callable, name: str) -> dict[str, Any]:
    from .registration import registry

    reg = registry()
    if name in reg and reg[name].torch_fn is torch_fn and reg[name].jax_fn is jax_fn:
        return {"registry": name, "module": reg[name].module}
    return {
        "torch_fn": function_source(torch_fn, "torch_fn"),
        "jax_fn": function_source(jax_fn, "jax_fn"),
    }


def assert_twins(
    torch_fn: Callable, jax_fn: Callable, inputs: Sequence[Any], **kwargs: Any
) -> Report:
    """:func:`verify`, then raise ``AssertionError(str(report))`` unless it is ok."""
    report = verify(torch_fn, jax_fn, inputs, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))
    return report
