# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Parallel test processes (pytest-xdist); CI machines have 2 cores.
TEST_WORKERS ?= 2

.PHONY: demo test test-fast lint lint-imports docs clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml requirements/demo.txt
	$(BIN)/python -m pip install -q -r requirements/demo.txt
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml requirements/dev.txt
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/tunebook demo --storage sqlite:///tunebook.db
	$(BIN)/tunebook ls --storage sqlite:///tunebook.db

# The import contracts (.importlinter) and the docs build run before the tests: a broken layering or a
# broken link fails fast.
test: lint-imports docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -q -rs tests

# The fast lane (under 2 minutes on 2 cores): unit tests on SQLite. Leaves out the tests marked slow (real
# multi-process runs: faults, interrupts, Ray), the PostgreSQL half of the storage suite and the browser test.
FAST_TESTS := -m "not slow and not postgres" -k "not postgresql" --ignore=tests/analysis/test_report_browser.py
test-fast: lint-imports docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -q -rs $(FAST_TESTS) tests

lint: lint-imports
	$(BIN)/ruff check tunebook tests benchmarks

# DESIGN.md's one-way dependencies: nothing imports cli or dashboard, storage at the bottom, no cycles.
lint-imports: $(VENV)/.test-installed
	$(BIN)/lint-imports

# The documentation site (mkdocs.yml, pages in docs/) into site/ (git-ignored). --strict: a link to a missing
# page or anchor, or a nav entry without its page, fails the build.
docs: $(VENV)/.test-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Each prints its ratios against a named peer measured in the same run, and the floor it is measured against
# (raw driver, bare list append, plain loop, bare interpreter); minutes each, see benchmarks/.
bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_logging.py
	$(BIN)/python benchmarks/bench_analysis.py
	$(BIN)/python benchmarks/bench_training_overhead.py
	cd benchmarks && ../$(BIN)/python bench_executor.py
	$(BIN)/python benchmarks/bench_dashboard.py --skip-optuna
	$(BIN)/python benchmarks/bench_bayesian.py

clean:
	rm -rf $(VENV) site tunebook.db tunebook.db-* tunebook_checkpoints tunebook-report-*.html
