"""overlap='skip' under real concurrency: 4 poller processes, worker processes, SIGKILLs.

Pollers claim in tight loops and hand each occurrence to workers (a queue); workers run it
for a random time and call finish_run. Pollers are SIGKILLed now and then (a fresh one takes
each one's place), some right after a claim, before handing anything on. Checked on the
runs recorded and on what the workers saw: no two runs of one job ever ran at once (each
started after the previous one finished, or passed its run_timeout), and no occurrence came
out twice.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from typing import Any, Dict, List, Tuple

import pytest
import redis

from rache import Every, Scheduler
from tests.support import harness

POLLERS = 4
WORKERS = 3
SECONDS = 12.0
RUN_TIMEOUT = 3
#: runs kept per job: all of the test's
HISTORY = 1000
#: (job id, period): every-second and sub-second periods
JOBS = [("fast-a", 0.1), ("fast-b", 0.25), ("half", 0.5), ("second-a", 1), ("second-b", 1)]


def _poll(url: str, seed: int, out: Any) -> None:
    rng = random.Random(seed)
    sched = Scheduler(redis.Redis.from_url(url), "rache:", name=f"poller-{seed}", history=HISTORY)
    while True:
        for job in sched.pending_jobs(limit=rng.choice([1, 2, 10])):
            out.put((job["id"], job.occurrence_id, time.time()))
        time.sleep(rng.random() * 0.01)


def _work(url: str, seed: int, jobs: Any, done: Any) -> None:
    rng = random.Random(seed)
    sched = Scheduler(redis.Redis.from_url(url), "rache:")
    seen: List[Tuple[str, str, float, float]] = []
    while (item := jobs.get()) is not None:
        job_id, occurrence, _ = item
        started = time.time()
        time.sleep(rng.choice([0.0, 0.05, 0.2, 0.6, 1.5]))
        assert sched.finish_run(occurrence, None if rng.random() < 0.7 else "boom")
        seen.append((job_id, occurrence, started, time.time()))
    done.put(seen)


@pytest.mark.slow
def test_skip_never_runs_a_job_twice_at_once(server: harness.RedisServer, raw: Any) -> None:
    setup = Scheduler(raw, "rache:", history=HISTORY)
    now = setup.server_time()
    for job_id, period in JOBS:
        rule = Every(period, overlap="skip", run_timeout=RUN_TIMEOUT)
        setup.schedule_recurring(job_id, rule, start=now)
    ctx = multiprocessing.get_context("spawn")
    handed, jobs, done = ctx.Queue(), ctx.Queue(), ctx.Queue()
    rng = random.Random(7)
    pollers = [ctx.Process(target=_poll, args=(server.url, i, handed)) for i in range(POLLERS)]
    workers = [
        ctx.Process(target=_work, args=(server.url, 100 + i, jobs, done)) for i in range(WORKERS)
    ]
    for process in pollers + workers:
        process.start()
    hand_outs: List[Tuple[str, str, float]] = []
    kills, seed = 0, POLLERS
    end = time.monotonic() + SECONDS
    next_kill = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            item = handed.get(timeout=0.05)
        except Exception:  # queue.Empty
            item = None
        if item is not None:
            hand_outs.append(item)
            if rng.random() >= 0.05:  # else lost, as if its poller died before handing it on
                jobs.put(item)
        if time.monotonic() >= next_kill:
            victim = rng.randrange(len(pollers))
            pollers[victim].kill()  # SIGKILL
            pollers[victim].join(timeout=10)
            pollers[victim] = ctx.Process(target=_poll, args=(server.url, seed, handed))
            pollers[victim].start()
            kills, seed = kills + 1, seed + 1
            next_kill = time.monotonic() + rng.uniform(0.3, 1.5)
    for process in pollers:
        process.kill()  # SIGKILL
        process.join(timeout=10)
    while True:  # what the pollers put before they died
        try:
            item = handed.get(timeout=0.5)
        except Exception:
            break
        hand_outs.append(item)
        jobs.put(item)
    for _ in workers:
        jobs.put(None)
    seen: List[Tuple[str, str, float, float]] = []
    for _ in workers:
        seen += done.get(timeout=120)
    for process in workers:
        process.join(timeout=30)
        assert process.exitcode == 0

    assert kills >= 5
    occurrences = [occurrence for _, occurrence, _ in hand_outs]
    assert len(occurrences) == len(set(occurrences))  # none handed out twice
    by_job: Dict[str, List[Any]] = {}
    for job_id, _ in JOBS:
        runs = list(reversed(setup.runs(job_id)))  # oldest first
        handed_runs = [run for run in runs if run.state != "skipped"]
        assert len(handed_runs) >= 2, job_id
        assert any(run.state == "skipped" and run.error == "overlap" for run in runs), job_id
        # Each run was handed out after the one before it finished, or passed its deadline.
        for before, after in zip(handed_runs, handed_runs[1:]):
            ended = before.finished_at if before.finished_at is not None else before.deadline
            assert after.claimed_at is not None and ended is not None
            assert after.claimed_at >= ended - 0.001, (job_id, before, after)
        by_job[job_id] = handed_runs
    # What the workers saw: no two runs of one job at once (server and local clocks: the
    # same host), and every occurrence they ran recorded once.
    for job_id, _ in JOBS:
        spans = sorted((start, stop) for jid, _, start, stop in seen if jid == job_id)
        for (_, stop), (start, _) in zip(spans, spans[1:]):
            assert start >= stop - 0.01, job_id
