"""The public entry points: :func:`verify` and :func:`assert_twins`."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import settings as hsettings

from .inputs.specs import example_strategy, normalize_dims, normalize_inputs
from .judge.checks.compiled import dynamo_scope
from .judge.tolerance import user_tolerances
from .pair.auto_twin import auto_twin, is_auto
from .pair.bridge import normalize_devices
from .pair.factories import Factory, as_factory
from .pair.guard import DEFAULT_TIMEOUT, Guard
from .pair.nn_modules import module_pair
from .pair.settings import restore, snapshot
from .pair.sides import Sides
from .pair.signatures import check_arity, check_torch_fn
from .pair.torch_side import TorchSide
from .pair.twin_side import TwinSide
from .report.records import Report
from .report.replay import function_source
from .search.interrupt import Interrupted
from .search.profiles import CAMPAIGN_PROFILE
from .search.runner import run_config
from .validation import check_int, check_timeout, normalize_checks, normalize_dtypes

__all__ = ["verify", "assert_twins", "check_pair", "CAMPAIGN_PROFILE"]


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
    triton: str | None = None,
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
    ``jax_fn="auto"`` builds the twin from ``torch_fn``'s forward (:mod:`oracle.pair.auto_twin`;
    needs ``gradient-oracle[auto]``).

    ``torch_fn`` may be a factory, built once per dtype and device (see
    :mod:`oracle.pair.factories`). ``inputs`` omitted: the specs come from ``torch_fn``'s
    jaxtyping annotations (see :mod:`oracle.inputs.annotations`). ``checks``: a subset of "vjp",
    "jvp", "hvp", "vmap", "contract" run on every example (None: the vjp on every
    example and the others on a few). An ``nn.Module`` with trainable parameters has
    them differentiated too: the twin is called ``jax_fn(params, *inputs)``, and
    ``param_specs={"name": tensor(...)}`` draws them (default: the module's own values),
    built by a factory or not.
    ``triton``: for a Triton-backed ``torch_fn``, ``"interpret"`` checks that its kernels
        run in Triton's interpreter (on CPU tensors: ``devices`` defaults to cpu) and turns on
        the interpreter's compatibility layer; ``"auto"``: the interpreter when torch sees no
        GPU; ``"compiled"``: the GPU kernels. See :mod:`oracle.pair.triton`.

    Misuse is a ``TypeError``/``ValueError`` before any example runs: a Function or
    Module class instead of ``.apply`` or an instance, no differentiated argument, or
    inputs that do not fit either side's positional arguments (see
    :mod:`oracle.pair.signatures`). Complex outputs are refused with a finding (see the
    README's "What it cannot check yet").
    """
    return check_pair(
        torch_fn,
        jax_fn,
        inputs,
        dims=dims,
        dtypes=dtypes,
        devices=devices,
        max_examples=max_examples,
        seed=seed,
        rtol=rtol,
        atol=atol,
        name=name,
        settings=settings,
        timeout=timeout,
        checks=checks,
        param_specs=param_specs,
        triton=triton,
    )


@dataclass
class _Plan:
    """One verify, resolved: the callables each side runs, the specs (a Module's
    parameters first), and how to name and replay what is found."""

    torch_call: Any
    twin_fn: Any
    specs: tuple
    name: str
    fn_refs: dict[str, Any]
    twin: str  # "hand" or "auto"
    mod: Any = None  # the ModulePair of an nn.Module with parameters
    built: Factory | None = None
    sample: Any = None  # torch_fn, or what its factory built for the first run


