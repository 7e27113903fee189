# `make run` reproduces the pipeline, `make test` runs the whole suite.
# Both create .venv from the hash-locked uv.lock first; only python3 and pip are needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.synced
# dvc.yaml runs `python -m pipeline.<stage>`: that python must be the project's.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
# Extra `dvc repro` flags (CI: --pull --allow-missing), the revision gates and
# reports compare with (default: gates.baseline in params.yaml), whose gate
# settings judge (GATES_FROM=baseline: the baseline's, as CI does), report flags.
REPRO_FLAGS ?=
BASELINE ?=
GATES_FROM ?= branch
REPORT_FLAGS ?=
# The model registry: GTO tags on the artifact dvc.yaml declares under `artifacts:`.
ARTIFACT ?= model
STAGE ?= prod
VERSION ?=
REV ?= HEAD
# The core module `make mutation` tests alone (params, gate, drift_stats, ...); empty: all of them.
MODULE ?=
# Values a user or a workflow passes reach the commands through the environment,
# quoted by the shell, never pasted into a command line: `make check BASELINE='x;y'`
# runs nothing but the check (which then refuses 'x;y' as a revision name).
# The serving image (Dockerfile): <project>-serve:<VERSION, else the commit>, with the
# model at MODEL_PATH baked in. BASE_IMAGE replaces the Dockerfile's python:3.11-slim.
IMAGE_NAME ?= $(shell sed -n 's/^name = "\(.*\)"$$/\1/p' pyproject.toml | head -n 1)-serve
MODEL_PATH ?= models/model.skops
BASE_IMAGE ?=
IMAGE_VERSION = $(or $(VERSION),$(shell git rev-parse --short HEAD 2>/dev/null),dev)
# Podman reads the repository's settings (runc, ulimits, slirp4netns) unless told otherwise.
CONTAINERS_CONF ?= $(abspath containers/containers.conf)
# Make-level values to pass on: SERVE_ARGS for `make serve`, INPUT/OUTPUT for `make predict`,
# MONITORING_ROWS for `make monitoring` (replay only the batch's first N rows; empty: all of them).
SERVE_ARGS ?=
INPUT ?=
OUTPUT ?=
MONITORING_ROWS ?=
export BASELINE GATES_FROM ARTIFACT STAGE VERSION REV MODULE IMAGE_NAME MODEL_PATH BASE_IMAGE IMAGE_VERSION CONTAINERS_CONF INPUT OUTPUT MONITORING_ROWS
gate_flags = $${BASELINE:+--baseline "$$BASELINE"} --gates-from "$$GATES_FROM"
TEST_NEEDS := $(STAMP)

.PHONY: help venv conflicts run check report test mutation lint format dag push pull register promote rollback predict serve monitoring image image-test clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): uv.lock pyproject.toml requirements-bootstrap.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-bootstrap.txt
	$(UV) sync --locked --all-extras --quiet --compile-bytecode
	@touch $@

venv: $(STAMP) ## Create or update .venv from uv.lock

# [extra test tiers]
EVIDENTLY_VENV := .venv-evidently
MLSERVER_VENV := .venv-mlserver
TEST_NEEDS += $(EVIDENTLY_VENV)/.synced $(MLSERVER_VENV)/.synced
TEST_IMAGE := yes
.PHONY: evidently-env benchmark mlserver-env benchmark-serving benchmark-batch

# Evidently 0.7.23 does not import with pandas 3, so it gets its own environment,
# used only by the drift parity test and the benchmark.
$(EVIDENTLY_VENV)/.synced: benchmarks/evidently-requirements.txt | $(STAMP)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(EVIDENTLY_VENV)
	$(UV) pip sync --quiet --compile-bytecode --require-hashes --python $(EVIDENTLY_VENV)/bin/python $<
	@touch $@

evidently-env: $(EVIDENTLY_VENV)/.synced ## Create .venv-evidently (pandas < 3) for parity tests and benchmarks

benchmark: $(STAMP) $(EVIDENTLY_VENV)/.synced ## Drift on 1M rows against Evidently (see docs/benchmarks.md)
	$(BIN)/python benchmarks/drift_benchmark.py --rows 1000000

