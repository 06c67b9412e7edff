"""Test-suite settings: deterministic searches, no example database carried between runs."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("oracle-tests", database=None, derandomize=True, deadline=None)
settings.load_profile("oracle-tests")

pytest_plugins = ["pytester"]
