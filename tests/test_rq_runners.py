"""rache.rq's runners as real processes: 3 at once, real ``rq worker``s, and a kill -9.

Every job is scheduled through ``rache.rq.Scheduler``, moved into rq by ``python -m
rache.rq`` processes (no lock between them), and run by ``rq worker`` processes, each run
recorded in Redis by the task (``tests.support.rq_tasks.record``): each job must run exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, List

import pytest

from rache.rq import Scheduler
from tests.support import harness
from tests.support.rq_tasks import RAN

ROOT = Path(__file__).resolve().parent.parent
TASK = "tests.support.rq_tasks.record"
RQ = os.path.join(os.path.dirname(sys.executable), "rq")


def env(server: harness.RedisServer, **more: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": server.url, **more}


def runner(server: harness.RedisServer, *options: str, **more: str) -> subprocess.Popen[str]:
    """A ``python -m rache.rq`` process (it logs its counts to stderr when it stops)."""
    command = [sys.executable, "-m", "rache.rq", "--interval", "1", *options]
    return subprocess.Popen(
        command, cwd=ROOT, env=env(server, **more), stderr=subprocess.PIPE, text=True
    )


def worker(server: harness.RedisServer) -> subprocess.Popen[str]:
    """A real ``rq worker`` (non-forking, so that it keeps up) on the default queue."""
    command = [RQ, "worker", "-w", "rq.worker.SimpleWorker", "--url", server.url, "default"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env(server),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(raw: Any, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while raw.llen(RAN) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(processes: List[subprocess.Popen[str]]) -> List[str]:
    """SIGTERM each process, wait for it; their stderr."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    errors = []
    for process in processes:
        _, err = process.communicate(timeout=30)
        errors.append(err)
    return errors


@pytest.mark.slow
def test_three_runners_and_two_workers_run_each_job_exactly_once(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    now = datetime.now(timezone.utc)
    rng = random.Random(7)
    tags = [f"job-{n}" for n in range(600)]
    for tag in tags:  # due from now to 3 s on, in the runners' and workers' presence
        scheduler.enqueue_at(now + timedelta(seconds=rng.uniform(0.5, 3.0)), TASK, tag)
    scheduler.schedule(now + timedelta(seconds=0.5), TASK, args=["every"], interval=1, repeat=3)
    runners = [runner(solo) for _ in range(3)]
    workers = [worker(solo) for _ in range(2)]
    try:
        wait_for(solo_raw, len(tags) + 3, timeout=30)
        time.sleep(1.2)  # a second more: no job comes twice, no repeat comes a 4th time
    finally:
        logs = stop(runners)
        stop(workers)
    ran = Counter(tag.decode() for tag in solo_raw.lrange(RAN, 0, -1))
    assert ran == Counter({**{tag: 1 for tag in tags}, "every": 3})
    assert scheduler.count() == 0
    handled = [int(log.rsplit(" claimed, ", 1)[1].split(" handled")[0]) for log in logs]
    assert sum(handled) == len(tags) + 3, logs
    print("jobs moved by each runner:", handled)


@pytest.mark.slow
def test_a_runner_killed_mid_batch_loses_nothing_and_nothing_runs_twice(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    tags = [f"job-{n}" for n in range(300)]
    for tag in tags:
        scheduler.enqueue_at(datetime(2020, 1, 1), TASK, tag)
    # The first runner moves a job each 10 ms; it is killed once it moved 30.
    doomed = runner(
        solo,
        "--lease",
        "4",
        "--queue-class",
        "tests.support.rq_tasks.SlowQueue",
        RQ_TASKS_DELAY="0.01",
    )
    deadline = time.monotonic() + 30
    while solo_raw.llen("rq:queue:default") < 30 and time.monotonic() < deadline:
        time.sleep(0.005)
    doomed.kill()
    doomed.communicate()
    in_rq = solo_raw.llen("rq:queue:default")
    assert 30 <= in_rq < len(tags)  # killed mid-batch: the rest of its batch is claimed
    assert scheduler.count(until=datetime.now(timezone.utc)) == 0  # ... and not due yet
    others = [runner(solo, "--lease", "4") for _ in range(2)]
    workers = [worker(solo)]
    try:
        wait_for(solo_raw, len(tags), timeout=30)
        time.sleep(0.5)
    finally:
        stop(others)
        stop(workers)
    ran = Counter(tag.decode() for tag in solo_raw.lrange(RAN, 0, -1))
    assert ran == Counter(tags)
    assert scheduler.count() == 0


def rache_dispatch(server: harness.RedisServer, *options: str) -> subprocess.Popen[str]:
    """A ``rache dispatch --rq-scheduler`` process on rache.rq's schedule."""
    command = [sys.executable, "-m", "rache", "dispatch", "--rq-scheduler", "--url", server.url]
    command += ["--prefix", "rache:rq:", *options]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_rache_dispatch_rq_scheduler_moves_each_job_once_into_rq(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    now = datetime.now(timezone.utc)
    tags = [f"job-{n}" for n in range(200)]
    for n, tag in enumerate(tags):
        scheduler.enqueue_at(now + timedelta(seconds=n % 20 / 10), TASK, tag)
    scheduler.schedule(now, TASK, args=["every"], interval=1, repeat=2)
    processes = [rache_dispatch(solo, "--reschedule-in", "30s") for _ in range(2)]
    workers = [worker(solo)]
    try:
        wait_for(solo_raw, len(tags) + 2, timeout=30)
        time.sleep(0.5)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30) for process in processes]
        stop(workers)
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert "rq-scheduler's jobs (rache.rq) into their rq queues" in outputs[0][1]
    ran = Counter(tag.decode() for tag in solo_raw.lrange(RAN, 0, -1))
    assert ran == Counter({**{tag: 1 for tag in tags}, "every": 2})
    assert scheduler.count() == 0


def test_rache_dispatch_rq_scheduler_refuses_a_task(solo: harness.RedisServer) -> None:
    process = rache_dispatch(solo, "--task", "tests.support.rq_tasks.record")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "--task goes with --rq, --celery or --arq, not --rq-scheduler" in err