# MLServer pins an older FastAPI than the serve extra's, so its scikit-learn runtime,
# the serving benchmark's peer, gets its own environment too.
$(MLSERVER_VENV)/.synced: benchmarks/mlserver-requirements.txt | $(STAMP)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(MLSERVER_VENV)
	$(UV) pip sync --quiet --compile-bytecode --require-hashes --python $(MLSERVER_VENV)/bin/python $<
	@touch $@

mlserver-env: $(MLSERVER_VENV)/.synced ## Create .venv-mlserver (MLServer + its sklearn runtime) for the serving benchmark

benchmark-serving: $(STAMP) $(MLSERVER_VENV)/.synced ## HTTP serving against MLServer and the predict_proba floor (see docs/benchmarks.md)
	$(BIN)/python benchmarks/serving_benchmark.py

benchmark-batch: $(STAMP) ## Batch scoring at 1M and 10M rows against bare predict_proba (see docs/benchmarks.md)
	$(BIN)/python benchmarks/batch_benchmark.py --rows 1000000 10000000
# [/extra test tiers]

conflicts: ## Fail when a template update (copier update) left conflict markers or .rej files to resolve
	@git rev-parse --git-dir >/dev/null 2>&1 || exit 0; \
	marked=$$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r grep -IlE '^(<{7}|>{7}) ' -- 2>/dev/null); \
	rejected=$$(git ls-files --others --exclude-standard -- '*.rej'); \
	if [ -n "$$marked$$rejected" ]; then \
	  echo "error: copier update left conflicts to resolve (keep what you want, delete the <<<<<<< ======= >>>>>>> lines, git add the file; apply and delete each .rej):" >&2; \
	  for file in $$marked $$rejected; do echo "  $$file" >&2; done; \
	  exit 1; \
	fi

run: conflicts $(STAMP) ## Reproduce the pipeline (dvc repro), then judge the quality gates
	@git rev-parse -q --verify HEAD >/dev/null || { echo "error: commit once first (git add -A && git commit): DVC and DVCLive need a commit" >&2; exit 1; }
	$(BIN)/python -m pipeline.preload -- $(BIN)/dvc repro $(REPRO_FLAGS)
	$(BIN)/python -m pipeline.gate $(gate_flags)

check: $(STAMP) ## Exit 1 unless every quality gate passes [BASELINE=main] [GATES_FROM=baseline] (what CI runs)
	$(BIN)/python -m pipeline.gate --check $(gate_flags)

report: $(STAMP) ## Write the PR report of the last verdict to report/report.md (plots in report/report-plots/)
	$(BIN)/python -m pipeline.report -o report/report.md $(REPORT_FLAGS)

test: conflicts $(TEST_NEEDS) ## Lint, then the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest
	$(if $(TEST_IMAGE),$(BIN)/pytest -m image tests/image)

# Mutation testing, outside `make test` (it takes tens of minutes): mutmut changes the core modules
# listed under [tool.mutmut] in pyproject.toml one small edit at a time and runs the unit tests that
# reach each edit; a test must fail for every edit that changes behaviour. It starts afresh each time,
# since mutmut's cache does not notice edited tests.
mutation: $(STAMP) ## Mutation-test the core modules and print each one's score [MODULE=params] (slow)
	rm -rf mutants
	$(BIN)/mutmut run $${MODULE:+"pipeline.$$MODULE.*"}
	$(BIN)/python tests/mutation_scores.py $$MODULE

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

register: $(STAMP) ## Tag a model version (GTO) [VERSION=v1.2.0, default the next patch] [REV=HEAD]
	$(BIN)/python -m pipeline.registry declared "$$ARTIFACT" --rev "$$REV"
	$(BIN)/gto register "$$ARTIFACT" "$$REV" $${VERSION:+--version "$$VERSION"}
	@echo "Deploys fetch the model from the DVC remote: push it (make push) before the tag."

