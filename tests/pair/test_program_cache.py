"""The twin's compiled programs outlive one verify, for the last few twins: a second
verify of the same pair compiles nothing it compiled before, and the oldest twins'
programs are freed (memory stays bounded)."""

from __future__ import annotations

import jax.numpy as jnp
import torch

import oracle
from oracle import tensor
from oracle.pair import twin_side

KW = {"devices": ["cpu"], "dtypes": ["float32"], "max_examples": 15, "seed": 5, "checks": ["vjp"]}


def _programs(fn) -> int:
    kept = twin_side._KEPT.get(fn)
    return sum(p._cache_size() for p in kept.jits.values()) if kept else 0


def test_a_second_verify_of_the_same_pair_compiles_nothing_new():
    def twin(x):
        return jnp.sin(x) * 2.0

    first = oracle.verify(lambda x: torch.sin(x) * 2, twin, [tensor("n")], **KW)
    compiled = _programs(twin)
    assert first.ok and compiled > 0
    again = oracle.verify(lambda x: torch.sin(x) * 2, twin, [tensor("n")], **KW)
    assert again.ok and again.runs[0].examples == first.runs[0].examples
    assert _programs(twin) == compiled  # the same shapes: every program was there


def test_only_the_last_few_twins_keep_their_programs():
    def make(k):
        return lambda x: x * float(k)

    twins = [make(k) for k in range(twin_side.KEEP_TWINS + 1)]
    for k, twin in enumerate(twins):
        oracle.verify(lambda x, k=k: x * float(k), twin, [tensor("n")], **KW)
    assert twins[0] not in twin_side._KEPT  # the oldest: freed
    assert all(_programs(t) > 0 for t in twins[1:])
    assert len(twin_side._KEPT) <= twin_side.KEEP_TWINS


def test_release_all_frees_every_kept_program():
    def twin(x):
        return x + 1.0

    oracle.verify(lambda x: x + 1, twin, [tensor("n")], **KW)
    kept = twin_side._KEPT[twin]
    twin_side.release_all()
    assert not twin_side._KEPT and not kept.jits
