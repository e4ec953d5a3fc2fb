# Entry points named in the README. Each target creates .venv and installs what it needs,
# so a fresh machine with only Python 3.11 (and its venv module) and make can run them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
EMULATOR_PORT ?= 8700

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "Python 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.0.1

$(VENV)/.runtime: requirements.txt requirements.lock requirements-assets.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -c requirements.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-assets.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-dev.lock $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt -c requirements-dev.lock
	touch $@

## run: the whole system on the embedded default (SQLite, no Redis) with the emulator and demo accounts
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createcachetable
	$(BIN)/python manage.py seed_demo
	@echo "Open http://127.0.0.1:$(PORT)/admin/ (Ctrl-C stops everything)"
	PORT=$(PORT) EMULATOR_PORT=$(EMULATOR_PORT) EMULATOR_URL=http://127.0.0.1:$(EMULATOR_PORT) \
		$(BIN)/honcho -f Procfile.embedded start

## test: the test suite (uses DATABASE_URL / REDIS_URL when set, otherwise SQLite and local fallbacks)
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/mypy .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles
