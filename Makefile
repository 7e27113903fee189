# Ratchet: `make run` reproduces the pipeline, `make test` runs the whole suite.
# Both create .venv from the hash-locked uv.lock first; only python3 and pip are needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.synced
# dvc.yaml runs `python -m pipeline.<stage>`: that python must be the project's.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv run check test lint format dag push pull clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): uv.lock pyproject.toml requirements-bootstrap.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-bootstrap.txt
	$(UV) sync --locked --quiet
	@touch $@

venv: $(STAMP) ## Create or update .venv from uv.lock

run: $(STAMP) ## Reproduce the pipeline (dvc repro), then show the quality gates
	$(BIN)/dvc repro
	$(BIN)/python -m pipeline.gate

check: $(STAMP) ## Exit 1 unless every quality gate passes (what CI runs)
	$(BIN)/python -m pipeline.gate --check

test: $(STAMP) ## Lint, then the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP) ## Run the pre-commit hooks on every file
	$(BIN)/pre-commit run --all-files

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dag: $(STAMP) ## Draw the pipeline
	$(BIN)/dvc dag

push: $(STAMP) ## Push data and models to the default DVC remote
	$(BIN)/dvc push

pull: $(STAMP) ## Pull data and models from the default DVC remote
	$(BIN)/dvc pull

clean: ## Remove .venv and caches (keeps data, models and the DVC cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache
