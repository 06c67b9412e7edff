"""Run the code examples of README.md and docs/**/*.md, as a reader would.

Each page is read with `Sybil <https://sybil.readthedocs.io>`_ and its fenced blocks
are evaluated in order, in one namespace per page:

* ``python``: executed; what it prints is kept for the next ``output`` block;
* ``python title="mypairs.py"`` (any language with a ``title``): written to that file in
  the page's scratch directory (a user's project), not executed;
* ``console``: each ``$ command`` line runs in the scratch directory (``python`` and
  ``pytest`` are this interpreter's); what it prints is kept for the next ``output`` block;
* ``output``: compared with what was printed since the previous ``output`` block, line
  by line with trailing spaces dropped; ``...`` matches anything (doctest's ELLIPSIS);
* ``<!-- skip: next -->`` before a block: not run (Sybil's skip directive);
* ``<!-- invisible-code-block: python -->``: code the reader does not see, run in place.

Every other block (``sh``, ``text``, ``ini``...) is shown, not run.

A page that shows the output of a seeded search, and says so with the line
``<!-- docs-test: run as a script -->`` (a reason may follow), runs as one script (its blocks in order) in a fresh interpreter,
in an empty directory (so that no example database from an earlier run replays a failure
first), with the repository root on ``PYTHONPATH``: the output of a seeded search depends
on the modules the process has imported, since hypothesis also draws constants it finds
in the source of local modules, so the output shown is what that script prints, not what
a pytest worker would. ``python -m tests.e2e.docs_examples PAGE`` checks one page.
"""

from __future__ import annotations

import doctest
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[2]
#: the key under which a page's namespace keeps the harness's own state
STATE = "__docs_example_state__"
_TITLED = re.compile(r'^(?P<language>[\w+-]+) +title="(?P<title>[^"]+)"$')


def pages() -> list[Path]:
    """Every page: the README and the site's Markdown files."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


#: the line that makes a page run as one script in a fresh interpreter (see above)
AS_SCRIPT = "<!-- docs-test: run as a script"


def runs_as_script(path: Path) -> bool:
    return AS_SCRIPT in path.read_text()


def _env() -> dict[str, str]:
    """The environment of every script and command: the repository root importable
    (``losses``), 80 columns (argparse's help and pytest's banners wrap as the pages show
    them), and no GPU: the output shown is a CPU-only machine's (a GPU adds ``cuda``
    rows)."""
    env = dict(os.environ, COLUMNS="80", CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _state(example: Example) -> dict[str, Any]:
    return example.namespace[STATE]


def _run_python(example: Example) -> None:
    __tracebackhide__ = True
    buffer = io.StringIO()
    try:
        with redirect_stdout(buffer):
            PythonEvaluator()(example)
    finally:
        _state(example)["printed"] += buffer.getvalue()


def _command(line: str) -> list[str]:
    """``python ...`` and ``pytest ...`` with this interpreter; anything else as written."""
    argv = shlex.split(line)
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    if argv[0] == "pytest":
        return [sys.executable, "-m", "pytest", *argv[1:]]
    return argv


def _run_console(example: Example) -> str | None:
    state = _state(example)
    for line in example.parsed.splitlines():
        if not line.startswith("$ "):
            continue
        proc = subprocess.run(
            _command(line[2:]),
            cwd=state["scratch"],
            env=state["env"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        state["printed"] += proc.stdout
        state["stderr"] = proc.stderr
    return None


def _check_output(example: Example) -> str | None:
    state = _state(example)
    got, state["printed"] = state["printed"], ""
    want = "\n".join(line.rstrip() for line in example.parsed.strip("\n").splitlines())
    got = "\n".join(line.rstrip() for line in got.strip("\n").splitlines())
    checker = doctest.OutputChecker()
    if checker.check_output(want + "\n", got + "\n", doctest.ELLIPSIS):
        return None
    return (
        "the output shown is not what the example prints\n--- shown\n"
        + want
        + "\n--- printed\n"
        + got
        + (
            "\n--- stderr of the last command\n" + state["stderr"][-3000:]
            if state["stderr"]
            else ""
        )
    )


class FileParser:
    """``lang title="NAME"`` blocks: written to NAME in the page's scratch directory."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(
            language=r".+", mapping={"language": "arguments", "source": "source"}
        )

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self.lexer(document):
            match = _TITLED.match(region.lexemes["arguments"])
            if match:
                region.parsed = (match.group("title"), str(region.lexemes["source"]))
                region.evaluator = self._write
                yield region

    @staticmethod
    def _write(example: Example) -> None:
        name, text = example.parsed
        path = Path(_state(example)["scratch"]) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


