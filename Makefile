# A few verbs: run, test, check, bench. Each creates .venv first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test check bench install clean stop-embedded

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

check: $(STAMP)
	$(BIN)/ruff format --check service tests bench
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Every embedded PostgreSQL under .data/ (make run's, the tests', the benchmark's) is stopped first
# (fast shutdown, as `relations serve` does when it ends), so none keeps running on deleted files.
clean: stop-embedded
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

stop-embedded:
	@for file in $$(find .data -name postmaster.pid 2>/dev/null); do \
	    pid=$$(head -n 1 "$$file"); kill -INT "$$pid" 2>/dev/null || continue; \
	    echo "stopping the embedded PostgreSQL of $$(dirname "$$file") (pid $$pid)"; \
	    for i in $$(seq 300); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
	done
