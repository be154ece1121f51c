# The two commands of the README:
#   make run    set up, migrate, seed the demo on first run, serve on http://$(HOST):$(PORT)
#               (HOST / PORT: make run PORT=8080); prints the links and demo logins on every run
#   make test   set up and run the whole test suite on SQLite and on PostgreSQL
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app survey_app
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=

PIP    := $(BIN)/python -m pip --disable-pip-version-check
# The address served, seen by the app too: printed links and QR codes follow it (PUBLIC_BASE_URL wins).
RUN_ENV := FLASK_RUN_HOST=$(HOST) FLASK_RUN_PORT=$(PORT)

CATALOGUES := survey_app/translations

.PHONY: run test test-sqlite test-postgresql setup setup-dev catalogues messages lint system-deps db bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime dependencies only (what `make run` needs).
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(PIP) install --quiet -r requirements.txt
	touch $@

# Tests and tools (pytest, hypothesis, playwright, ruff, pip-audit): only for `make test`.
$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed catalogues

# The compiled message catalogue (git-ignored .mo), built at set-up, never by the app.
catalogues: $(VENV)/.installed
	$(BIN)/pybabel -q compile -d $(CATALOGUES)

# After adding or changing messages: extract them all (babel.cfg) and merge them into the .po;
# then translate the new empty msgstr entries and run `make setup`.
messages: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k translate --no-location -w 120 -o $(CATALOGUES)/messages.pot .
	$(BIN)/pybabel -q update -i $(CATALOGUES)/messages.pot -d $(CATALOGUES) -w 120 --no-fuzzy-matching --ignore-obsolete

# Test-only JavaScript tools (axe-core, pinned in package-lock.json) for the accessibility checks
# of the browser tests; installed with `npm ci` when node_modules is missing or older than the lock.
node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund --loglevel=error

setup-dev: setup $(VENV)/.dev-installed node_modules/.package-lock.json

lint: setup-dev
	$(BIN)/ruff check .

db: setup
	$(RUN_ENV) $(FLASK) db upgrade
	$(RUN_ENV) $(FLASK) instruments load
	$(RUN_ENV) $(FLASK) demo seed --if-empty

run: db
	@echo ""
	@$(RUN_ENV) $(BIN)/python scripts/links.py
	@echo ""
	$(RUN_ENV) $(FLASK) run

# Debian packages the tests need (headless Chromium for the browser tests;
# PostgreSQL binaries when no server is reachable).  Installed only when missing.
system-deps:
	@bash scripts/system-deps.sh

test: setup-dev system-deps
	$(BIN)/python -m pytest -q --db sqlite $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q --db postgresql $(PYTEST_ARGS)

test-sqlite: setup-dev
	$(BIN)/python -m pytest -q --db sqlite $(PYTEST_ARGS)

test-postgresql: setup-dev
	$(BIN)/python -m pytest -q --db postgresql $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts node_modules
