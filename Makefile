# data-streams: `make run` runs the whole system, `make test` the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .  # the data-streams command line
	touch $(STAMP)

run: $(STAMP)  ## Run web, ingest, worker, beat, Flower and the demo upstream (+ Redis).
	$(BIN)/python -m devtools.run

test: $(STAMP)  ## Lint, type-check and run every test (unit, integration, faults).
	$(BIN)/python -m devtools.test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy app tasks config devtools demo dscli

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

bench: $(STAMP)  ## Run the benchmarks in bench/ and write docs/benchmarks.md.
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var test-output
