# topo: developer entry points. `make demo` and `make test` are all a new user needs.
#
#   make test        run the tests (installs rabbitmq-server if missing; each run starts a private node)
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
PYTEST_ARGS ?=
LINT_DIRS := $(wildcard topo tests benches)

DEMO_DIR := .devbroker
DEMO_AMQP_PORT := 5673
DEMO_HTTP_PORT := 15673
TOPO_URL ?= http://guest:guest@localhost:15672
# Passed through the environment so that make never echoes a password.
export TOPO_URL

.PHONY: help venv rabbitmq test lint demo demo-stop clean distclean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

venv: $(INSTALLED)

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
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
