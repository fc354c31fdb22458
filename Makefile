# topo: developer entry points. `make demo` and `make test` are all a new user needs.
#
#   make test        run the tests (installs rabbitmq-server if missing; each run starts a private node)
#   make lock        re-resolve the dev/test install to today's newest releases into constraints.txt
#   make lint        ruff + mypy --strict
#   make demo        apply topologies/ to a broker, then show that a second plan has no changes
#   make demo-stop   stop the demo's private node (if the demo started one)
#   make clean       stop the demo node, remove caches and .devbroker/ (distclean: also .venv/)
#
# Variables: PYTHON (python3), PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS='-m "not slow"'),
# TOPO_URL (the Management API the demo tries first; default http://guest:guest@localhost:15672).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Every distribution of the dev/test install, pinned (tests/test_constraints.py checks that none is
# missing), so that a new upstream release cannot turn `make test` red by itself. pyproject.toml keeps
# ranges: users of the package are not pinned. `make lock` refreshes the file.
CONSTRAINTS := constraints.txt
LOCK_VENV := .venv-lock
PYTEST_ARGS ?=
LINT_DIRS := $(wildcard topo tests benches)

DEMO_DIR := .devbroker
DEMO_AMQP_PORT := 5673
DEMO_HTTP_PORT := 15673
TOPO_URL ?= http://guest:guest@localhost:15672
# Passed through the environment so that make never echoes a password.
export TOPO_URL

.PHONY: help venv lock rabbitmq test lint demo demo-stop clean distclean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

# Rebuilt from scratch (--clear) when either file changes, so that nothing of an older install stays.
$(INSTALLED): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

venv: $(INSTALLED)

# Resolves pyproject.toml's ranges afresh, without constraints, in a throwaway venv, and writes what was
# installed. Review the diff, run `make test` (which rebuilds .venv from the new file), then commit.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	{ echo "# The dev/test install, every distribution pinned: made (and refreshed) by \`make lock\` with $$($(LOCK_VENV)/bin/python --version)."; \
	  echo "# Used by \`make venv\` (and so \`make test\`, \`.ci/run\`) as pip -c; pyproject.toml keeps ranges."; \
	  $(LOCK_VENV)/bin/pip freeze --disable-pip-version-check --exclude-editable; } > $(CONSTRAINTS).new
	rm -rf $(LOCK_VENV)
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

rabbitmq:
	bash .ci/ensure-rabbitmq.sh

test: $(INSTALLED) rabbitmq
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/mypy

# The demo uses the broker at $TOPO_URL when its Management API answers; otherwise it starts a private
# node on 127.0.0.1:$(DEMO_AMQP_PORT)/$(DEMO_HTTP_PORT) (kept running; `make demo-stop` stops it).
# `devbroker ensure` writes the URL it decided on to $(DEMO_DIR)/url, which the topo commands read.
demo: $(INSTALLED)
	@$(PY) -m topo.devbroker status --url "$$TOPO_URL" >/dev/null || bash .ci/ensure-rabbitmq.sh
	$(PY) -m topo.devbroker ensure --url "$$TOPO_URL" --dir $(DEMO_DIR) \
		--amqp-port $(DEMO_AMQP_PORT) --http-port $(DEMO_HTTP_PORT)
	$(VENV)/bin/topo apply topologies/ --url "$$(cat $(DEMO_DIR)/url)" --yes
	$(VENV)/bin/topo plan topologies/ --url "$$(cat $(DEMO_DIR)/url)"

demo-stop: $(INSTALLED)
	$(PY) -m topo.devbroker stop --dir $(DEMO_DIR)

clean:
	@if [ -x $(PY) ] && [ -f $(DEMO_DIR)/node.json ]; then $(PY) -m topo.devbroker stop --dir $(DEMO_DIR); fi
	rm -rf $(DEMO_DIR) $(LOCK_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
