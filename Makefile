# Two commands for a newcomer: `make run` and `make test`. Nothing but Python 3.11+ and make needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench venv clean migrate demo messages

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

.env: | $(STAMP)
	$(BIN)/python -m eishro.devenv .env

migrate: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo_data

## make run: install, migrate, load demo data, start web + worker + beat (Ctrl-C stops all three)
run: demo
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python -m eishro.runall

## make test: the whole suite on the configured database and broker (SQLite + files by default)
test: $(STAMP) .env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP) .env
	$(BIN)/python -m bench $(BENCH)

messages: $(STAMP)
	$(BIN)/python manage.py makemessages -l ar --ignore=.venv --ignore=var --ignore=tests --ignore=bench && $(BIN)/python manage.py compilemessages -l ar --ignore=.venv

clean:
	rm -rf var .pytest_cache
