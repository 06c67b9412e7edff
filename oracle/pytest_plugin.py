"""The pytest plugin (entry point ``pytest11``).

Options, in one group with a common prefix: ``--oracle-device``, ``--oracle-dtype``,
``--oracle-max-examples``, ``--oracle-seed``, ``--oracle-modules``,
``--oracle-reproducers``, ``--oracle-checks``, ``--oracle-timeout``,
``--oracle-isolate`` (each pair in a worker process, see :mod:`oracle.isolate`),
``--oracle-no-compile-cache``. Registered pairs become tests through the ``oracle_pair``
fixture: a test that asks for it is parametrized over every pair of the modules named by
``--oracle-modules`` or the ``oracle_modules`` ini setting (without either: every pair
registered by the modules imported so far, those the conftest imports), times dtype
and device::

    # test_twins.py
    def test_twins(oracle_pair, oracle_check):
        oracle_check(oracle_pair)

``oracle_check`` fails the test unless the outcome is as declared (clean, or the known
divergence flagged). A ``cuda`` case is skipped with the reason when no GPU is present.
The seed is printed in the report header, in the terminal summary (also under ``-q``)
and in every failure, so every run can be replayed; under pytest-xdist the controller
draws it and hands it to every worker. In a session that uses the oracle, JAX's
persistent compilation cache is on (``.oracle_cache/jax`` under the rootdir, shared by
xdist workers; ``oracle_compile_cache = false`` or ``--oracle-no-compile-cache`` turn it
off). Nothing heavy is imported when the plugin loads: torch and JAX load only when a
pair is collected.
"""

from __future__ import annotations

import os
import random
import shlex
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from .options import (
    CHECKS,
    enable_compile_cache,
    parse_checks,
    parse_timeout,
    torch_built_for_gpu,
    write_reproducers,
)
from .search import profiles  # noqa: F401  (registers oracle-campaign before hypothesis loads profiles)
from .vocabulary import DEFAULT_DTYPES, DTYPE_NAMES

_DTYPES = DEFAULT_DTYPES
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
        choices=DTYPE_NAMES,
        default=None,
        help="dtype for registered pairs (repeatable; default: float32 and float64; "
        "bfloat16, float16 and autocast-bfloat16, autocast-float16 on request)",
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
    group.addoption(
        "--oracle-reproducers",
        default=None,
        metavar="DIR",
        help="write one replay script per finding into DIR (runs from any directory)",
    )
    group.addoption(
        "--oracle-checks",
        type=parse_checks,
        default=None,
        metavar="CHECK,...",
        help=f"checks to run, comma-separated, among {', '.join(CHECKS)} (default: the oracle's)",
    )
    group.addoption(
        "--oracle-timeout",
        type=parse_timeout,
        default=None,
        metavar="S",
        help="seconds allowed per call of either side (default: the oracle's)",
    )
    group.addoption(
        "--oracle-isolate",
        action="store_true",
        default=False,
        help="check each pair in a worker process: user code that kills the process "
        "(os._exit, a segfault, the out-of-memory killer) fails that pair's test only",
    )
    group.addoption(
        "--oracle-no-compile-cache",
        action="store_true",
        default=False,
        help="do not keep JAX's compiled programs in .oracle_cache/jax between runs",
    )
    group.addoption(
        "--oracle-triton",
        choices=("interpret", "compiled", "auto"),
        default=None,
        help="Triton kernels: interpret (Triton's interpreter, on the CPU; set up before "
        "conftest.py files and test modules are imported), compiled, or auto (the "
        "interpreter without a GPU)",
    )
    parser.addini(
        "oracle_modules", "modules whose registered pairs feed the oracle_pair fixture", type="args"
    )
    parser.addini(
        "oracle_triton", "like --oracle-triton: interpret, compiled or auto", default=None
    )
    parser.addini(
        "oracle_compile_cache",
        "keep JAX's compiled programs in .oracle_cache/jax under the rootdir (default: true)",
        type="bool",
        default=True,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: Any) -> None:
    """--oracle-triton: Triton is set up before any conftest.py (or test module) can
    import it, since triton decides at decoration time whether a kernel is interpreted."""
    ns = early_config.known_args_namespace
    mode = getattr(ns, "oracle_triton", None) or early_config.getini("oracle_triton")
    if mode:
        from .pair.triton import prepare as prepare_triton

        try:
            prepare_triton(mode)
        except (RuntimeError, ValueError, ImportError) as exc:
            raise pytest.UsageError(f"--oracle-triton {mode}: {exc}") from exc


