# The two commands of the README:
#   make run    set up, migrate, seed the demo on first run, serve on http://127.0.0.1:5000
#   make test   set up and run the whole test suite on SQLite and on PostgreSQL
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app survey_app
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgresql setup system-deps db bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

db: setup
	$(FLASK) db upgrade
	$(FLASK) instruments load
	$(FLASK) demo seed --if-empty

run: db
	@echo ""
	@echo "SIPAS đang chạy / is running:  http://$(HOST):$(PORT)/staff/login"
	@if [ -f instance/demo_credentials.txt ]; then echo "Tài khoản demo / demo logins (user / password):"; sed 's/^/  /' instance/demo_credentials.txt; fi
	@echo "Đường dẫn quầy / counter links:  $(FLASK) counters list"
	@echo ""
	$(FLASK) run --host $(HOST) --port $(PORT)

# Debian packages the tests need (headless Chromium for the browser tests;
# PostgreSQL binaries when no server is reachable).  Installed only when missing.
system-deps:
	@bash scripts/system-deps.sh

test: setup system-deps
	$(BIN)/python -m pytest -q --db sqlite $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q --db postgresql $(PYTEST_ARGS)

test-sqlite: setup
	$(BIN)/python -m pytest -q --db sqlite $(PYTEST_ARGS)

test-postgresql: setup
	$(BIN)/python -m pytest -q --db postgresql $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
