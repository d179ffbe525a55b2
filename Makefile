# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One variable moves every port of `make run` (web, the simulator's AMI on +38, FastAGI on +73).
DEMO_PORT_BASE ?= 8000
WEB_BIND ?= 127.0.0.1:$(DEMO_PORT_BASE)
RUN_VAR_DIR := $(or $(VAR_DIR),var)
# The Procfile names gunicorn and celery: they come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run run-env test lint bench clean

$(VENV)/.base-installed: requirements/base.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.base-installed requirements/dev.txt
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

run: export DEBUG ?= 1
run: export WEB_BIND := $(WEB_BIND)
run: export DEMO_PORT_BASE := $(DEMO_PORT_BASE)
run: $(VENV)/.base-installed run-env
	./scripts/system-deps run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data
	@echo
	@echo "Starting web, worker, beat, pbx and the PBX simulator. Open http://$(WEB_BIND)/ (admin: http://$(WEB_BIND)/admin/)."
	@echo
	$(VENV)/bin/honcho start -f Procfile.demo

# The README's commands typed in another terminal (`manage.py call 5551001`) read make run's
# DEBUG and DEMO_PORT_BASE from this file (config.env.load_make_run_env).
run-env: export DEBUG ?= 1
run-env:
	@mkdir -p $(RUN_VAR_DIR)
	@printf '# Written by make run for the manage.py commands run beside it; the environment wins,\n# and a SECRET_KEY in the environment (a deployment) ignores this file.\nDEBUG=%s\nDEMO_PORT_BASE=%s\n' "$$DEBUG" "$(DEMO_PORT_BASE)" >$(RUN_VAR_DIR)/make-run.env

# Tests run on their own VAR_DIR, so a `make run` beside them keeps its broker and files.
# TEST_WORKERS pytest-xdist processes, each with its own database, VAR_DIR and Redis database
# (tests/conftest.py): more than the cores pays, most of the suite's time being waits on a
# simulated PBX or a child process; at 6 on 2 cores the end-to-end tests' simulators starved and
# timed out now and then. Tests are handed out one at a time in collection order, the ones marked long first
# (tests/conftest.py), so no worker is left with a long one at the end.
TEST_WORKERS ?= 4
test: export VAR_DIR := $(CURDIR)/var/test
test: export DEBUG ?= 1
test: $(VENV)/.dev-installed
	./scripts/system-deps test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist load --maxschedchunk 1

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: export VAR_DIR := $(CURDIR)/var/bench
bench: export DEBUG ?= 1
bench: export BENCH_QUICK ?= 1
bench: $(VENV)/.dev-installed
	@for script in bench/*_bench.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) var
