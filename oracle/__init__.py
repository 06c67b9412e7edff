"""A cross-framework gradient oracle.

Checks the hand-written backward of a PyTorch loss or ``torch.autograd.Function``
against ``jax.vjp`` of a JAX twin of its forward, on hypothesis-generated inputs::

    import oracle
    from oracle import tensor

    report = oracle.verify(MyFunction.apply, my_jax_twin, [tensor("b n")])
    assert report.ok, report

Attributes are imported lazily so that ``import oracle`` (and the pytest plugin)
stays light: torch and JAX load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "verify",
    "assert_twins",
    "tensor",
    "integers",
    "choice",
    "twin",
    "registry",
    "Known",
    "Report",
    "Divergence",
    "factory",
    "plot",
    "Interrupted",
]

_WHERE = {
    "verify": "api",
    "assert_twins": "api",
    "tensor": "inputs.specs",
    "integers": "inputs.specs",
    "choice": "inputs.specs",
    "twin": "registration",
    "registry": "registration",
    "Known": "registration",
    "Pair": "registration",
    "Outcome": "registration",
    "Report": "report.records",
    "Divergence": "report.records",
    "factory": "pair.factories",
    "plot": "pictures",
    "Interrupted": "search.interrupt",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'oracle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
