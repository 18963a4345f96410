# Two commands: `make demo` and `make test`. Both create .venv with pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all readme readme-check lint format clean browser serve

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: unpinned, pip would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,serve]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/harmonize demo

# The default run leaves out tests marked slow or gpu (pyproject addopts); test-all runs them too.
test: setup
	$(BIN)/ruff check harmonize tests benchmarks scripts
	$(BIN)/pytest

test-all: setup
	$(BIN)/ruff check harmonize tests benchmarks scripts
	$(BIN)/pytest -m ""

# The review page's browser tests drive a headless Chromium (Debian/Ubuntu package `chromium`,
# root needed); without one they are skipped with the reason. CHROMIUM=/path overrides.
browser:
	command -v chromium >/dev/null || apt-get install -y chromium || sudo apt-get install -y chromium

serve: setup
	$(BIN)/harmonize --workspace demo-workspace serve

# The README's example outputs come from running its ```console blocks (scripts/readme.py).
readme: setup
	$(BIN)/python scripts/readme.py

readme-check: setup
	$(BIN)/python scripts/readme.py --check

lint: setup
	$(BIN)/ruff check harmonize tests benchmarks scripts
	$(BIN)/ruff format --check harmonize tests benchmarks scripts

format: setup
	$(BIN)/ruff format harmonize tests benchmarks scripts
	$(BIN)/ruff check --fix harmonize tests benchmarks scripts

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache .ruff_cache *.egg-info
