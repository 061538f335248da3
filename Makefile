# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test files run in parallel; most tests wait on servers and sockets, not on the CPU.
TEST_WORKERS ?= 3

.PHONY: run test bench lint fmt install lock clean

$(BIN)/uv:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==0.13.8

# Bytecode compiled once at install: every later start (the CLI, a server, a test's server)
# skips compiling, also where PYTHONDONTWRITEBYTECODE keeps Python from caching it.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	MESHGATE_DEMO=$${MESHGATE_DEMO:-true} $(BIN)/meshgate serve

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# requirements.lock: what `make install` puts in the dev venv (with the dev extra);
# requirements-runtime.lock: the production image's (runtime dependencies only).
lock: | $(BIN)/uv
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile -q pyproject.toml --python-version 3.11 -o requirements-runtime.lock

clean:
	rm -rf $(VENV) data
