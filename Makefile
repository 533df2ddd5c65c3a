# edgesched: `make demo` and `make test` set up .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: setup demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# What the demo needs: the core and matplotlib for the report.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[report]"
	touch $@

# Everything, for the test suite.
$(VENV)/.all-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[all,dev]"
	touch $@ $(VENV)/.demo-installed

setup: $(VENV)/.all-installed

demo: $(VENV)/.demo-installed
	$(BIN)/edgesched demo

test: $(VENV)/.all-installed
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.all-installed
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.all-installed
	$(BIN)/ruff check edgesched tests benchmarks
	$(BIN)/ruff format --check edgesched tests benchmarks

bench: $(VENV)/.demo-installed
	$(BIN)/python benchmarks/sim_speed.py

clean:
	rm -rf $(VENV) edgesched-report .pytest_cache .ruff_cache
