"""Triton's set-up for this folder: see ``_setup.py`` (imported here, so that it runs when
pytest collects the folder, before any test module imports triton)."""

from tests.kernels import _setup  # noqa: F401
