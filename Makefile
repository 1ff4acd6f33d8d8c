# Two commands: `make start` runs Legion on the embedded default (no services needed);
# `make test` sets everything up and runs the whole test suite (what CI runs).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: start test setup bench lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

start: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/legion start

test: setup
	scripts/services.sh
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/conductor.py
	$(BIN)/python bench/startup.py

lint: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/ruff check .
	$(BIN)/mypy dsl engine extensions