promote: $(STAMP) ## Assign a stage to a registered version: VERSION=v1.2.0 [STAGE=prod]
	@test -n "$$VERSION" || { echo "usage: make promote VERSION=v1.2.0 [STAGE=prod]" >&2; exit 2; }
	$(BIN)/gto assign "$$ARTIFACT" --version "$$VERSION" --stage "$$STAGE"
	@echo "Pushing a prod tag runs the deploy workflow."

rollback: $(STAMP) ## Re-assign prod to the version it had before [or VERSION=v1.1.0] [STAGE=prod]
	@version="$$VERSION"; \
	if [ -z "$$version" ]; then version=$$($(BIN)/python -m pipeline.registry rollback-target "$$ARTIFACT" --stage "$$STAGE") || exit 1; fi; \
	echo "Rolling $$ARTIFACT $$STAGE back to $$version"; \
	$(BIN)/gto assign "$$ARTIFACT" --version "$$version" --stage "$$STAGE" --force -m "Roll back $$ARTIFACT $$STAGE to $$version"
	@echo "Pushing a prod tag runs the deploy workflow."

predict: $(STAMP) ## Score a file in batches: INPUT=batch.csv OUTPUT=scored.parquet [STAGE=prod to use the registry]
	@test -n "$$INPUT" -a -n "$$OUTPUT" || { echo "usage: make predict INPUT=batch.csv OUTPUT=scored.parquet" >&2; exit 2; }
	$(BIN)/python -m pipeline.predict "$$INPUT" -o "$$OUTPUT"

serve: $(STAMP) ## Serve the model over HTTP on 127.0.0.1:8000 (params.yaml's serve section) [SERVE_ARGS="--stage prod"]
	$(BIN)/python -m pipeline.serve $(SERVE_ARGS)

monitoring: $(STAMP) ## Serve the model, replay the current batch to it, then monitor its logs [MONITORING_ROWS=N]
	@set -e; logs=data/monitoring/logs; mkdir -p "$$logs"; rm -f "$$logs/demo.jsonl"; \
	port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(BIN)/python -m pipeline.serve --port "$$port" --prediction-log "$$logs/demo.jsonl" & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null || true' EXIT; \
	$(BIN)/python -m pipeline.replay "$$($(BIN)/python -c 'from pipeline.params import load_params; print(load_params().paths.validated_current)')" \
		--url "http://127.0.0.1:$$port" --wait 60 --labels-out data/monitoring/labels.csv --labels-if-any \
		$${MONITORING_ROWS:+--max-rows "$$MONITORING_ROWS"}; \
	kill $$server; wait $$server 2>/dev/null || true; trap - EXIT; \
	labels=; [ ! -f data/monitoring/labels.csv ] || labels="--labels data/monitoring/labels.csv"; \
	status=0; $(BIN)/python -m pipeline.monitor "$$logs" $$labels || status=$$?; \
	[ "$$status" -eq 0 ] || [ "$$status" -eq 3 ] || exit "$$status"

image: ## Build the serving image with podman: <name>-serve:<VERSION or commit> [MODEL_PATH=...] [BASE_IMAGE=...]
	@test -f "$$MODEL_PATH" || { echo "error: no model at $$MODEL_PATH: make run (or make pull) first" >&2; exit 1; }
	podman build --isolation chroot --format docker $${BASE_IMAGE:+--build-arg "BASE_IMAGE=$$BASE_IMAGE"} \
		--build-arg "MODEL_PATH=$$MODEL_PATH" --build-arg "MODEL_VERSION=$$IMAGE_VERSION" --tag "$$IMAGE_NAME:$$IMAGE_VERSION" .

image-test: $(STAMP) ## Build the image (on containers/base-image.sh's Debian unless BASE_IMAGE), then smoke-test it
	base="$$BASE_IMAGE"; [ -n "$$base" ] || base=$$(containers/base-image.sh) || exit 1; \
	$(MAKE) --no-print-directory image BASE_IMAGE="$$base"
	SERVE_IMAGE="$$IMAGE_NAME:$$IMAGE_VERSION" MODEL_VERSION="$$IMAGE_VERSION" $(BIN)/pytest -m image tests/image

clean: ## Remove the virtual environments and caches (keeps data, models and the DVC cache)
	rm -rf $(VENV) .venv-* .pytest_cache .ruff_cache mutants
