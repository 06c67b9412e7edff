"""The example database under a seed: a failure found once is tried first next time,
whatever the seed (oracle.search.database), and every report names its seed.

tests/conftest.py loads a profile without a database: these tests pass their own.
"""

from __future__ import annotations

import hypothesis
import pytest
import torch
from hypothesis import Verbosity, given
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

import oracle
from oracle import tensor
from oracle.search.database import database_key, seeded, set_database_key


class RecordingDatabase(InMemoryExampleDatabase):
    """An in-memory database that remembers under which keys hypothesis saved."""

    def __init__(self):
        super().__init__()
        self.saved_keys = set()

    def save(self, key, value):
        self.saved_keys.add(key)
        super().save(key, value)


def _failing_search(db, key, seed, seen):
    def body(x):
        seen.append(x)
        assert x < 1000

    set_database_key(body, key)
    settings = hypothesis.settings(
        database=db, max_examples=200, derandomize=False, verbosity=Verbosity.quiet
    )
    test = seeded(given(st.integers())(body), seed, settings)
    with pytest.raises(AssertionError):
        test()


def test_hypothesis_reads_the_database_key_the_oracle_sets():
    # The one private hypothesis attribute the oracle relies on. If this fails, hypothesis
    # no longer reads `_hypothesis_internal_add_digest`: every pair, dtype and device would
    # share one database entry; fix oracle.search.database.set_database_key.
    db = RecordingDatabase()
    _failing_search(db, b"pair-a", 1, [])
    _failing_search(db, b"pair-b", 1, [])
    primary = {k for k in db.saved_keys if b"." not in k}  # not .secondary, .pareto
    assert len(primary) == 2, "hypothesis ignored oracle.search.database.set_database_key"


def test_a_seeded_search_replays_the_saved_failure_first():
    db = RecordingDatabase()
    first, second = [], []
    _failing_search(db, b"pair", 1, first)
    _failing_search(db, b"pair", 2, second)  # another seed, the same key
    # hypothesis shrinks `x < 1000` to 1000; the next search starts there
    assert first[0] != 1000 and second[0] == 1000


def test_the_database_key_ignores_object_addresses():
    # a spec holding a function has " at 0x..." in its repr, which differs per process
    a = database_key("p", "float32", "cpu", ["<function f at 0x7f00aa>"])
    b = database_key("p", "float32", "cpu", ["<function f at 0x7f11bb>"])
    assert a == b != database_key("p", "float64", "cpu", ["<function f at 0x7f00aa>"])


class SquareWrongAbove(torch.autograd.Function):
    """x**2 whose backward drops the factor 2 where x > 1.5 (shrinks to x = [2.0])."""

    calls: list = []

    @staticmethod
    def forward(ctx, x):
        SquareWrongAbove.calls.append(x.detach().tolist())
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 1.5, x, 2 * x) * g


def _verify(seed, database, derandomize=False):
    SquareWrongAbove.calls.clear()
    return oracle.verify(
        SquareWrongAbove.apply,
        lambda x: x * x,
        [tensor("n", low=-3, high=3)],
        dtypes=["float64"],
        devices=["cpu"],
        max_examples=60,
        seed=seed,
        # the suite's profile derandomizes; a user's default does not
        settings=hypothesis.settings(database=database, derandomize=derandomize),
    )


def test_verify_tries_a_past_failure_first_whatever_the_seed():
    db = InMemoryExampleDatabase()
    (found,) = _verify(1, db).findings
    assert found.example["args"][0].tolist() == [2.0]
    again = _verify(2, db)
    assert SquareWrongAbove.calls[0] == [2.0]  # the first example run is the failure
    assert again.runs[0].examples <= 3  # found at once: no search before it
    # without the database, the same seed starts elsewhere (all zeros)
    _verify(2, None)
    assert SquareWrongAbove.calls[0] != [2.0]


def test_verify_without_a_seed_draws_one_and_names_it_in_every_failure():
    report = _verify(None, None)
    (d,) = report.findings
    assert isinstance(report.seed, int) and d.seed == report.seed
    assert f"(seed {report.seed})" in str(report)
    assert f"Seed: {report.seed}" in d.message()
    assert report.to_dict()["seed"] == report.seed


def test_verify_under_derandomized_settings_says_so_instead_of_a_seed():
    report = _verify(None, None, derandomize=True)
    assert report.seed is None
    assert "Seed: none (derandomized: the same examples every run)" in str(report)
