# The README's commands. `make up` and `make test` install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up down status verify test test-unit test-integration bench deps venv clean

up: venv  ## run the native stack in the foreground (Ctrl-C stops it)
	$(VENV)/bin/chaoslab up

down:  ## stop a stack started with `chaoslab up --detach`
	$(VENV)/bin/chaoslab down

status:
	$(VENV)/bin/chaoslab status

verify:
	$(VENV)/bin/chaoslab verify

test: venv  ## every test: unit, integration (real PostgreSQL/Redis), drills, compose
	sh chaos/install-deps.sh --test
	$(PY) -m pytest -q

test-unit: venv
	$(PY) -m pytest -q tests/unit

test-integration: venv
	$(PY) -m pytest -q tests/integration

bench: venv  ## throughput and latency figures (prints, asserts nothing)
	$(PY) bench/orders.py

deps:  ## Debian packages (installed when root, else explained)
	sh chaos/install-deps.sh

venv: deps $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .chaoslab .pytest_cache
