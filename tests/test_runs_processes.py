"""Runs under real concurrency: pollers claiming (and putting back) while workers finish runs.

Several poller processes claim one schedule, each sometimes stopping part-way through a
batch (the rest goes back); worker processes take the occurrences handed out and call
finish_run on them (some failing, some retrying first, some twice). Every job must end with
exactly one run: the occurrence handed out, with the outcome its worker gave, and no run of
a hand-out that was put back.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from typing import Any, Dict, List

import pytest
import redis

from rache import Scheduler
from tests.support import harness

JOBS = 600
POLLERS = 3
WORKERS = 2


def _poll(url: str, seed: int, out: Any) -> None:
    rng = random.Random(seed)
    sched = Scheduler(redis.Redis.from_url(url), "rache:", name=f"poller-{seed}")
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 1.0:
        jobs = sched.pending_jobs(limit=rng.choice([5, 20, 50]))
        take = rng.choice([None, 1, 3])  # None: the whole call; else stop early, put back
        got = 0
        for job in jobs:
            out.put((job["id"], job.occurrence_id, f"poller-{seed}"))
            got += 1
            if take is not None and got >= take:
                break
        jobs.close()
        if got:
            idle_since = time.monotonic()
    out.put(None)


def _work(url: str, seed: int, jobs: Any, done: Any) -> None:
    rng = random.Random(seed)
    sched = Scheduler(redis.Redis.from_url(url), "rache:")
    outcomes: Dict[str, Any] = {}
    while (item := jobs.get()) is not None:
        _, occurrence, _ = item
        outcome = rng.choice(["ok", "fail", "retry-ok", "retry-fail"])
        if outcome.startswith("retry"):
            assert sched.finish_run(occurrence, "flaky", retrying=True)
        error = None if outcome.endswith("ok") else RuntimeError("broken")
        assert sched.finish_run(occurrence, error)
        if rng.random() < 0.3:  # the same outcome again: changes nothing
            assert sched.finish_run(occurrence, error)
        outcomes[occurrence] = outcome
    done.put(outcomes)


@pytest.mark.slow
def test_pollers_and_workers_leave_exactly_one_run_per_hand_out(
    server: harness.RedisServer, raw: Any
) -> None:
    setup = Scheduler(raw, "rache:")
    ids = [f"job-{i:04}" for i in range(JOBS)]
    setup.schedule_jobs([(job_id, -1, {"n": i}) for i, job_id in enumerate(ids)])
    ctx = multiprocessing.get_context("spawn")
    handed, jobs, done = ctx.Queue(), ctx.Queue(), ctx.Queue()
    pollers = [ctx.Process(target=_poll, args=(server.url, i, handed)) for i in range(POLLERS)]
    workers = [
        ctx.Process(target=_work, args=(server.url, 100 + i, jobs, done)) for i in range(WORKERS)
    ]
    for process in pollers + workers:
        process.start()
    hand_outs: List[Any] = []
    finished = 0
    while finished < POLLERS:
        item = handed.get(timeout=120)
        if item is None:
            finished += 1
            continue
        hand_outs.append(item)
        jobs.put(item)
    for _ in workers:
        jobs.put(None)
    outcomes: Dict[str, Any] = {}
    for _ in workers:
        outcomes.update(done.get(timeout=120))
    for process in pollers + workers:
        process.join(timeout=30)
        assert process.exitcode == 0

    by_job = {job_id: occurrence for job_id, occurrence, _ in hand_outs}
    assert len(hand_outs) == JOBS and sorted(by_job) == ids  # each handed out once
    expected_state = {"ok": "succeeded", "retry-ok": "succeeded"}
    for job_id, occurrence, poller in hand_outs:
        runs = setup.runs(job_id)
        assert [run.occurrence_id for run in runs] == [occurrence], job_id
        (run,) = runs
        outcome = outcomes[occurrence]
        assert run.state == expected_state.get(outcome, "failed"), (job_id, outcome)
        assert run.claimed_by == poller
        assert run.attempts == (1 if outcome.startswith("retry") else 0)
    failed = sum(1 for outcome in outcomes.values() if not outcome.endswith("ok"))
    assert len(setup.failures()) == min(failed, 100)