_SEED = pytest.StashKey[int]()
#: the user property that marks a test as the oracle's (it crosses to the xdist controller)
_PROPERTY = "oracle_seed"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "oracle: a test generated from a registered oracle pair")
    _check_options(config)
    seed = config.getoption("--oracle-seed")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _PROPERTY in workerinput:
        seed = workerinput[_PROPERTY]  # an xdist worker: the controller's seed
    elif seed is None:
        # CI runs must be deterministic; elsewhere a fresh seed each run, printed
        seed = 0 if os.environ.get("CI") else random.SystemRandom().randrange(2**31)
    config.stash[_SEED] = seed


def _check_options(config: pytest.Config) -> None:
    """A usage error once, as the command line gives, not a ValueError in every test."""
    examples = config.getoption("--oracle-max-examples")
    if examples is not None and examples < 1:
        raise pytest.UsageError(f"--oracle-max-examples={examples} must be at least 1")
    seed = config.getoption("--oracle-seed")
    if seed is not None and seed < 0:
        raise pytest.UsageError(f"--oracle-seed={seed} must be non-negative")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the controller's seed to each worker (as pytest-randomly does)."""
    node.workerinput[_PROPERTY] = node.config.stash[_SEED]


def _header_devices(config: pytest.Config) -> list[str] | None:
    asked = config.getoption("--oracle-device")
    if asked:
        return list(asked)
    # finding out which devices are present imports torch and JAX: only when this
    # session uses the oracle (modules named, or pairs already imported by a conftest)
    if _modules(config) or "oracle.registration" in sys.modules:
        if torch_built_for_gpu() is False:
            return ["cpu"]  # a CPU build of torch sees no GPU (and torch stays unloaded)
        from .pair.bridge import available_devices

        return list(available_devices())
    return None


def pytest_report_header(config: pytest.Config) -> str:
    devices = _header_devices(config)
    dtypes = config.getoption("--oracle-dtype") or list(_DTYPES)
    where = f"devices {', '.join(devices)}; " if devices else ""
    return f"oracle: --oracle-seed={config.stash[_SEED]} ({where}dtypes {', '.join(dtypes)})"


