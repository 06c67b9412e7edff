"""Every code example of README.md and the documentation site runs, and every output it
shows is what it prints (tests/e2e/docs_examples.py says how a page is read).

The benchmark tables of the site are generated from JSON at build time
(docs/_tools/bench_tables.py); the tests below render each one without MkDocs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pytest

from tests.e2e.docs_examples import ROOT, evaluate, evaluate_in_fresh_process, pages, runs_as_script


def _id(path):
    return str(path.relative_to(ROOT))


@pytest.fixture
def restored_registry():
    """Pages register pairs of their own, from their namespace (``__main__`` to the
    registry); those are dropped after the page. Pairs of modules the page imported (the
    catalog) stay, since their modules stay imported."""
    registry_module = importlib.import_module("oracle.registration")
    before = set(registry_module._REGISTRY)
    yield
    for name in set(registry_module._REGISTRY) - before:
        if registry_module._REGISTRY[name].module not in sys.modules or (
            registry_module._REGISTRY[name].module == "__main__"
        ):
            del registry_module._REGISTRY[name]


@pytest.mark.parametrize("page", pages(), ids=_id)
def test_every_example_on_the_page_runs_and_prints_what_it_shows(
    page, tmp_path, monkeypatch, restored_registry
):
    if runs_as_script(page):
        failure = evaluate_in_fresh_process(page)
        assert failure is None, failure
    else:
        monkeypatch.chdir(tmp_path)  # files an example writes (replay.py, finding.png)
        evaluate(page, tmp_path)


def _files(page):
    """{file name: text} of the page's ``python title="NAME"`` blocks."""
    blocks = re.findall(r'```python title="([^"]+)"\n(.*?)```', page.read_text(), re.DOTALL)
    return dict(blocks)


def test_the_readme_pytest_recipe_is_the_one_the_pytest_guide_runs():
    # the README shows the recipe's files; docs/how-to/pytest.md runs them (and a second
    # pair after the first), so the front door's files must be the guide's
    readme, guide = _files(ROOT / "README.md"), _files(ROOT / "docs" / "how-to" / "pytest.md")
    assert set(readme) == {"mypairs.py", "conftest.py", "test_twins.py"}
    for name, text in readme.items():
        assert guide[name].startswith(text), name


def _bench_tables():
    spec = importlib.util.spec_from_file_location(
        "bench_tables", ROOT / "docs" / "_tools" / "bench_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_table_a_page_asks_for_renders_from_the_committed_json():
    tables = _bench_tables()
    asked = {name for page in pages() for name in tables.MARKER.findall(page.read_text())}
    # every table the JSON files feed is shown somewhere (none is left behind)
    assert asked == set(tables.SOURCES)
    for name in asked:
        text = tables.render(name)
        assert text.startswith("| "), text
        assert re.search(r"\*Measured on \S+ on .+; generated from `docs/benchmarks/", text)


def test_a_table_without_its_data_stops_the_build(tmp_path):
    tables = _bench_tables()
    (tmp_path / "bench.json").write_text('{"machine": {}}')
    with pytest.raises(KeyError, match="has no 'cost' section"):
        tables.render("cost", tmp_path)
    with pytest.raises(KeyError, match="unknown benchmark table 'nope'"):
        tables.render("nope", tmp_path)


def test_a_table_is_rendered_from_the_figures_in_the_json(tmp_path):
    # a row as tests/benchmarks/run.py writes it (seconds), shown in milliseconds
    tables = _bench_tables()
    row = {"function": "x_sin", "elements": 10**5, "target_elements": 10**5}
    row |= {"dtype": "float32", "floor_s": 0.00171, "check_s": 0.00225}
    row |= {"check_ratio": 1.3158, "verify_ratio": 2.2}
    machine = {"cpu": "Some CPU", "cpu_count": 2, "torch": "2.13.0", "jax": "0.10.2"}
    machine["date"] = "2026-01-02 03:04 UTC"
    (tmp_path / "bench.json").write_text(json.dumps({"machine": machine, "cost": {"rows": [row]}}))
    text = tables.render("cost", tmp_path)
    assert "| x_sin | 10^5 | float32 | 1.71 | 2.25 | 1.32x | 2.20x |" in text
    assert "Measured on 2026-01-02 03:04 UTC on Some CPU, 2 CPUs, torch 2.13.0, JAX 0.10.2" in text
