"""Triton for the kernel tests, set up once, before anything imports triton.

Imported first by this folder's ``conftest.py`` (pytest loads it when it collects the
folder, before the test modules). On a GPU the kernels run compiled, on CUDA tensors;
without one (CI) they run in Triton's interpreter, on CPU tensors, with the oracle's
compatibility layer (:func:`oracle.pair.triton.use_interpreter`). ``TRITON_INTERPRET=1``
asks for the interpreter on a GPU machine too.

``losses._kernels`` is imported here with the registry put back afterwards: it is a
registry of its own (``python -m oracle losses._kernels --triton auto``), which
``tests/e2e/test_catalog.py``, which may run in the same process, must not count among
the pairs under ``losses``. :data:`PAIRS` keeps the kernel pairs for these tests.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType
from typing import Any

SKIP_REASON: str | None = None
DEVICE = "cpu"
INTERPRETED = False
kernels: ModuleType | None = None
PAIRS: dict[str, Any] = {}


def _import_kernels_unregistered() -> tuple[ModuleType, dict[str, Any]]:

    import losses._kernels as module  # (imports the catalog, losses/__init__.py, too)
    from oracle.registration import _REGISTRY as registered

    pairs = {name: p for name, p in registered.items() if p.module == module.__name__}
    for name in pairs:
        del registered[name]
    return module, pairs


def jax_sees_gpu() -> bool:
    """Whether oracle.verify can put the twin on the GPU beside compiled kernels."""
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # a CPU-only jaxlib
        return False


if importlib.util.find_spec("triton") is None:
    SKIP_REASON = "triton is not installed (pip install 'gradient-oracle[triton]')"
else:
    import torch

    from oracle.pair import triton as oracle_triton

    if torch.cuda.is_available() and os.environ.get(oracle_triton.ENV, "0") != "1":
        DEVICE = "cuda"  # (oracle.verify there also needs JAX to see it: jax_sees_gpu)
    else:
        try:
            oracle_triton.use_interpreter()
        except RuntimeError as exc:  # triton imported earlier in this process, compiled
            SKIP_REASON = str(exc)
        else:
            INTERPRETED = True
    if SKIP_REASON is None:
        kernels, PAIRS = _import_kernels_unregistered()
