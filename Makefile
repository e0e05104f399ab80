# GPU Alliance Portal. `make run` brings the demo up; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup system-deps system-deps-test messages migrate demo lint totp bench clean

# The demo asks for its guessable provider secrets explicitly (refused in production).
run: export PORTAL_DEMO = 1
run: setup migrate demo  ## Install, migrate, load the demo and serve on http://127.0.0.1:8000
	DEBUG=1 $(PY) manage.py rundemo $(HOST):$(PORT)

test: setup system-deps-test  ## Run the whole test suite (DATABASE_URL etc. from the environment)
	$(PY) -m pytest

setup: $(VENV)/.installed system-deps messages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

# gettext builds the translation catalogues (.po -> .mo).
system-deps:
	@command -v msgfmt >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext; }

# Debian's Chromium drives the browser tests; Noto CJK renders Japanese in it.
system-deps-test: system-deps
	@{ command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; } || \
	  { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

messages:
	$(PY) manage.py compilemessages --ignore '.venv' -v0

migrate:
	$(PY) manage.py migrate -v0

demo:
	$(PY) manage.py seed_demo

totp:  ## Current TOTP code of the demo secretariat account
	@$(PY) manage.py demo_totp

lint:
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

bench:
	$(PY) bench/directory_latency.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