def compile_cache_dir(config: pytest.Config) -> str | None:
    """Where this session keeps JAX's compiled programs: ``$ORACLE_CACHE_DIR``, else
    ``.oracle_cache/jax`` under the rootdir; None when turned off."""
    if config.getoption("--oracle-no-compile-cache") or not config.getini("oracle_compile_cache"):
        return None
    return os.environ.get("ORACLE_CACHE_DIR") or os.path.join(
        str(config.rootpath), ".oracle_cache", "jax"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Turn on JAX's persistent compilation cache when this session uses the oracle
    (the plugin is the program here, as ``python -m oracle`` is; a ``verify`` call
    alone never does this). xdist workers share the directory."""
    if "oracle.registration" not in sys.modules and "oracle.api" not in sys.modules:
        return  # not an oracle session: leave the user's JAX alone
    path = compile_cache_dir(session.config)
    if path is not None:
        enable_compile_cache(path)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The seed again at the end, where ``pytest -q`` shows it (there is no header),
    when a test used the oracle (its report carries the seed, also from xdist workers)."""
    used = any(
        name == _PROPERTY
        for reports in terminalreporter.stats.values()
        for r in reports
        for name, _ in getattr(r, "user_properties", ())
    )
    if used:
        seed = config.stash[_SEED]
        terminalreporter.write_line(
            f"oracle: --oracle-seed={seed} (pass it to replay these searches)"
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


def registered_cases(modules: list[str] | None, dtypes=_DTYPES, devices=_DEVICES) -> list[Any]:
    """``pytest.param`` cases for every registered pair of ``modules`` (None: every
    pair registered so far)."""
    import importlib

    from .registration import registry

    for m in modules or ():
        importlib.import_module(m)
    pairs = registry() if modules is None else registry().in_modules(modules)
    return [
        pytest.param(PairCase(p, dt, dev), id=f"{p.name}-{dt}-{dev}", marks=pytest.mark.oracle)
        for p in pairs
        for dev in devices
        for dt in dtypes
    ]


_HOW = (
    "import the module that registers your pairs in conftest.py (`import mypairs`), "
    "or set `oracle_modules = mypairs` in the [pytest] ini, or pass --oracle-modules=mypairs"
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "oracle_pair" not in metafunc.fixturenames:
        return
    config = metafunc.config
    modules = _modules(config) or None
    try:
        cases = registered_cases(
            modules,
            dtypes=tuple(config.getoption("--oracle-dtype") or _DTYPES),
            devices=tuple(config.getoption("--oracle-device") or _DEVICES),
        )
    except ImportError as exc:
        # a collection error of one line, not a traceback through pluggy
        raise pytest.Collector.CollectError(
            f"oracle: cannot import {exc.name or 'a module'} for the oracle_pair fixture "
            f"(oracle_modules: {', '.join(modules or [])}): {exc}"
        ) from None
    if not cases:
        found = f"in {', '.join(modules)}" if modules else "by the modules imported so far"
        raise pytest.Collector.CollectError(
            f"oracle: the oracle_pair fixture found no registered pairs {found}: {_HOW}"
        )
    metafunc.parametrize("oracle_pair", cases)


_ISOLATED = pytest.StashKey[Any]()


def _isolated(config: pytest.Config) -> Any:
    """The session's worker process under ``--oracle-isolate`` (started on first use,
    reused while it lives), else None."""
    if not config.getoption("--oracle-isolate"):
        return None
    if _ISOLATED not in config.stash:
        from .isolate import Isolated

        config.stash[_ISOLATED] = Isolated()
    return config.stash[_ISOLATED]


def pytest_unconfigure(config: pytest.Config) -> None:
    isolated = config.stash.get(_ISOLATED, None)
    if isolated is not None:
        isolated.close()


@pytest.fixture
def oracle_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments for ``oracle.verify`` from the command-line options."""
    config = request.config
    seed = config.stash[_SEED]
    request.node.user_properties.append((_PROPERTY, seed))
    opts: dict[str, Any] = {"seed": seed}
    # each passed on only when given, so verify's own defaults apply otherwise
    for option, key in (
        ("--oracle-max-examples", "max_examples"),
        ("--oracle-checks", "checks"),
        ("--oracle-timeout", "timeout"),
    ):
        value = config.getoption(option)
        if value is not None:
            opts[key] = value
    return opts


@pytest.fixture
def oracle_check(request: pytest.FixtureRequest, oracle_options: dict[str, Any]):
    """Check a :class:`PairCase` (or a registered pair) and fail unless as declared."""
    config = request.config
    seed = oracle_options.get("seed")
    directory = config.getoption("--oracle-reproducers")
    if directory:
        directory = os.path.join(str(config.invocation_params.dir), directory)

    def check(case: Any) -> Any:
        if isinstance(case, PairCase):
            pair, kwargs = case.pair, {"dtypes": (case.dtype,), "devices": (case.device,)}
            if case.device == "cuda":
                from .pair.bridge import available_devices

                if "cuda" not in available_devices():
                    pytest.skip("cuda: no GPU visible to both torch and JAX")
        else:
            pair, kwargs = case, {}
        isolated = _isolated(config)
        if isolated is not None:  # in a worker process: a crash fails this test only
            report = isolated.verify(pair, **{**oracle_options, **kwargs})
            rows = isolated.outcomes(pair, report)
        else:
            report = pair.verify(**{**oracle_options, **kwargs})
            rows = pair.outcomes(report)
        paths = write_reproducers([report], directory) if directory else []
        bad = [r for r in rows if not r.expected]
        if bad:
            lines = [f"{r.name} ({r.dtype}, {r.device}): {r.outcome}: {r.note}" for r in bad]
            lines.append(
                f"replay: pytest --oracle-seed={seed} {shlex.quote(request.node.nodeid)}"
                " (the example database also tries this example first next time)"
            )
            lines += [f"reproducer: {p}  (python {p})" for p in paths]
            if not paths and report.findings:
                lines.append("reproducer: pass --oracle-reproducers=DIR to write one per finding")
            pytest.fail("\n".join(lines) + "\n\n" + str(report), pytrace=False)
        return report

    return check