SYBIL = Sybil(
    parsers=[
        CodeBlockParser("python", _run_python),
        CodeBlockParser("console", _run_console),
        CodeBlockParser("output", _check_output),
        FileParser(),
        SkipParser(),
    ],
    patterns=["*.md"],
)


def evaluate(path: Path, scratch: Path) -> None:
    """Run every example of page ``path`` in this process; raise at the first failure."""
    document = SYBIL.parse(path)
    document.namespace[STATE] = {
        "printed": "",
        "stderr": "",
        "scratch": str(scratch),
        "env": _env(),
    }
    for example in document:
        example.evaluate()


MARK = "\x1e-docs-output-"


def as_script(path: Path) -> tuple[str, list[Example]]:
    """Page ``path`` as one Python script, and its ``output`` examples in order.

    The ``python`` blocks go in verbatim, at top level, so that the script is what a
    reader who pastes the page's blocks into a file runs (hypothesis draws constants from
    the source of the modules a process imported, ``__main__`` included: code kept in a
    string would draw differently). Files and commands become calls of their own, and a
    marker line is printed where each ``output`` block is checked.
    """
    lines = ["import subprocess as _subprocess", "import sys as _sys", ""]
    outputs: list[Example] = []
    for example in SYBIL.parse(path):
        where = f"# {path.name}, line {example.line}"
        evaluator = example.region.evaluator
        if evaluator is _run_python:
            lines += [where, str(example.parsed), ""]
        elif isinstance(example.parsed, tuple):  # a titled block: a file
            name, text = example.parsed
            lines += [where, f"open({name!r}, 'w').write({text!r})", ""]
        elif evaluator is _run_console:
            for line in str(example.parsed).splitlines():
                if line.startswith("$ "):
                    argv = _command(line[2:])
                    lines += [
                        where,
                        f"_proc = _subprocess.run({argv!r}, capture_output=True, text=True)",
                        "_sys.stdout.write(_proc.stdout)",
                        "_sys.stderr.write(_proc.stderr)",
                    ]
            lines.append("")
        elif evaluator is _check_output:
            outputs.append(example)
            lines += [where, f"print({MARK!r}, flush=True)", ""]
    return "\n".join(lines), outputs


def evaluate_in_fresh_process(path: Path) -> str | None:
    """Run page ``path`` as a script in a new interpreter, in an empty directory (see the
    module's docstring), and check each ``output`` block against what the script printed
    before it. None when every block matched; else what went wrong."""
    env = _env()
    script, outputs = as_script(path)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "page.py").write_text(script)
        proc = subprocess.run(
            [sys.executable, "page.py"],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    pieces = (proc.stdout + "\n").split(MARK + "\n")
    if proc.returncode != 0:
        return f"{path.name} failed as a script:\n{proc.stderr[-6000:]}\n--- script\n{script}"
    # one piece before each marker, and what the script printed after the last one
    for example, printed in zip(outputs, pieces[: len(outputs)], strict=True):
        state = {"printed": printed, "stderr": proc.stderr}
        example.namespace[STATE] = state
        failure = _check_output(example)
        if failure:
            return f"{path.name}, line {example.line}: {failure}"
    return None


if __name__ == "__main__":  # python -m tests.e2e.docs_examples PAGE: check one page
    page = Path(sys.argv[1]).resolve()
    if runs_as_script(page):
        failure = evaluate_in_fresh_process(page)
        if failure:
            sys.exit(failure)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)
            evaluate(page, Path(scratch))
