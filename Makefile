# Set up from nothing (a virtual environment in .venv) and run things.
# torch==2.13.0 is installed first: it is the CPU build this machine has on disk; a bare
# `torch` requirement would download a CUDA build of several GB.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test docs pictures bench campaign lint clean

$(STAMP): pyproject.toml Makefile constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# the catalog, and its Triton kernels (in Triton's interpreter without a GPU)
run: $(STAMP)
	$(BIN)/python -m oracle losses losses._kernels --triton auto --jobs auto

# two xdist workers, one test file each at a time (module fixtures stay shared): about
# 1.6x faster than serially on this 2-core machine (tests/benchmarks/run.py --only speed)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# the documentation site, from nothing, into site/: --strict stops at a broken link, a
# missing API reference or a benchmark table without its data (docs/_tools/bench_tables.py)
docs: $(STAMP)
	rm -rf site
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

# the site's pictures, drawn by the oracle itself from fixed seeds (docs/img/*.png)
pictures: $(STAMP)
	$(BIN)/python docs/_tools/draw_pictures.py --out docs/img

# refreshes the site's tables: cp bench-results/bench.json docs/benchmarks/bench.json
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/run.py --json bench-results/bench.json

# the referee's record: false alarms and misses over 50 random seeds (about 30 minutes)
campaign: $(STAMP)
	$(BIN)/python tests/benchmarks/campaign.py --seeds 50 --wrong-seeds 20 --mutant-seeds 10 --json bench-results/campaign.json

lint: $(STAMP)
	$(BIN)/ruff check oracle losses tests

clean:
	rm -rf $(VENV) .hypothesis bench-results site
