"""oracle.pytest_plugin's hooks and helpers on a stand-in config (the plugin end to end,
with pytester: tests/e2e/test_plugin.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from oracle import pytest_plugin as plugin


class Config:
    """The parts of pytest.Config the plugin reads."""

    def __init__(self, options=None, ini=None, rootpath="/project", workerinput=None):
        self.options = {
            "--oracle-seed": None,
            "--oracle-device": None,
            "--oracle-dtype": None,
            "--oracle-modules": None,
            "--oracle-no-compile-cache": False,
            "--oracle-max-examples": None,
            "--oracle-isolate": False,
            "--oracle-triton": None,
            **(options or {}),
        }
        self.ini = {"oracle_modules": [], "oracle_compile_cache": True, **(ini or {})}
        self.rootpath = rootpath
        self.stash = pytest.Stash()
        self.lines = []
        if workerinput is not None:
            self.workerinput = workerinput

    def getoption(self, name):
        return self.options[name]

    def getini(self, name):
        return self.ini[name]

    def addinivalue_line(self, name, line):
        self.lines.append((name, line))


def configured(**kw):
    config = Config(**kw)
    plugin.pytest_configure(config)
    return config


def test_configure_registers_the_marker_and_keeps_a_given_seed():
    config = configured(options={"--oracle-seed": 42})
    assert config.stash[plugin._SEED] == 42
    assert config.lines == [("markers", "oracle: a test generated from a registered oracle pair")]


def test_a_worker_takes_the_controllers_seed_over_its_own():
    config = configured(options={"--oracle-seed": 1}, workerinput={"oracle_seed": 77})
    assert config.stash[plugin._SEED] == 77


def test_on_ci_the_seed_is_0_and_elsewhere_a_fresh_one(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert configured().stash[plugin._SEED] == 0
    monkeypatch.delenv("CI")
    seeds = {configured().stash[plugin._SEED] for _ in range(3)}
    assert len(seeds) > 1 and all(0 <= s < 2**31 for s in seeds)


def test_the_controller_hands_its_seed_to_each_worker():
    node = SimpleNamespace(config=configured(options={"--oracle-seed": 9}), workerinput={})
    plugin.pytest_configure_node(node)
    assert node.workerinput == {"oracle_seed": 9}


def test_the_header_names_the_seed_devices_asked_and_dtypes():
    config = configured(
        options={"--oracle-seed": 3, "--oracle-device": ["cpu"], "--oracle-dtype": ["float64"]}
    )
    assert (
        plugin.pytest_report_header(config)
        == "oracle: --oracle-seed=3 (devices cpu; dtypes float64)"
    )


@pytest.mark.parametrize(
    "options, ini, env, expected",
    [
        pytest.param({}, {}, None, os.path.join("/project", ".oracle_cache", "jax"), id="rootdir"),
        pytest.param({}, {}, "/cache", "/cache", id="env"),
        pytest.param({"--oracle-no-compile-cache": True}, {}, "/cache", None, id="option-off"),
        pytest.param({}, {"oracle_compile_cache": False}, None, None, id="ini-off"),
    ],
)
def test_compile_cache_dir(monkeypatch, options, ini, env, expected):
    if env is None:
        monkeypatch.delenv("ORACLE_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("ORACLE_CACHE_DIR", env)
    assert plugin.compile_cache_dir(Config(options, ini)) == expected


def test_the_modules_come_from_the_option_before_the_ini():
    assert plugin._modules(Config({"--oracle-modules": ["a"]}, {"oracle_modules": ["b"]})) == ["a"]
    assert plugin._modules(Config({}, {"oracle_modules": ["b"]})) == ["b"]


def test_registered_cases_are_one_per_pair_device_and_dtype_marked_oracle():
    cases = plugin.registered_cases(
        ["tests.pairs_good"], dtypes=("float32",), devices=("cpu", "cuda")
    )
    assert [c.id for c in cases] == [
        "cli_good_sin-float32-cpu",
        "cli_good_sin-float32-cuda",
        "cli_scaled_exp-float32-cpu",
        "cli_scaled_exp-float32-cuda",
    ]
    assert all(m.name == "oracle" for c in cases for m in c.marks)
    assert str(cases[0].values[0]) == "cli_good_sin-float32-cpu"


def test_registered_cases_of_a_module_that_cannot_be_imported_raise_import_error():
    with pytest.raises(ImportError):
        plugin.registered_cases(["no_such_module_for_the_oracle"])


class Reporter:
    def __init__(self, stats):
        self.stats, self.lines = stats, []

    def write_line(self, line):
        self.lines.append(line)


def test_the_summary_repeats_the_seed_only_when_a_test_used_the_oracle():
    config = configured(options={"--oracle-seed": 5})
    used = Reporter({"passed": [SimpleNamespace(user_properties=[("oracle_seed", 5)])]})
    plugin.pytest_terminal_summary(used, config)
    assert used.lines == ["oracle: --oracle-seed=5 (pass it to replay these searches)"]
    unused = Reporter({"passed": [SimpleNamespace(user_properties=[])], "warnings": [object()]})
    plugin.pytest_terminal_summary(unused, config)
    assert unused.lines == []
