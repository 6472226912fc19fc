# Two commands on a fresh machine with only Python 3.11+: `make demo` and `make test`.
# Each creates .venv and installs what it needs (the engine, the three drivers, test tools).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test files run in this many processes (pytest-xdist, one file per process at a time, so a
# file's tests keep their order and fixtures); TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= 2

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml drivers/*/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e ".[test,cli]" -e drivers/sqlite -e drivers/postgres -e drivers/redis
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hitl demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	@$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) hitl-demo.db hitl-demo.db-wal hitl-demo.db-shm
