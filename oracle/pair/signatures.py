"""What each side of a pair takes, checked before any example is drawn.

* :func:`check_torch_fn`: a class where a callable was meant (an ``autograd.Function``
  subclass instead of its ``.apply``, an ``nn.Module`` subclass instead of an instance)
  is a ``TypeError`` that says what to pass.
* :func:`check_arity`: one input spec per positional argument. A function that cannot
  take as many positional arguments as there are specs (or needs more) is a
  ``TypeError`` naming the side, what it takes and what it would be given, instead of
  hundreds of examples that both sides reject. Callables without a signature Python can
  read (builtins such as ``torch.sin``) are not checked here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["check_torch_fn", "check_arity"]


def check_torch_fn(torch_fn: Any) -> None:
    """Refuse a Function or Module class in place of what runs it."""
    if not isinstance(torch_fn, type):
        return
    name = torch_fn.__name__
    if issubclass(torch_fn, torch.autograd.Function):
        raise TypeError(
            f"torch_fn is the autograd.Function class {name}; pass {name}.apply, which "
            "runs its forward and records its backward"
        )
    if issubclass(torch_fn, torch.nn.Module):
        raise TypeError(
            f"torch_fn is the nn.Module class {name}; pass an instance, {name}(...), or a "
            f"factory, lambda dtype, device: {name}(...).to(dtype=dtype, device=device)"
        )


def _signature(fn: Any) -> tuple[inspect.Signature, bool] | None:
    """``fn``'s signature as its caller sees it, and whether it takes a leading ``ctx``
    the caller does not give (an old-style Function's forward); None if unreadable."""
    owner = getattr(fn, "__self__", None)
    if (
        inspect.ismethod(fn)
        and isinstance(owner, type)
        and issubclass(owner, torch.autograd.Function)
    ):
        # Function.apply(*args): the arguments are forward's, after ctx unless the
        # Function has a setup_context of its own
        has_ctx = owner.setup_context is torch.autograd.Function.setup_context
        try:
            return inspect.signature(owner.forward), has_ctx
        except (TypeError, ValueError):
            return None
    if isinstance(fn, torch.nn.Module):
        fn = fn.forward  # (its __call__ takes anything)
    try:
        return inspect.signature(fn), False
    except (TypeError, ValueError):
        return None


def _takes(fn: Any) -> tuple[int, int | None, list[str]] | None:
    """(fewest, most or None for any number, names) of positional arguments."""
    found = _signature(fn)
    if found is None:
        return None
    sig, skip_first = found
    params = list(sig.parameters.values())[1 if skip_first else 0 :]
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    # a keyword-only argument without a default cannot be given: the call would fail
    if any(
        p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
        for p in params
    ):
        return None
    varargs = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
    return len(required), None if varargs else len(positional), [p.name for p in positional]


def _fits(takes: tuple[int, int | None, list[str]] | None, n: int) -> bool:
    """Whether ``n`` positional arguments fit (True when the signature is unknown)."""
    if takes is None:
        return True
    least, most, _ = takes
    return least <= n and (most is None or n <= most)


def _describe(takes: tuple[int, int | None, list[str]]) -> str:
    least, most, names = takes
    if most is None:
        count = f"at least {least}"
    elif least == most:
        count = str(least)
    else:
        count = f"{least} to {most}"
    shown = f" ({', '.join(names)})" if names else ""
    return f"{count} positional argument{'s' if count != '1' else ''}{shown}"


def check_arity(
    torch_fn: Callable, jax_fn: Callable, n_inputs: int, *, params: list[str] | None = None
) -> None:
    """Both sides can be called with ``n_inputs`` positional arguments (the twin of a
    Module with trainable ``params`` with one more: the dict of them first)."""
    if params and _fits(_takes(jax_fn), n_inputs) and not _fits(_takes(jax_fn), n_inputs + 1):
        raise TypeError(
            f"torch_fn is (or builds) an nn.Module with trainable parameters "
            f"({', '.join(params)}): they are differentiated too, so its twin takes them "
            "first, as a dict from parameter name to array: jax_fn(params, *inputs); "
            f"jax_fn takes {_describe(_takes(jax_fn))}"
        )
    problems = []
    n_twin = n_inputs + (1 if params else 0)
    for who, fn, n in (("torch_fn", torch_fn, n_inputs), ("jax_fn", jax_fn, n_twin)):
        takes = _takes(fn)
        if takes is None:
            continue
        if not _fits(takes, n):
            problems.append(f"{who} takes {_describe(takes)} but would be given {n}")
    if not problems:
        return
    given = (
        f"inputs has {n_inputs} spec{'s' if n_inputs != 1 else ''} (one per positional argument)"
    )
    if params:
        given += ", and the twin of a Module with trainable parameters gets them first, as a dict"
    raise TypeError(
        f"{given}: {'; '.join(problems)}. Give one entry of inputs per positional argument "
        "(a plain value for a hyper-parameter)"
    )
