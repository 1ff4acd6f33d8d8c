# Two commands: `make start` runs Legion on the embedded default (no services needed);
# `make test` sets everything up and runs the whole test suite (what CI runs).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist processes for `make test`. The suite is mostly CPU (each `legion` subprocess
# the tests start costs about a second of it), with waits between. On the 2-core machine with
# nothing else running: one process 231-233 s; with --dist worksteal, -n 2 117-124 s, -n 3
# 104-116 s, -n 4 105-126 s, -n 6 139-140 s. 3 and 4 tie; 4 leaves room for tests that wait
# on services. `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= 4

# Legion is installed editable in strict mode: a tree of links to the source files in
# build/__editable__.*, which editors' analysers (pyright, Pylance) can follow. (The default
# editable mode serves the package-dir mapping, engine/ -> legion.engine and so on, through an
# import hook that they cannot see.) An edit to an existing file shows at once; a file added
# or removed shows only after a reinstall. So each install leaves a stamp,
# .venv/.installed-<extra>, and is redone when pyproject.toml or the list of the packages'
# files changes; when nothing changed, nothing is reinstalled.
PACKAGE_DIRS := dsl engine extensions chains schemas sdk
FILES := $(VENV)/.package-files
INSTALL := --config-settings editable_mode=strict
# An extra's install also satisfies the extras it includes.
INCLUDES_test := base
INCLUDES_dev := base test

# The link tree is the install: when it is gone (say, build/ was cleaned), no stamp holds.
ifeq ($(wildcard build/__editable__.*),)
$(shell rm -f $(VENV)/.installed-*)
endif

.PHONY: start test setup bench lint FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/pip-upgrade.log 2>&1 \
		|| { cat $(VENV)/pip-upgrade.log; echo "make: upgrading pip failed (log: $(VENV)/pip-upgrade.log)" >&2; exit 1; }

# The files an install links (modules and package data), rewritten only when the list
# differs: its date says when one came or went.
$(FILES): FORCE | $(BIN)/python
	@find $(PACKAGE_DIRS) -name __pycache__ -prune -o -type f \( -name '*.py' -o -name '*.yaml' -o -name '*.json' \
		-o -name '*.ini' -o -name '*.mako' \) -print | LC_ALL=C sort > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

# pip's output goes to the stamp's .log (and to the terminal only when the install fails):
# setuptools reports every editable install with a warning that is not a problem.
$(VENV)/.installed-%: pyproject.toml $(FILES) | $(BIN)/python
	@echo "installing Legion$(if $(filter-out base,$*), with the $* extra) in $(VENV) (log: $@.log)"
	@$(BIN)/python -m pip install --quiet -e '.$(if $(filter-out base,$*),[$*])' $(INSTALL) > $@.log 2>&1 \
		|| { cat $@.log; echo "make: installing Legion failed (log: $@.log)" >&2; exit 1; }
	@touch $@ $(foreach extra,$(INCLUDES_$*),$(VENV)/.installed-$(extra))

FORCE:

setup: $(VENV)/.installed-test

start: $(VENV)/.installed-base
	$(BIN)/legion start

test: setup
	scripts/services.sh
	scripts/chromium.sh
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal
	# Restarting RabbitMQ disturbs every test using it: that one runs alone, after the rest.
	$(BIN)/python -m pytest -q -m broker_restart tests/integration/test_broker_restart.py

bench: setup
	$(BIN)/python bench/conductor.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/throughput.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy dsl engine extensions sdk
