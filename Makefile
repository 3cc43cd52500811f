# modelsync: the two commands are `make demo` (the main job on the embedded local stack)
# and `make test` (the whole suite). Both create .venv and install what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck openapi sam-validate sam-build bench clean help conformance test-js

help:
	@echo "make demo   - run the end-to-end tour on the local stack (no AWS account, no Docker)"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - run the benchmarks in bench/ and rewrite bench/RESULTS.md"
	@echo "make openapi - regenerate docs/openapi.yaml from the Score resolver (a test checks it)"
	@echo "make conformance - regenerate the conformance kit in conformance/"
	@echo "make test-js - run the JavaScript scorer's tests (node --test)"

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelsync demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)
	$(MAKE) test-js

# The conformance kit (conformance/): documents, rows and scikit-learn's outputs for every model type.
conformance: $(STAMP)
	$(PY) conformance/generate.py

# The JavaScript scorer against the conformance kit (Node 20+, no npm install needed).
test-js:
	@command -v node >/dev/null 2>&1 || { echo "need node (20+) on PATH"; exit 1; }
	node --test scorer-js/test/

# docs/openapi.yaml is generated from the routes (modelsync/service/http/); tests fail when it is stale.
openapi: $(STAMP)
	$(PY) -m modelsync.service.openapi docs/openapi.yaml

# Needs aws-sam-cli, kept in its own venv: its pins fight with moto's.
$(VENV)-sam/bin/sam:
	$(PYTHON) -m venv $(VENV)-sam
	$(VENV)-sam/bin/pip install -q aws-sam-cli

sam-validate: $(VENV)-sam/bin/sam
	$(VENV)-sam/bin/sam validate --lint

sam-build: $(VENV)-sam/bin/sam
	$(VENV)-sam/bin/sam validate --lint
	$(VENV)-sam/bin/sam build

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) bench/run.py --write bench/RESULTS.md

clean:
	rm -rf $(VENV) $(VENV)-sam .aws-sam .pytest_cache .mypy_cache .ruff_cache
