# The two set-up commands: `make train` and `make test`. Both create .venv and install dnajax into it first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/default.py
WORKDIR ?= runs/default
ARGS ?=

.PHONY: install train test clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/dnajax train --config $(CONFIG) --workdir $(WORKDIR) $(ARGS)

# One pytest-xdist worker per logical CPU; the tests marked slow are handed out first, one at a time (conftest.py).
# TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= logical
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist load --maxschedchunk 1 --durations=15 tests $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