def check_pair(
    torch_fn: Callable,
    jax_fn: Callable,
    inputs: Sequence[Any] | None = None,
    *,
    registered: tuple[str, str] | None = None,
    dims: Mapping[str, Any] | None = None,
    dtypes: Sequence[str] | str = ("float32", "float64"),
    devices: Sequence[str] | str | None = None,
    max_examples: int | None = None,
    seed: int | None = None,
    rtol: Any = None,
    atol: Any = None,
    name: str | None = None,
    settings: hsettings | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    checks: Sequence[str] | None = None,
    param_specs: Mapping[str, Any] | None = None,
    triton: str | None = None,
) -> Report:
    """:func:`verify`, for a pair that may come from the registry: ``registered`` (its
    name and registering module) makes reproducers look it up there instead of
    carrying its source."""
    dtypes = normalize_dtypes(dtypes)
    if triton is not None:
        from .pair.triton import prepare as prepare_triton

        if prepare_triton(triton) and devices is None:
            devices = "cpu"  # the interpreter runs kernels on CPU tensors
    devices = normalize_devices(devices)
    guard = Guard(check_timeout(timeout))
    # (a factory is built for the first run's dtype and device, under the guard: to see
    # what it builds)
    plan = _resolve(
        torch_fn, jax_fn, inputs, name, registered, param_specs, (dtypes[0], devices[0], guard)
    )
    if not any(getattr(s, "grad", False) for s in plan.specs):
        raise ValueError(
            "inputs: no argument is differentiated (every tensor(...) has grad=False, or "
            "there is none), so there is no gradient to check; give at least one "
            "tensor(...) with grad=True (the default)"
        )
    checks = normalize_checks(checks)
    bounds = normalize_dims(plan.specs, dims)
    max_examples, seed = _search_settings(max_examples, seed, settings)
    user_tol = _user_tolerances(rtol, atol, dtypes, plan, torch_fn)
    if plan.twin == "hand":  # last: every other argument is said to be wrong first
        user_specs = len(plan.specs) - (len(plan.mod.names) if plan.mod else 0)
        names = plan.mod.names if plan.mod else None
        check_arity(plan.sample, jax_fn, user_specs, params=names)
    sides = Sides(
        TorchSide(plan.torch_call, plan.specs, guard),
        TwinSide(plan.twin_fn, plan.specs, guard),
        plan.specs,
        user_tol,
    )
    strategy = example_strategy(plan.specs, bounds)
    if plan.mod is not None:
        strategy = plan.mod.strategy(strategy)
    runs, divergences = [], []
    # the user's functions may draw from torch's global generator: give it back as it was
    with (
        torch.random.fork_rng(devices=[torch.cuda.current_device()] if "cuda" in devices else []),
        _kept_global_state(),
        _released(sides),
        # a torch_fn under torch.compile: its recompile limit is an error, not a silent
        # fall back to eager code (see oracle.judge.checks.compiled)
        dynamo_scope(),
    ):
        for device in devices:
            failing: list[Any] = []  # shrunk examples of this device's findings so far
            hot: set[str] = set()  # the checks that found them
            for dtype in dtypes:
                res = run_config(
                    sides,
                    strategy,
                    name=plan.name,
                    dtype=dtype,
                    device=device,
                    max_examples=max_examples,
                    seed=seed,
                    parent=settings,
                    fn_refs=plan.fn_refs,
                    checks=checks,
                    bounds=bounds,
                    first=failing,
                    hot=hot,
                )
                hot |= {d.check for d in res.divergences if not d.is_kink}
                failing += [e for e in res.failing if all(e is not f for f in failing)]
                runs.append(res.summary)
                divergences.extend(res.divergences)
                if res.summary.interrupted:
                    break
            if runs and runs[-1].interrupted:
                break
    interrupted = any(r.interrupted for r in runs)
    if not interrupted:
        divergences = _float32_only(runs, divergences)
    if plan.mod is not None:
        plan.mod.rename(divergences)
    for d in divergences:
        d.twin = plan.twin
        d.seed = seed
    report = Report(
        name=plan.name,
        runs=runs,
        divergences=divergences,
        twin=plan.twin,
        seed=seed,
        interrupted=interrupted,
    )
    if interrupted:  # Ctrl-C stops the caller too, with what was checked until then
        raise Interrupted(report)
    return report


def _resolve(
    torch_fn: Any,
    jax_fn: Any,
    inputs: Sequence[Any] | None,
    name: str | None,
    registered: tuple[str, str] | None,
    param_specs: Any,
    first_run: tuple[str, str, Guard | None] = ("float64", "cpu", None),
) -> _Plan:
    """What each side runs: a factory, a Module's functional call with its parameters
    as leading arguments, or ``torch_fn`` itself; the twin as given or built
    (``"auto"``); the input specs (from annotations when omitted)."""
    if not callable(torch_fn):
        raise TypeError(
            f"torch_fn must be callable (a Function's .apply, a Module, a function); got {torch_fn!r}"
        )
    check_torch_fn(torch_fn)
    twin = "auto" if is_auto(jax_fn) else "hand"
    if not callable(jax_fn) and twin == "hand":
        raise TypeError(
            f'jax_fn must be callable (the JAX twin of torch_fn\'s forward) or "auto"; got {jax_fn!r}'
        )
    built = as_factory(torch_fn)
    if twin == "auto" and built is not None:
        raise ValueError(
            'jax_fn="auto" needs torch_fn itself, not a factory: pass the built module '
            "(one verify per dtype) or write the twin by hand"
        )
    if inputs is None:
        from .inputs.annotations import specs_from_annotations

        inputs = specs_from_annotations(built.build("float64", "cpu") if built else torch_fn)
    specs = normalize_inputs(inputs)
    name = name or _name_of(built.build_fn if built else torch_fn)
    # a Module's trainable parameters are differentiated, built by a factory or not
    sample = _sample(built, *first_run) if built is not None else torch_fn
    mod = module_pair(sample, jax_fn, specs, param_specs, build=built)
    if mod is not None:  # the parameters become leading differentiated arguments
        # an automatic twin of the module differentiates the same functional call
        twin_fn = auto_twin(mod.torch_fn) if twin == "auto" else mod.jax_fn
        refs = {**_fn_refs(mod.torch_fn, mod.jax_fn, None), "factory": False}
        return _Plan(mod.torch_fn, twin_fn, mod.specs, name, refs, twin, mod=mod, sample=sample)
    twin_fn = auto_twin(torch_fn) if twin == "auto" else jax_fn
    refs = {**_fn_refs(torch_fn, jax_fn, registered), "factory": built is not None}
    return _Plan(built or torch_fn, twin_fn, specs, name, refs, twin, built=built, sample=sample)


