# modelsync: the two commands are `make demo` (the main job on the embedded local stack)
# and `make test` (the whole suite). Both create .venv and install what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: browser demo screenshot test lint typecheck openapi sam-validate sam-build bench clean help conformance test-js test-compat

help:
	@echo "make demo   - run the end-to-end tour on the local stack (no AWS account, no Docker)"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - run the benchmarks in bench/ and rewrite bench/RESULTS.md"
	@echo "make openapi - regenerate docs/openapi.yaml from the Score resolver (a test checks it)"
	@echo "make conformance - regenerate the conformance kit in conformance/"
	@echo "make test-js - run the JavaScript scorer's tests (node --test)"
	@echo "make test-compat - the parity suite against the oldest supported scikit-learn (own venv)"
	@echo "make screenshot - docs/report.png: the report of the demo's data (README), in Chromium"

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelsync demo

# docs/report.png (README): `modelsync report` of the data `make demo` saved (the tour runs when there is none)
screenshot: $(STAMP) browser
	$(PY) scripts/report_screenshot.py docs/report.png

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

# Debian's Chromium for the browser tests (skipped with a warning where it cannot be installed, but under CI=true).
browser:
	@bash scripts/install-chromium.sh

test: lint browser
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)
	$(MAKE) test-js

# The exporter against the oldest supported scikit-learn, in its own venv (make test runs the newest).
COMPAT := $(VENV)-compat
COMPAT_PINS := scikit-learn==1.4.* numpy==1.26.* scipy==1.12.* pandas==2.2.*
COMPAT_TESTS ?= tests/parity tests/unit/test_cli_model.py tests/unit/test_conformance_kit.py

$(COMPAT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	printf '%s\n' $(COMPAT_PINS) > $(COMPAT)/constraints.txt
	$(COMPAT)/bin/pip install -q -c $(COMPAT)/constraints.txt -e '.[dev]'
	touch $@

test-compat: $(COMPAT)/.installed
	$(COMPAT)/bin/python -c "import sklearn; print('scikit-learn', sklearn.__version__)"
	$(COMPAT)/bin/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider $(COMPAT_TESTS) $(PYTEST_ARGS)

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
	rm -rf $(VENV) $(VENV)-sam $(VENV)-compat .aws-sam .pytest_cache .mypy_cache .ruff_cache
