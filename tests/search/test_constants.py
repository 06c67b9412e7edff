"""oracle.search.constants: hypothesis's pool of literals is the pair's own, so a seed
draws the same examples whatever else the process has imported."""

from __future__ import annotations

import importlib
import sys

import jax.numpy as jnp
import numpy as np
import torch

import oracle
from oracle import tensor
from oracle.search.constants import _modules_of, pair_constants


def _draws(seen):
    def recorded(x):
        seen.append(x.detach().numpy().copy())
        return torch.sin(x)

    return recorded


def test_a_seed_draws_the_same_examples_after_an_unrelated_module_with_literals(
    tmp_path, monkeypatch
):
    # a local module (not a test file, not site-packages) full of numbers in the range:
    # hypothesis mixes such literals into its draws, from whatever is in sys.modules
    literals = ", ".join(f"{-2.9 + 0.0573 * i!r}" for i in range(100))
    (tmp_path / "unrelated_constants_mod.py").write_text(f"VALUES = [{literals}]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runs = []
    for imported in (False, True):
        if imported:
            importlib.import_module("unrelated_constants_mod")
        seen: list[np.ndarray] = []
        oracle.verify(
            _draws(seen),
            jnp.sin,
            [tensor("n", low=-3.0, high=3.0)],
            dtypes=["float64"],
            checks=["vjp"],
            max_examples=60,
            seed=3,
        )
        runs.append(seen)
    sys.modules.pop("unrelated_constants_mod", None)
    assert len(runs[0]) == len(runs[1]) > 0
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))


def test_the_pool_is_the_literals_of_the_modules_defining_the_pair():
    from hypothesis.internal.constants_ast import constants_from_module

    from tests import specimens as sp

    module = sys.modules["tests.specimens"]  # a test file: hypothesis alone would skip it
    assert _modules_of(sp.GoodSin.apply) == [module]
    assert _modules_of(torch.sin) == [] and _modules_of(jnp.sin) == []  # site-packages
    pool = set(pair_constants(sp.GoodSin.apply, jnp.sin))
    assert pool == set(constants_from_module(module))
    assert 1e-3 in pool and -1.0 in pool  # NoisyBackward's 1e-3, Huber's clamp at -1.0