def _sample(built: Factory, dtype: str, device: str, guard: Guard | None) -> Any:
    """What the factory builds for the first run (kept in its cache), to see whether it
    is a Module with trainable parameters; None when building fails (the run reports
    that failure). User code: under the guard, which reports the settings it changes."""
    try:
        return (guard or Guard()).call("torch", "factory", built.build, dtype, device)
    except Exception:
        return None


def _search_settings(
    max_examples: int | None, seed: int | None, settings: hsettings | None
) -> tuple[int, int | None]:
    """Examples per run (the campaign profile's when it is loaded) and the seed: a
    random one of our own unless derandomized, reported so that every run replays."""
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
        # (SystemRandom: the user's `random` state is left alone)
        seed = random.SystemRandom().randrange(2**31)
    return max_examples, seed


def _user_tolerances(rtol: Any, atol: Any, dtypes: Sequence[str], plan: _Plan, torch_fn: Any):
    """``rtol``/``atol`` by dtype and the oracle's argument positions (a Module's
    parameters first, named by the user), or None for the oracle's rule."""
    if rtol is None and atol is None:
        return None
    mod = plan.mod
    keys = _tolerance_keys(plan.specs, plan.built or torch_fn) if isinstance(rtol, Mapping) else []
    if mod is None:
        return user_tolerances(rtol, atol, dtypes, keys)
    n_params = len(mod.names)
    keys_of = {n: i for i, n in enumerate(mod.names)}
    # the user's argument indices, and the parameters' names
    keys = [i - n_params for i in keys if isinstance(i, int) and i >= n_params]
    keys += list(mod.names)
    user_tol = user_tolerances(rtol, atol, dtypes, keys)
    if user_tol is None:
        return None
    return {
        d: {
            (k if k is None else keys_of[k] if isinstance(k, str) else k + n_params): t
            for k, t in per.items()
        }
        for d, per in user_tol.items()
    }


def _refuses_float64(d: Any) -> bool:
    """torch_fn raised in its forward or backward, or returned a float32 output: what a
    float32-only function does in a float64 run."""
    if d.blame != "torch":
        return False
    raised = d.check == "error" and d.reason == "raised" and d.phase in ("forward", "backward")
    return raised or (d.check == "forward" and d.reason == "float32_output")


def _float32_only(runs: list[Any], divergences: list[Any]) -> list[Any]:
    """A float64 run whose only findings say torch_fn cannot run in float64, beside a clean
    float32 run on the same device: torch_fn is a float32 function (a kernel with a
    float32 dtype table, a float32 weight of its own), judged in float32 against the
    twin's float64 values; its float64 run says "float32 only" instead of an error."""
    kept = list(divergences)
    for run in runs:
        if run.dtype != "float64":
            continue
        mine = [d for d in kept if (d.dtype, d.device) == ("float64", run.device) and not d.is_kink]
        clean32 = any((r.dtype, r.device) == ("float32", run.device) for r in runs) and not any(
            (d.dtype, d.device) == ("float32", run.device) and not d.is_kink for d in kept
        )
        if mine and clean32 and all(_refuses_float64(d) for d in mine):
            run.only = f"float32 only ({mine[0].detail}); its float32 results were judged against the twin's float64 values"
            kept = [d for d in kept if all(d is not m for m in mine)]
    return kept


@contextlib.contextmanager
def _kept_global_state() -> Iterator[None]:
    """numpy's and Python's global generators, and every global setting, as they were
    (the guard puts settings back after each call and reports who changed them; this
    also covers oracle code that runs user code outside a call of its own)."""
    saved = snapshot()
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        restore(saved)
        np.random.set_state(np_state)
        random.setstate(py_state)


@contextlib.contextmanager
def _released(sides: Sides) -> Iterator[None]:
    """The end of the pair's verify: its compiled programs join the last few twins'
    (older ones are freed: memory stays flat over hundreds of pairs in one process)."""
    try:
        yield
    finally:
        sides.twin.release()


def _fn_refs(
    torch_fn: Callable, jax_fn: Callable, registered: tuple[str, str] | None
) -> dict[str, Any]:
    """How a reproducer gets the two functions back: from the registry (a registered
    pair: its name and module), or from their source."""
    auto = is_auto(jax_fn)
    if registered is not None:
        return {"registry": registered[0], "module": registered[1], "auto": auto}
    return {
        "torch_fn": function_source(torch_fn, "torch_fn"),
        "jax_fn": None if auto else function_source(jax_fn, "jax_fn"),
        "auto": auto,
    }


def assert_twins(
    torch_fn: Callable, jax_fn: Callable, inputs: Sequence[Any] | None = None, **kwargs: Any
) -> Report:
    """:func:`verify`, then raise ``AssertionError(str(report))`` unless it is ok."""
    __tracebackhide__ = True  # pytest shows the caller's line, as for assert_close
    report = verify(torch_fn, jax_fn, inputs, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))
    return report
