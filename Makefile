# callmesh — every target goes through the project-local uv (installed by `make setup`).
SHELL := /bin/bash
UV := .tools/uv/bin/uv
RUN := UV_PYTHON_DOWNLOADS=never $(UV) run --frozen --all-packages
BUF := .tools/buf/node_modules/.bin/buf
PYTEST_ARGS ?=

.PHONY: help setup run test test-only lint type proto proto-check proto-lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## install uv, sync the environment, build FerretDB into bin/, install buf
	@bash scripts/setup.sh

run: setup ## start the whole platform (NATS, FerretDB, every service): callmesh up
	$(RUN) callmesh up $(ARGS)

test: setup ## everything: schema checks, lint, types, all tests
	$(MAKE) --no-print-directory proto-check proto-lint lint type test-only

test-only: ## the tests alone (no setup); PYTEST_ARGS passes options
	$(RUN) pytest $(PYTEST_ARGS)

lint: ## ruff check and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

type: ## mypy --strict over every package
	$(RUN) mypy libs/core proto/callmesh cli services freeswitch/emulator bench tests

proto: ## regenerate Python code and stubs from proto/
	$(RUN) python proto/codegen.py

proto-check: ## fail when the committed generated code drifted from the .proto files
	$(RUN) python proto/codegen.py --check

proto-lint: ## buf lint, and buf breaking against the last commit on main
	cd proto && ../$(BUF) lint
	@bash scripts/buf-breaking.sh

bench: setup ## run the benchmarks (tables on stdout, JSON in bench/results/)
	$(RUN) python bench/bus_throughput.py
	$(RUN) python bench/bridge.py
	$(RUN) python bench/quota.py
	$(RUN) python bench/admin_api.py  # needs wrk (Debian package)
	$(RUN) python bench/esl_codec.py
	$(RUN) python bench/fsemu_calls.py
	$(RUN) python bench/cti_link.py

clean: ## remove caches and build products (keeps .venv and bin/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build bench/results
