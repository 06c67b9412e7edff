"""Input specs from jaxtyping annotations, for ``verify`` calls that omit ``inputs``.

``def f(x: Float[Tensor, "b n"], y: Int[Tensor, "b"])`` gives
``[tensor("b n"), integers("b", low=0, high=ANNOTATED_INT_HIGH)]``: a floating
annotation becomes a differentiated ``tensor`` in ``[-10, 10]``, an integer one an
``integers`` tensor in ``[0, ANNOTATED_INT_HIGH)``. Dimension names and sizes are the
annotation's (``#n``, broadcastable, draws the full size). Positional parameters are
read in order, up to the first one that has a default and no array annotation (it and
the rest keep their defaults). Anything the annotation cannot say (bounds, a domain,
``*batch``, ``...``, ``_``, ``n+1``, bool or dtype-free arrays) needs explicit
``inputs``. jaxtyping is an optional extra: ``pip install 'gradient-oracle[types]'``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from .specs import integers, tensor

__all__ = ["ANNOTATED_INT_HIGH", "specs_from_annotations"]

#: integer annotations draw in [0, ANNOTATED_INT_HIGH): below the default largest
#: dimension size (8), so they can index a default-sized dimension only when it is full;
#: pass inputs=[..., integers("b", low=0, high="c")] for class indices
ANNOTATED_INT_HIGH = 8

_NAME = re.compile(r"^#?([A-Za-z_][A-Za-z0-9_]*)$")


def _missing_jaxtyping() -> TypeError:
    return TypeError(
        "inputs was omitted, so the input specs must come from torch_fn's jaxtyping "
        "annotations, but jaxtyping is not installed: pip install 'gradient-oracle[types]' "
        "(or jaxtyping), or pass inputs=[tensor(...), ...]"
    )


def _signature_target(fn: Any) -> tuple[Callable, bool, str]:
    """What carries the annotations, whether its first parameter is ``ctx``, a name."""
    import torch

    if inspect.ismethod(fn) and isinstance(fn.__self__, type):  # Function.apply
        cls = fn.__self__
        # new-style Functions (with setup_context) have no ctx in forward
        has_ctx = cls.setup_context is torch.autograd.Function.setup_context
        return cls.forward, has_ctx, f"{cls.__qualname__}.forward"
    if isinstance(fn, torch.nn.Module):
        return fn.forward, False, f"{type(fn).__qualname__}.forward"
    return fn, False, getattr(fn, "__qualname__", type(fn).__name__)


def _shape(dim_str: str, where: str) -> str:
    out = []
    for tok in dim_str.split():
        if tok.isdigit():
            out.append(tok)
            continue
        m = _NAME.match(tok)
        if m is None or m.group(1) == "_":
            raise TypeError(
                f"{where}: the dimension {tok!r} cannot be drawn from an annotation (variadic "
                f"*name or ..., anonymous _, or an expression); pass inputs=[...] instead"
            )
        out.append(m.group(1))
    return " ".join(out)


def _spec(annotation: Any, where: str) -> Any:
    dtypes = annotation.dtypes
    if not isinstance(dtypes, (tuple, list)) or not dtypes:
        kinds = "any"
    elif all(d.startswith(("float", "bfloat")) for d in dtypes):
        kinds = "float"
    elif all(d.startswith(("int", "uint")) for d in dtypes):
        kinds = "int"
    else:
        kinds = "mixed"
    shape = _shape(annotation.dim_str, where)
    if kinds == "float":
        return tensor(shape)
    if kinds == "int":
        return integers(shape, low=0, high=ANNOTATED_INT_HIGH)
    raise TypeError(
        f"{where}: {annotation.__name__} does not say whether to draw floats or integers "
        f"(only Float[...] and Int[...]-like annotations do); pass inputs=[...] instead"
    )


def specs_from_annotations(torch_fn: Any) -> list[Any]:
    """One spec per positional parameter of ``torch_fn``, from its jaxtyping annotations."""
    try:
        import jaxtyping
    except ImportError:
        raise _missing_jaxtyping() from None
    target, has_ctx, name = _signature_target(torch_fn)
    try:
        sig = inspect.signature(target, eval_str=True)
    except NameError as exc:
        raise TypeError(f"inputs omitted: the annotations of {name} cannot be read: {exc}") from exc
    params = list(sig.parameters.values())[1 if has_ctx else 0 :]
    specs: list[Any] = []
    stopped_at = None
    for p in params:
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            if p.default is inspect.Parameter.empty and p.kind is inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(
                    f"inputs omitted: {name} has a keyword-only parameter {p.name!r} without a "
                    f"default; the oracle passes arguments by position: pass inputs=[...] and "
                    f"bind it with functools.partial"
                )
            continue
        where = f"inputs omitted: parameter {p.name!r} of {name}"
        ann = p.annotation
        is_array = isinstance(ann, type) and issubclass(ann, jaxtyping.AbstractArray)
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{where}: *{p.name} takes any number of arguments; pass inputs=[...]")
        if is_array and stopped_at is not None:
            raise TypeError(
                f"{where} is annotated but comes after {stopped_at!r}, which has a default "
                f"and no array annotation; pass inputs=[...]"
            )
        if is_array:
            specs.append(_spec(ann, where))
        elif p.default is not inspect.Parameter.empty:
            stopped_at = stopped_at or p.name
        else:
            raise TypeError(
                f'{where} has no jaxtyping annotation (like Float[Tensor, "b n"]) and no '
                f"default; annotate it or pass inputs=[...]"
            )
    if not specs:
        raise TypeError(
            f"inputs omitted, and {name} has no parameter annotated with jaxtyping (like "
            f'Float[Tensor, "b n"]); pass inputs=[tensor(...), ...]'
        )
    return specs
