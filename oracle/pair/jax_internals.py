"""The one place the oracle touches JAX's private API, each use with its reason.

tests/pair/test_jax_internals.py fails loudly if a JAX release renames any of these.

**Global values under a scope.** :func:`x64_global` and :func:`matmul_precision_global`
read the global flags (``State.get_global``), not the value the oracle's own scopes put
in force: the guard (:mod:`oracle.pair.settings`) compares them around every call of
user code.

**Staging caches keyed without the x64 mode.** JAX caches the jaxprs it traces
(``partial_eval.trace_to_jaxpr``) and the parameters it infers for a jitted call
(``pjit._infer_params_cached``). On JAX 0.10 a trace made in one x64 mode is handed
back in the other: a twin that closes over a numpy float64 or int64 constant (``x *
W``, ``x[..., IDX]``) is traced once with the constant canonicalised to float32/int32,
and the float64 run then gets that jaxpr back ("lax.mul requires arguments to have the
same dtypes, got float64, float32"), eagerly and under ``jax.jit``, for fresh functions
too (``jnp.multiply`` is itself a jitted function). The oracle switches x64 mode many
times (float32 runs, float64 runs, float64 references and finite differences inside a
float32 run), so :func:`forget_traces` clears exactly these two caches whenever its
scope changes the mode. Compiled programs are not in them: nothing is recompiled, a
jitted function whose signature is already in its own cache is not even retraced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

__all__ = [
    "forget_traces",
    "staging_caches",
    "x64_global",
    "matmul_precision_global",
    "set_matmul_precision_global",
]


def staging_caches() -> list[Callable]:
    """The JAX caches that keep traces across x64 modes (each has ``cache_clear``)."""
    from jax._src import pjit
    from jax._src.interpreters import partial_eval

    return [partial_eval.trace_to_jaxpr, pjit._infer_params_cached]


def forget_traces() -> None:
    """Clear the traces of the other x64 mode (see the module docstring)."""
    for cache in staging_caches():
        cache.cache_clear()


def x64_global() -> bool:
    """JAX's *global* x64 flag (``jax.config.jax_enable_x64`` reads the value in force,
    which inside ``jax.enable_x64(...)`` is the scope's, not the global one)."""
    return bool(_x64_state().get_global())


def matmul_precision_global() -> str | None:
    """JAX's *global* default matmul precision (``jax.config.jax_default_matmul_precision``
    reads the value in force: inside the oracle's ``jax.default_matmul_precision`` scope,
    the scope's). Read around every call of user code: a twin may change it."""
    return _matmul_state().get_global()


def set_matmul_precision_global(value: str | None) -> None:
    import jax

    jax.config.update("jax_default_matmul_precision", value)


def _matmul_state():
    from jax._src import config

    return config.default_matmul_precision


def _x64_state():
    from jax._src import config

    return config.enable_x64


# (read around every call of user code: looked up once, not imported at each read)
_matmul_state = functools.cache(_matmul_state)
_x64_state = functools.cache(_x64_state)
