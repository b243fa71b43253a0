# story-liker — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The suite on every core (pytest-xdist); `make test PARALLEL=` runs it in one process.
PARALLEL ?= -n auto --dist loadgroup
# Files with parts generated from the code by cog (docs/docgen.py): `make docs` writes them, `make check` checks them.
COGGED  = README.md docs/reference/commands.md docs/reference/configuration.md \
          docs/reference/exit-codes-and-logs.md docs/reference/metrics.md deploy/story-liker.env.example
COG     = $(BIN)/cog -I docs
LINTED  = story_liker tests bench docs/docgen.py

.PHONY: install run test test-fast test-pg check format docs bench demo sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install and run one story pass (SQLite at data/stories.db; settings from the environment or .env).
run: $(STAMP)
	$(BIN)/story-liker run-stories

## Install and run the whole test suite (no Instagram account, no network, no database server needed).
test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL)

## The unit and integration tests only (no end-to-end or deploy tests): a quick check while working.
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow"

## The same suite, with the store, lock and end-to-end cases also on PostgreSQL.
## Only those: make test-pg PYTEST_ARGS="-m postgres" (what CI runs). Selecting no test at all fails.
test-pg: $(STAMP)
	@export TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}; \
	echo "TEST_DATABASE_URL=$$TEST_DATABASE_URL $(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)"; \
	rc=0; $(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
		echo "make test-pg: pytest selected no test ($(PYTEST_ARGS)): the PostgreSQL cases are gone" \
			"(is the postgres marker still on them?)" >&2; \
	fi; \
	exit $$rc

## Lint, types, and the generated docs still what the code generates.
check: $(STAMP)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(COG) --check --diff --verbosity=1 --check-fail-msg="run make docs and commit the result" $(COGGED)

format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

## Regenerate the command and configuration references, the exit codes, the metrics and the example env file.
docs: $(STAMP)
	$(COG) -r --verbosity=1 $(COGGED)

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/python -m bench.demo

## NOT Instagram: the demo's world on a local double that stays up (127.0.0.1:8765) and a database that stays
## (./sandbox/), to try every command on; prints the settings to use. Ctrl-C stops it. Options: SANDBOX_ARGS="--reset".
sandbox: $(STAMP)
	$(BIN)/python -m bench.sandbox $(SANDBOX_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
