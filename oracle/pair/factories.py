"""``torch_fn`` as a factory: built once per dtype and device under test.

A module whose buffers have a fixed dtype (a registered ``torch.tensor(...)`` constant,
say) cannot be checked in float32 and float64 as one object. Pass instead a function
that builds it::

    oracle.verify(lambda dtype, device: MyModule().to(dtype=dtype, device=device), twin, ...)

It is recognised as a factory when its parameters are exactly ``dtype`` and ``device``
(in any order), or when it is wrapped in :func:`factory` (which also works as a
decorator). It is called with keywords, ``dtype`` a ``torch.dtype`` and ``device`` a
string (``"cpu"``, ``"cuda"``), at most once per pair of them in one ``verify`` call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["Factory", "factory", "as_factory", "is_factory"]

_PARAMS = {"dtype", "device"}


class Factory:
    """A builder of ``torch_fn`` per (dtype, device), with one cache per instance."""

    def __init__(self, build: Callable[..., Callable]):
        if not callable(build):
            raise TypeError(
                f"factory(build): build must be callable as build(dtype=..., device=...); "
                f"got {build!r}"
            )
        self.build_fn = build
        self._built: dict[tuple[str, str], Callable] = {}
        self.__name__ = getattr(build, "__name__", type(build).__name__)
        self.__qualname__ = getattr(build, "__qualname__", self.__name__)
        self.__module__ = getattr(build, "__module__", __name__)
        self.__doc__ = getattr(build, "__doc__", None)

    def __call__(self, dtype: Any, device: Any) -> Callable:
        """Build afresh (what a reproducer does): ``self(dtype=torch.float64, device="cpu")``."""
        return self.build_fn(dtype=dtype, device=device)

    def build(self, dtype: str, device: str) -> Callable:
        """The function for ``dtype`` ("float32"...) on ``device``, built on first use."""
        key = (dtype, device)
        if key not in self._built:
            import torch

            fn = self.build_fn(dtype=getattr(torch, dtype), device=device)
            if not callable(fn):
                raise TypeError(
                    f"the factory {self.__qualname__} returned {type(fn).__name__} for "
                    f"dtype={dtype}, device={device}; expected a callable (a Module, a function)"
                )
            self._built[key] = fn
        return self._built[key]

    def fresh(self) -> Factory:
        """The same factory with an empty cache (one per ``verify`` call)."""
        return Factory(self.build_fn)

    def __repr__(self) -> str:
        return f"oracle.factory({self.__qualname__})"


def factory(build: Callable[..., Callable]) -> Factory:
    """Mark ``build`` as a factory of ``torch_fn``: ``build(dtype=..., device=...)``."""
    return build if isinstance(build, Factory) else Factory(build)


def is_factory(fn: Any) -> bool:
    """Whether ``fn`` is a :class:`Factory` or a plain callable whose parameters are
    exactly ``dtype`` and ``device`` (never a Module or an autograd Function)."""
    if isinstance(fn, Factory):
        return True
    if isinstance(fn, type) or not callable(fn) or hasattr(fn, "forward"):
        return False
    if inspect.ismethod(fn) and isinstance(fn.__self__, type):  # Function.apply
        return False
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params} == _PARAMS and all(p.kind in kinds for p in params)


def as_factory(fn: Any) -> Factory | None:
    """A fresh :class:`Factory` for ``fn`` if it is one, else None."""
    if isinstance(fn, Factory):
        return fn.fresh()
    return Factory(fn) if is_factory(fn) else None
