"""The pytest plugin (entry point ``pytest11``).

Options, in one group with a common prefix: ``--oracle-device``, ``--oracle-dtype``,
``--oracle-max-examples``, ``--oracle-seed``, ``--oracle-modules``. Registered pairs
become tests through the ``oracle_pair`` fixture: a test that asks for it is
parametrized over every pair of the modules named by ``--oracle-modules`` or the
``oracle_modules`` ini setting, times dtype and device::

    # test_twins.py
    def test_twins(oracle_pair, oracle_check):
        oracle_check(oracle_pair)

``oracle_check`` fails the test unless the outcome is as declared (clean, or the known
divergence flagged). A ``cuda`` case is skipped with the reason when no GPU is present.
The seed is printed in the report header so every run can be replayed. Nothing heavy
is imported when the plugin loads: torch and JAX load only when a pair is collected.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import pytest

from . import profiles  # noqa: F401  (registers oracle-campaign before hypothesis loads profiles)

_DTYPES = ("float32", "float64")
_DEVICES = ("cpu", "cuda")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("oracle", "gradient oracle")
    group.addoption(
        "--oracle-device",
        action="append",
        choices=_DEVICES,
        default=None,
        help="device for registered pairs (repeatable; default: cpu and cuda, cuda skipped when absent)",
    )
    group.addoption(
        "--oracle-dtype",
        action="append",
        choices=_DTYPES,
        default=None,
        help="dtype for registered pairs (repeatable; default: float32 and float64)",
    )
    group.addoption(
        "--oracle-max-examples",
        type=int,
        default=None,
        help="hypothesis examples per pair, dtype and device (default: the pair's, or 100)",
    )
    group.addoption(
        "--oracle-seed",
        type=int,
        default=None,
        help="seed for every oracle search (default: random, printed in the header; 0 under CI)",
    )
    group.addoption(
        "--oracle-modules",
        action="append",
        default=None,
        help="modules whose registered pairs feed the oracle_pair fixture",
    )
    parser.addini(
        "oracle_modules", "modules whose registered pairs feed the oracle_pair fixture", type="args"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "oracle: a test generated from a registered oracle pair")
    seed = config.getoption("--oracle-seed")
    if seed is None:
        # CI runs must be deterministic; elsewhere a fresh seed each run, printed
        seed = 0 if os.environ.get("CI") else random.SystemRandom().randrange(2**31)
    config.stash[_SEED] = seed


_SEED = pytest.StashKey[int]()


def pytest_report_header(config: pytest.Config) -> str:
    devices = config.getoption("--oracle-device") or list(_DEVICES)
    dtypes = config.getoption("--oracle-dtype") or list(_DTYPES)
    return (
        f"oracle: --oracle-seed={config.stash[_SEED]} (devices {', '.join(devices)}; "
        f"dtypes {', '.join(dtypes)})"
    )


@dataclass(frozen=True)
class PairCase:
    """One registered pair in one dtype on one device."""

    pair: Any
    dtype: str
    device: str

    def __str__(self) -> str:
        return f"{self.pair.name}-{self.dtype}-{self.device}"


def _modules(config: pytest.Config) -> list[str]:
    return list(config.getoption("--oracle-modules") or config.getini("oracle_modules") or [])


def registered_cases(modules: list[str], dtypes=_DTYPES, devices=_DEVICES) -> list[Any]:
    """``pytest.param`` cases for every registered pair of ``modules``."""
    import importlib

    from .registration import registry

    for m in modules:
        importlib.import_module(m)
    return [
        pytest.param(PairCase(p, dt, dev), id=f"{p.name}-{dt}-{dev}", marks=pytest.mark.oracle)
        for p in registry().in_modules(modules)
        for dev in devices
        for dt in dtypes
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "oracle_pair" not in metafunc.fixturenames:
        return
    config = metafunc.config
    modules = _modules(config)
    if not modules:
        raise pytest.UsageError(
            "the oracle_pair fixture needs modules: pass --oracle-modules=MODULE or set "
            "oracle_modules in the pytest ini"
        )
    cases = registered_cases(
        modules,
        dtypes=tuple(config.getoption("--oracle-dtype") or _DTYPES),
        devices=tuple(config.getoption("--oracle-device") or _DEVICES),
    )
    metafunc.parametrize("oracle_pair", cases)


@pytest.fixture
def oracle_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments for ``oracle.verify`` from the command-line options."""
    opts: dict[str, Any] = {"seed": request.config.stash[_SEED]}
    n = request.config.getoption("--oracle-max-examples")
    if n is not None:
        opts["max_examples"] = n
    return opts


@pytest.fixture
def oracle_check(oracle_options: dict[str, Any]):
    """Check a :class:`PairCase` (or a registered pair) and fail unless as declared."""

    def check(case: Any) -> Any:
        if isinstance(case, PairCase):
            pair, kwargs = case.pair, {"dtypes": (case.dtype,), "devices": (case.device,)}
            if case.device == "cuda":
                from .bridge import available_devices

                if "cuda" not in available_devices():
                    pytest.skip("cuda: no GPU visible to both torch and JAX")
        else:
            pair, kwargs = case, {}
        report = pair.verify(**{**oracle_options, **kwargs})
        rows = pair.outcomes(report)
        bad = [r for r in rows if not r.expected]
        if bad:
            lines = [f"{r.name} ({r.dtype}, {r.device}): {r.outcome}: {r.note}" for r in bad]
            pytest.fail("\n".join(lines) + "\n\n" + str(report), pytrace=False)
        return report

    return check
