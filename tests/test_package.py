"""oracle/__init__.py: the public names, imported lazily (``import oracle`` stays light)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import oracle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", oracle.__all__)
def test_each_public_name_is_the_object_of_its_module(name):
    module = importlib.import_module(f"oracle.{oracle._WHERE[name]}")
    assert getattr(oracle, name) is getattr(module, name)
    assert name in dir(oracle)


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="module 'oracle' has no attribute 'verfy'"):
        oracle.verfy  # noqa: B018


def test_import_oracle_loads_neither_torch_nor_jax():
    code = "import sys, oracle; print(sorted(m for m in ('torch', 'jax', 'hypothesis') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
