"""Hypothesis's example database under a seed: the run's key, and a seeded search that
still replays and saves failures.

``hypothesis.seed(n)`` gives its test a settings copy with ``database=None``: upstream, a
seed means "reproduce from the seed alone". The oracle wants both: a seed printed with
every run, and a failure found once tried first on the next run whatever the seed. The
test's settings (which name the database) are therefore applied after the seed, so the
search reads the database first (hypothesis's ``reuse`` phase), then generates from the
seed, and saves what fails. Only public decorators are used for that; the one private
hypothesis attribute the oracle relies on, for the database key, is set in
:func:`set_database_key` alone, and ``tests/search/test_database.py`` fails loudly if
hypothesis stops reading it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import hypothesis
from hypothesis import settings as Settings

__all__ = ["database_key", "set_database_key", "seeded"]

# reprs of callables (a spec's ``.map(fn)``, say) carry the object's address, which
# changes from one process to the next: a key that holds it would never replay
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def database_key(name: str, dtype: str, device: str, specs: Any) -> bytes:
    """The part of a run's database key that the oracle chooses: the pair's name, dtype,
    device and input specs (hypothesis adds the test body's source)."""
    text = _ADDRESS.sub("", f"oracle:{name}:{dtype}:{device}:{specs!r}")
    return hashlib.sha256(text.encode()).digest()


def set_database_key(body: Callable[..., Any], key: bytes) -> None:
    """Make ``key`` part of the database key of the hypothesis test wrapping ``body``.

    Every run's body is the same function (one source): without this, all pairs, dtypes
    and devices would share one key. ``_hypothesis_internal_add_digest`` is the
    attribute hypothesis itself sets to tell ``@pytest.mark.parametrize`` cases apart
    (``hypothesis.internal.reflection.function_digest``).
    """
    body._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]


def seeded(test: Callable[..., Any], seed: int | None, test_settings: Settings) -> Any:
    """``test`` (a ``@given`` test) under ``test_settings``, seeded with ``seed`` when
    it is not None, keeping ``test_settings.database``: saved failures are replayed
    first, then the seeded search runs, and new failures are saved."""
    if seed is not None:
        test = hypothesis.seed(seed)(test)  # also sets database=None, undone below
    return test_settings(test)
