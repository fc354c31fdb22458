# topo: developer entry points. `make demo` and `make test` are all a new user needs.
#
#   make test        run the tests (installs rabbitmq-server if missing; each run starts a private node)
#   make test-fast   run only the tests that need no RabbitMQ node (-m 'not broker'): under a minute, no broker
#   make lock        re-resolve the dev/test install to today's newest releases into constraints.txt
#   make lint        ruff + mypy --strict
#   make schema      regenerate the JSON Schema (topo/schemas/topology.schema.json) from topo/schemas/generate.py
#   make demo        apply topologies/ to a private node (or $TOPO_URL's broker), then plan again: no changes
#   make demo-stop   stop the demo's private node (if the demo started one)
#   make clean       stop the demo node, remove caches and .devbroker/ (distclean: also .venv/)
#
# Variables: PYTHON (python3), PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS='-m "not slow"'),
# TOPO_URL (a broker for the demo to use instead of its private node: only when you set it),
# DEMO_DIR (.devbroker), DEMO_AMQP_PORT (5673), DEMO_HTTP_PORT (15673): the private node's.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOPO_CLI := $(VENV)/bin/topo
INSTALLED := $(VENV)/.installed
# Every distribution of the dev/test install, pinned (tests/test_constraints.py checks that none is
# missing), so that a new upstream release cannot turn `make test` red by itself. pyproject.toml keeps
# ranges: users of the package are not pinned. `make lock` refreshes the file.
CONSTRAINTS := constraints.txt
LOCK_VENV := .venv-lock
PYTEST_ARGS ?=
LINT_DIRS := $(wildcard topo devbroker tests benches)

DEMO_DIR := .devbroker
DEMO_AMQP_PORT := 5673
DEMO_HTTP_PORT := 15673
# No TOPO_URL here (no default, no export): the demo must tell a broker the user named from none. One set
# in the environment or on make's command line reaches the recipes through the environment, so that make
# never echoes a password.

.PHONY: help venv lock rabbitmq test test-fast lint schema demo demo-stop clean distclean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

# Rebuilt from scratch (--clear) when either file changes, so that nothing of an older install stays.
$(INSTALLED): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

venv: $(INSTALLED)

# Resolves pyproject.toml's ranges afresh, without constraints, in a throwaway venv, and writes what was
# installed (--all: setuptools too, a dev dependency since tests/test_wheel.py builds the wheel with it;
# not pip, which comes with the venv). Review the diff, run `make test` (which rebuilds .venv from the new
# file), then commit.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	{ echo "# The dev/test install, every distribution pinned: made (and refreshed) by \`make lock\` with $$($(LOCK_VENV)/bin/python --version)."; \
	  echo "# Used by \`make venv\` (and so \`make test\`, \`.ci/run\`) as pip -c; pyproject.toml keeps ranges."; \
	  $(LOCK_VENV)/bin/pip freeze --disable-pip-version-check --exclude-editable --all --exclude pip; } > $(CONSTRAINTS).new
	rm -rf $(LOCK_VENV)
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

rabbitmq:
	bash .ci/ensure-rabbitmq.sh

test: $(INSTALLED) rabbitmq
	$(PY) -m pytest -q $(PYTEST_ARGS)

# tests/conftest.py marks `broker` every test that uses a node fixture; under -m "not broker" starting a
# node fails the test that tries, so this never needs (nor installs) RabbitMQ.
test-fast: $(INSTALLED)
	$(PY) -m pytest -q -m "not broker" $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy

# The generator is the one source of truth; schemas/topology.schema.json (for editors) links to its output.
# tests/test_schema.py fails while the committed file differs from what the generator prints.
schema: $(INSTALLED)
	$(PY) -m topo.schemas.generate > topo/schemas/topology.schema.json.new
	mv topo/schemas/topology.schema.json.new topo/schemas/topology.schema.json

# The demo writes only to a broker the user named: the one at $TOPO_URL when it is set (it must answer);
# otherwise a private node on 127.0.0.1:$(DEMO_AMQP_PORT)/$(DEMO_HTTP_PORT), started if needed and kept
# running (`make demo-stop` stops it). No other broker is asked, not even one on localhost:15672.
# `devbroker ensure` says which broker before anything is written, and writes its URLs to $(DEMO_DIR)/url
# and amqp_url, which the topo commands get as TOPO_URL and TOPO_AMQP_URL. For a private node, the demo
# ends with the `export TOPO_URL=... TOPO_AMQP_URL=...` line that points a shell at it.
demo: $(INSTALLED)
	@[ -n "$$TOPO_URL" ] || bash .ci/ensure-rabbitmq.sh
	$(PY) -m devbroker ensure --dir $(DEMO_DIR) --amqp-port $(DEMO_AMQP_PORT) --http-port $(DEMO_HTTP_PORT)
	@export TOPO_URL="$$(cat $(DEMO_DIR)/url)"; \
	if [ -f $(DEMO_DIR)/amqp_url ]; then export TOPO_AMQP_URL="$$(cat $(DEMO_DIR)/amqp_url)"; fi; \
	echo "$(TOPO_CLI) apply topologies/ --yes" && $(TOPO_CLI) apply topologies/ --yes && \
	echo "$(TOPO_CLI) plan topologies/" && $(TOPO_CLI) plan topologies/
	@[ -n "$$TOPO_URL" ] || { echo; $(PY) -m devbroker env --dir $(DEMO_DIR); }

demo-stop: $(INSTALLED)
	$(PY) -m devbroker stop --dir $(DEMO_DIR)

clean:
	@if [ -x $(PY) ] && [ -f $(DEMO_DIR)/node.json ]; then $(PY) -m devbroker stop --dir $(DEMO_DIR); fi
	rm -rf $(DEMO_DIR) $(LOCK_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
