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
]

_WHERE = {
    "verify": "api",
    "assert_twins": "api",
    "tensor": "inputs.specs",
    "integers": "inputs.specs",
    "choice": "inputs.specs",
    "twin": "registry",
    "registry": "registry",
    "Known": "registry",
    "Pair": "registry",
    "Outcome": "registry",
    "Report": "report.records",
    "Divergence": "report.records",
    "factory": "pair.factories",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'oracle' has no attribute {name!r}")
    imported = importlib.import_module(f".{module}", __name__)
    # importing oracle.registry binds the submodule as the attribute `registry` of this
    # package, which would then hide the function of that name from this hook: bind every
    # public name the module provides at once, over the submodule
    for other, where in _WHERE.items():
        if where == module:
            globals()[other] = getattr(imported, other)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
