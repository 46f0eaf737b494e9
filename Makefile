# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FLASK := $(BIN)/flask --app wsgi

.PHONY: install run seed test lint format bench bench-quick clean translations

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,postgres]"
	touch $(STAMP)

install: $(STAMP)

seed: $(STAMP)
	$(FLASK) demo init-db
	$(FLASK) loyalty db upgrade
	$(FLASK) loyalty seed-demo
	$(FLASK) loyalty run-job recommender

run: seed
	$(FLASK) run --host 127.0.0.1 --port 5000

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/bandit -q -r loyalty_plugin -c pyproject.toml

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

translations: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ -k _l -k lazy_gettext --no-location --sort-output --project loyalty_plugin -o loyalty_plugin/translations/loyalty.pot .
	$(BIN)/pybabel -q update -D loyalty -i loyalty_plugin/translations/loyalty.pot -d loyalty_plugin/translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel -q compile -D loyalty -d loyalty_plugin/translations

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.run_all

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run_all --quick

clean:
	rm -rf $(VENV) build dist *.egg-info instance .pytest_cache .ruff_cache
