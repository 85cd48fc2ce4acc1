# docextract: `make` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
DEV_LOCK := requirements-dev.lock
LOCK := requirements.lock
# The test command, the same in CI (.ci/run): every test, slow ones included.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install dev lock serve test test-fast test-ci lint format typecheck check migrate clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

install: $(VENV)/bin/python ## Install the service (core only, no torch)
	$(VENV)/bin/pip install -e .

dev: $(VENV)/bin/python ## Install what lint, types and tests need, pinned (extras dev, ocr, ocr-engines, local)
	$(VENV)/bin/pip install -r $(DEV_LOCK)
	$(VENV)/bin/pip install --no-deps -e .
	$(VENV)/bin/pip check  # a dependency added to pyproject.toml but not yet locked: run `make lock`

lock: $(VENV)/bin/python ## Re-pin the locks from pyproject.toml (Python 3.11): the image's, and dev's
	$(VENV)/bin/pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --extra ocr --no-emit-index-url --no-emit-find-links \
	  --output-file $(LOCK) pyproject.toml
	$(VENV)/bin/pip-compile --quiet --strip-extras --extra dev --extra ocr --extra ocr-engines --extra local \
	  --no-emit-index-url --no-emit-find-links --output-file $(DEV_LOCK) pyproject.toml

serve: install ## Start the API on the embedded SQLite database (./data)
	$(VENV)/bin/docextract serve

migrate: ## Apply database migrations
	$(VENV)/bin/docextract db upgrade

test: dev ## Run every test, as CI does (PostgreSQL, Redis: 127.0.0.1 or DOCEXTRACT_TEST_*_URL)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: ## The quick local loop: every test but those marked slow (real OCR, worker processes)
	$(VENV)/bin/pytest $(PYTEST_ARGS) -m 'not slow'

test-ci: ## What CI runs: a fresh venv, services started, lint, types, every test
	bash .ci/run

lint: ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: ## mypy (strict)
	$(VENV)/bin/mypy app tests

check: lint typecheck test ## Lint, type-check and test

clean: ## Remove caches (keeps .venv and data/)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
