# Everything a developer or CI needs, from a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-faults lint typecheck check migrate bench emulator lock clean deploy-check

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@echo "install 1/3: creating the virtualenv in $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "install 2/3: upgrading pip"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "install 3/3: installing the service with its dev tools and the embedded Postgres (about 30 s)"
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "install: done"

install: $(STAMP) ## create .venv and install the service with its dev tools

run: $(STAMP) ## start Postgres (embedded unless DATABASE_URL), migrate, the emulator (unless HUME_API_KEY), serve
	@$(BIN)/python -m app run

test: $(STAMP) ## run the whole suite (TEST_DATABASE_URL, else Docker, else embedded Postgres)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-faults: $(STAMP) ## only the fault-injection tests (forgery, duplicates, kill -9, Postgres outage, fuzzing); also in `test`
	$(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, the import-layer contracts (import-linter) and declared dependencies (deptry)
	$(BIN)/ruff check app tests bench migrations deploy
	$(BIN)/lint-imports
	$(BIN)/deptry app

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

check: lint typecheck test ## lint, typecheck and test, as CI does

migrate: $(STAMP) ## apply migrations to DATABASE_URL (or the embedded Postgres)
	$(BIN)/python -m app migrate

emulator: $(STAMP) ## run the Hume emulator alone on PORT (default 8001)
	$(BIN)/python -m app emulator --port $${PORT:-8001}

bench: $(STAMP) ## benchmarks, as ratios against baselines measured in the same run
	$(BIN)/python -m bench $(BENCH)

deploy-check: $(STAMP) ## build the image, run compose --profile emulator on a real Docker engine, submit a job, tear down
	$(BIN)/python deploy/check.py

lock: $(STAMP) ## pin the main dependencies with hashes into requirements.lock (what the container image installs)
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --python-platform linux \
		--no-header --quiet --output-file requirements.lock

clean: ## remove the virtualenv and caches (keeps .data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
