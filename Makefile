# story-liker — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The suite on every core (pytest-xdist); `make test PARALLEL=` runs it in one process.
PARALLEL ?= -n auto --dist loadgroup

.PHONY: install run test test-pg check format bench demo clean

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

check: $(STAMP)
	$(BIN)/ruff format --check story_liker tests bench
	$(BIN)/ruff check story_liker tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format story_liker tests bench
	$(BIN)/ruff check --fix story_liker tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/python -m bench.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
