# docextract: `make` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.DEFAULT_GOAL := help
.PHONY: help install dev serve test test-ci lint format typecheck check migrate clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

install: $(VENV)/bin/python ## Install the service (core only, no torch)
	$(VENV)/bin/pip install -e .

dev: $(VENV)/bin/python ## Install the service with test and lint tools
	$(VENV)/bin/pip install -e '.[dev]'

serve: install ## Start the API on the embedded SQLite database (./data)
	$(VENV)/bin/docextract serve

migrate: ## Apply database migrations
	$(VENV)/bin/docextract db upgrade

test: dev ## Run the tests (PostgreSQL ones need DOCEXTRACT_TEST_DATABASE_URL)
	$(VENV)/bin/pytest

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
