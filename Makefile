# make demo: the main job (50,000 jobs through 4 pollers); make test: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test test-unit lint bench bench-cluster bench-dispatch bench-web bench-beat screenshots soak soak-beat faults-baseline clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	# arq, for the adapters' tests: it pins redis<6, so it goes beside the redis-py above
	$(PY) -m pip install --quiet --no-deps 'arq>=0.25'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py $(DEMO_ARGS)

# The unit tier first (the core without I/O, canned replies: seconds), then the rest on
# real servers.
test: test-unit
	$(PY) -m pytest --ignore=tests/unit $(PYTEST_ARGS)

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check rache tests examples benchmarks
	$(VENV)/bin/ruff format --check rache tests examples benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The full-size concurrency soak: make soak SOAK_ARGS="--jobs 50000 [--faults]"
soak: $(VENV)/.installed
	$(PY) -m tests.soak $(SOAK_ARGS)

# A check of the lost-reply tests (issue #14), not of rache: each dropped reply is delivered
# after the contending move instead, as a server that answers a retried call with its first
# run's reply would have it seen. Every test there must pass so, on any code: one that fails
# expects something other than exactly once.
faults-baseline: $(VENV)/.installed
	RACHE_FAULTS_DELIVER=1 $(PY) -m pytest -q tests/test_lost_replies.py $(PYTEST_ARGS)

# The benchmarks (not part of make test): results in benchmarks/results/.
bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
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
	$(PY) -m tests.screenshots

# Three rache beats, one killed or stopped and restarted every few seconds, every occurrence
# counted at the broker: make soak-beat SOAK_ARGS="--minutes 10"
soak-beat: $(VENV)/.installed
	$(PY) -m tests.soak_beat $(SOAK_ARGS)

# Celery beat (~5 min): three rache beats vs three Celery default beats vs three
# celery-redbeat beats: messages per occurrence, the gap after a SIGKILL, Redis commands per
# idle minute, lag of 1,000 entries every 10 s. Results in benchmarks/results/beat.md.
bench-beat: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks.beat $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
