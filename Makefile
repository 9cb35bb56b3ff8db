# Parley — `make run` starts the whole platform on the embedded default; `make test` runs the full suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install system-deps run migrate test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Debian packages the tests drive for real (Chromium for the browser tests, ffmpeg/ffprobe for media checks).
system-deps:
	bash scripts/system-deps.sh

migrate: install
	$(PY) manage.py migrate --noinput

# Links printed by the demo commands follow HOST and PORT unless PARLEY_PUBLIC_URL is set.
run: export PARLEY_PUBLIC_URL ?= http://$(HOST):$(PORT)
run: migrate
	$(PY) manage.py demo_setup
	$(PY) manage.py demo_operator
	DEBUG=$${DEBUG:-1} PARLEY_EMBEDDED_SWEEPS=1 $(VENV)/bin/daphne -b $(HOST) -p $(PORT) parley.asgi:application

test: install system-deps
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/compositor.py

clean:
	rm -rf $(VENV) .pytest_cache
