# Quick start:  make demo   (the whole job on a local sandbox and simulated terminals)
#               make test   (lint + the full test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.installed

.PHONY: venv js test lint audit pytest bench demo build clean simulate

# (Re)install only when the dependency pins change: re-running a target does not reinstall.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hedge-agent needs Python 3.11+")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,demo,build]'
	touch $(STAMP)

venv: $(STAMP)

# The Amplify v6 JavaScript admin client test (tests/js): installed from package-lock.json when Node is
# present; without Node the test is skipped and says so.
$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
	  echo "npm ci in $(JS_DIR) (node $$(node --version))"; \
	  cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
	  echo "Node.js/npm not found: the Amplify JS admin client test (tests/js) will be skipped"; \
	fi

js: $(JS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@$(MAKE) --no-print-directory audit

# Dependency vulnerability audit: warns (never fails) when its database cannot be reached.
audit: $(STAMP)
	@bash .ci/audit

pytest: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint pytest

# Deterministic simulation of the engine (tests/simulation): `make simulate SEEDS=N [START=S] [JOBS=2]` runs
# N seeds and prints a summary; `make simulate SEED=S` replays one seed (its trace and violations).
SEEDS ?= 1000
START ?= 0
JOBS  ?= 2
simulate: $(STAMP)
ifdef SEED
	$(BIN)/python -m tests.simulation.run --seed $(SEED)
else
	$(BIN)/python -m tests.simulation.run --seeds $(SEEDS) --start $(START) --jobs $(JOBS)
endif

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

demo: $(STAMP)
	$(BIN)/hedge-agent demo --duration 60 --report .demo/report.json

build: $(STAMP)
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN hedge_agent.spec
	@du -sh dist/hedge-agent

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache $(JS_DIR)/node_modules
