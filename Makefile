# Two commands: `make demo` and `make test`. Both create .venv with pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: unpinned, pip would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/harmonize demo

# The default run leaves out tests marked slow or gpu (pyproject addopts); test-all runs them too.
test: setup
	$(BIN)/ruff check harmonize tests benchmarks
	$(BIN)/pytest

test-all: setup
	$(BIN)/ruff check harmonize tests benchmarks
	$(BIN)/pytest -m ""

lint: setup
	$(BIN)/ruff check harmonize tests benchmarks
	$(BIN)/ruff format --check harmonize tests benchmarks

format: setup
	$(BIN)/ruff format harmonize tests benchmarks
	$(BIN)/ruff check --fix harmonize tests benchmarks

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache .ruff_cache *.egg-info
