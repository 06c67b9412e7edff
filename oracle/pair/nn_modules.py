"""An ``nn.Module`` as ``torch_fn``: its trainable parameters are differentiated too.

:func:`module_pair` turns (module, twin, specs) into a plain pair whose first arguments
are the parameters, in ``named_parameters()`` order: the torch side calls the module
through ``torch.func.functional_call``; the twin receives them as a dict,
``jax_fn(params, *inputs)``. A parameter's value is the module's own (cast to the dtype
under test), or drawn from ``param_specs[name]``. :meth:`ModulePair.rename` turns the
argument indices of findings back into parameter names and input indices.
A module without trainable parameters is an ordinary function: its twin takes the
inputs alone.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from ..inputs.specs import TensorSpec

__all__ = ["ModulePair", "module_pair"]


@dataclass
class ModulePair:
    torch_fn: Callable
    jax_fn: Callable
    specs: tuple
    names: list[str]
    #: argument index -> the module's own value (float64), for parameters not drawn
    fixed: dict[int, np.ndarray]

    def strategy(self, examples: st.SearchStrategy) -> st.SearchStrategy:
        """Examples with the fixed parameters in place of whatever was drawn for them."""
        if not self.fixed:
            return examples

        def put(ex: Any) -> Any:
            values = list(ex.values)
            for i, v in self.fixed.items():
                values[i] = v
            return dataclasses.replace(ex, values=tuple(values))

        return examples.map(put)

    def rename(self, divergences: Sequence[Any]) -> None:
        """Findings speak of parameter names and the user's own argument indices."""
        n = len(self.names)
        for d in divergences:
            if isinstance(d.argument, int):
                d.argument = self.names[d.argument] if d.argument < n else d.argument - n
            if d.example and "args" in d.example and len(d.example["args"]) >= n:
                args = list(d.example["args"])
                d.example["params"] = dict(zip(self.names, args[:n], strict=True))
                d.example["args"] = args[n:]
                if "kinds" in d.example:
                    d.example["kinds"] = list(d.example["kinds"])[n:]


def _check_param_specs(param_specs: Any, params: Mapping[str, torch.Tensor]) -> dict:
    if param_specs is None:
        return {}
    if not isinstance(param_specs, Mapping):
        raise TypeError(
            f"param_specs must be a dict from parameter name to tensor(...); got {param_specs!r}"
        )
    out = {}
    for name, spec in param_specs.items():
        if name not in params:
            raise ValueError(
                f"param_specs: {name!r} is not a trainable parameter of the module; "
                f"its trainable parameters are: {', '.join(params) or '(none)'}"
            )
        if not isinstance(spec, TensorSpec):
            raise TypeError(f"param_specs[{name!r}] must be oracle.tensor(...); got {spec!r}")
        shape = tuple(params[name].shape)
        if spec.shape != shape and not (spec.shape == () and shape == ()):
            raise ValueError(
                f"param_specs[{name!r}] has shape {' '.join(map(str, spec.shape))!r}; the "
                f"parameter's shape is {' '.join(map(str, shape))!r} (write it with integers)"
            )
        out[name] = dataclasses.replace(spec, grad=True)
    return out


def module_pair(
    module: Any,
    jax_fn: Callable,
    specs: Sequence[Any],
    param_specs: Any = None,
    *,
    build: Any = None,
) -> ModulePair | None:
    """The plain pair for a Module with trainable parameters; None for anything else.

    ``build``: the :class:`~oracle.pair.factories.Factory` that built ``module`` (for
    float64 on the CPU): the torch side then calls the module it builds for the dtype
    and device under test, with that module's own buffers and frozen parameters."""
    trainable = (
        {n: p for n, p in module.named_parameters() if p.requires_grad}
        if isinstance(module, torch.nn.Module)
        else {}
    )
    if not trainable:
        if param_specs:
            raise ValueError(
                "param_specs is for an nn.Module with trainable parameters; "
                f"torch_fn {module!r} has none"
            )
        return None
    drawn = _check_param_specs(param_specs, trainable)
    names = list(trainable)
    frozen = {
        **{n: p for n, p in module.named_parameters() if not p.requires_grad},
        **dict(module.named_buffers()),
    }
    lead: list[Any] = []
    fixed: dict[int, np.ndarray] = {}
    for i, (name, p) in enumerate(trainable.items()):
        if name in drawn:
            lead.append(drawn[name])
        else:
            lead.append(TensorSpec(tuple(p.shape), -1.0, 1.0, True))
            fixed[i] = p.detach().cpu().to(torch.float64).numpy().copy()
    if build is not None:
        return ModulePair(*_built_callables(build, jax_fn, names), (*lead, *specs), names, fixed)
    key = (jax_fn, tuple(names))
    cached = _CALLABLES.get(module, {}).get(key)
    if cached is None:
        cached = _callables(module, jax_fn, names, frozen)
        _CALLABLES.setdefault(module, {})[key] = cached
    return ModulePair(*cached, (*lead, *specs), names, fixed)


#: one pair of callables per (module, twin): the twin's compiled programs are cached by
#: the callable's identity, so a second verify of the same module compiles nothing again
_CALLABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _callables(module, jax_fn, names, frozen) -> tuple[Callable, Callable]:
    n = len(names)

    def torch_fn(*args: Any) -> Any:
        like = args[0]
        # frozen parameters and buffers follow the dtype and device under test too
        rest = {
            k: v.to(device=like.device, dtype=like.dtype) if v.is_floating_point() else v
            for k, v in frozen.items()
        }
        params = dict(zip(names, args[:n], strict=True))
        return torch.func.functional_call(module, {**rest, **params}, tuple(args[n:]))

    def twin(*args: Any) -> Any:
        return jax_fn(dict(zip(names, args[:n], strict=True)), *args[n:])

    return torch_fn, twin


def _built_callables(build, jax_fn, names) -> tuple[Callable, Callable]:
    """As :func:`_callables`, for a module built per dtype and device by a factory: the
    parameters (the leading arguments) say which."""
    n = len(names)

    def torch_fn(*args: Any) -> Any:
        like = args[0]
        module = build.build(str(like.dtype).removeprefix("torch."), like.device.type)
        params = dict(zip(names, args[:n], strict=True))
        return torch.func.functional_call(module, params, tuple(args[n:]))

    def twin(*args: Any) -> Any:
        return jax_fn(dict(zip(names, args[:n], strict=True)), *args[n:])

    return torch_fn, twin
