# make demo: the main job (50,000 jobs through 4 pollers); make test: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test test-unit lint bench bench-cluster bench-dispatch bench-service bench-rq-scheduler soak clean

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

# jobs/s through `rache dispatch --call`, 1 and 3 processes, against the Dispatcher itself
# (~2 min): benchmarks/results/service.md.
bench-service: $(VENV)/.installed
	$(PY) -m benchmarks.service $(BENCH_ARGS)

# rache.rq against rq-scheduler 0.14 on one Redis (~3 min): enqueue_at calls/s, jobs/s moved
# into rq by one mover and by 3 processes, lag. Results in benchmarks/results/rq_scheduler.md.
bench-rq-scheduler: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks.rq_scheduler $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
