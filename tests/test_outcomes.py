"""Outcomes and retries: what the dispatchers, ``rache dispatch``, rq and Celery workers report.

Real servers and real processes: a Dispatcher (both shells) whose handler fails N times, the
``rache`` command with a ``--call`` target that does, real ``rq worker`` and Celery worker
processes running tasks that return or raise, and ``rache failures``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from rache import Dispatcher, Every, Job, Scheduler, adapters
from rache.aio import AsyncDispatcher, AsyncScheduler
from tests.support import harness

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "outcomes:"


def wait_for(condition: Callable[[], Any], seconds: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)
    return result


def flaky(fails: Dict[str, int], calls: List[str]) -> Callable[[Job], None]:
    """A handler raising for a job's first ``fails[id]`` calls, recording every call."""
    seen: Counter[str] = Counter()

    def handler(job: Job) -> None:
        job_id = job["id"]
        calls.append(job_id)
        seen[job_id] += 1
        if seen[job_id] <= fails.get(job_id, 0):
            raise ValueError(f"boom {seen[job_id]}")

    return handler


def dispatch(shell: str, url: str, handler: Any, **options: Any) -> Any:
    """A dispatcher of ``shell`` over PREFIX at ``url``, run until idle; the dispatcher."""
    if shell == "sync":
        scheduler = Scheduler(harness_client(url), PREFIX)
        dispatcher = Dispatcher(handler, scheduler=scheduler, wakeup=False, **options)
        dispatcher.run(until_idle=True)
        scheduler.connection.close()
        return dispatcher

    async def main() -> Any:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(url)
        dispatcher = AsyncDispatcher(
            handler, scheduler=AsyncScheduler(client, PREFIX), wakeup=False, **options
        )
        await dispatcher.run(until_idle=True)
        await client.aclose()
        return dispatcher

    return asyncio.run(main())


def harness_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


@pytest.fixture
def sched(solo_raw: Any) -> Scheduler:
    return Scheduler(solo_raw, PREFIX)


@pytest.mark.parametrize("shell", ["sync", "asyncio"])
def test_a_failing_run_is_retried_without_holding_up_the_next_jobs_then_succeeds(
    shell: str, solo: harness.RedisServer, sched: Scheduler
) -> None:
    sched.schedule_jobs([("a", -2), ("b", -1)])
    calls: List[str] = []
    dispatcher = dispatch(shell, solo.url, flaky({"a": 2}, calls), retries=3, retry_backoff=0.05)
    assert calls == ["a", "b", "a", "a"]  # b went out before a's first retry
    assert (dispatcher.handled, dispatcher.retried, dispatcher.failed) == (2, 2, 0)
    assert dispatcher.pending_retries == 0
    [run] = sched.runs("a")
    assert (run.state, run.attempts) == ("succeeded", 2)
    assert sched.runs("b")[0].state == "succeeded"
    assert sched.failures() == []


@pytest.mark.parametrize("shell", ["sync", "asyncio"])
def test_a_run_whose_retries_are_spent_fails_and_joins_the_failures(
    shell: str, solo: harness.RedisServer, sched: Scheduler
) -> None:
    sched.schedule_job("a", -1)
    calls: List[str] = []
    errors: List[str] = []
    dispatcher = dispatch(
        shell,
        solo.url,
        flaky({"a": 10}, calls),
        retries=2,
        retry_backoff=0.02,
        on_error=lambda job, exc: errors.append(str(exc)),
    )
    assert calls == ["a", "a", "a"]
    assert errors == ["boom 3"]  # once, when the run failed for good
    assert (dispatcher.handled, dispatcher.retried, dispatcher.failed) == (0, 2, 1)
    [run] = sched.runs("a")
    assert (run.state, run.attempts) == ("failed", 2)
    assert run.error is not None and "ValueError: boom 3" in run.error
    assert [failure.occurrence_id for failure in sched.failures()] == [run.occurrence_id]


def test_a_retry_waiting_on_stop_is_recorded_failed(solo_raw: Any, sched: Scheduler) -> None:
    sched.schedule_job("a", -1)

    def handler(job: Job) -> None:
        dispatcher.stop()
        raise ValueError("down")

    dispatcher = Dispatcher(handler, scheduler=sched, retries=5, retry_backoff=100)
    dispatcher.run()
    [run] = sched.runs("a")
    assert (run.state, run.attempts) == ("failed", 1)
    assert run.error is not None and "ValueError: down" in run.error
    assert "the dispatcher stopped" in run.error
    assert (dispatcher.failed, dispatcher.retried, dispatcher.pending_retries) == (1, 1, 0)


def test_a_handler_that_hands_off_leaves_the_run_to_the_worker(
    solo_raw: Any, sched: Scheduler
) -> None:
    sched.schedule_jobs([("sent", -2), ("refused", -1)])

    @adapters.hands_off
    def enqueue(job: Job) -> None:
        if job["id"] == "refused":
            raise ConnectionRefusedError("the broker is down")

    Dispatcher(enqueue, scheduler=sched).run(until_idle=True)
    assert sched.runs("sent")[0].state == "running"  # the worker reports it
    refused = sched.runs("refused")[0]
    assert refused.state == "failed" and "the broker is down" in (refused.error or "")


# -- rache dispatch --call ------------------------------------------------------------------------

TARGETS = '''
import os

def flaky(job):
    """Raise for the first FAILS[id] calls of each job (counted in a file per job)."""
    path = f"calls-{job['id']}.txt"
    with open(path, "a") as out:
        out.write("x")
    calls = len(open(path).read())
    if calls <= int(os.environ.get("FAILS_" + job["id"], "0")):
        raise RuntimeError(f"call {calls} failed")
'''


def rache(*args: str, cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "rache", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rache_dispatch_retries_a_call_then_records_success_or_failure(
    solo: harness.RedisServer, sched: Scheduler, tmp_path: Path
) -> None:
    (tmp_path / "targets.py").write_text(TARGETS)
    sched.schedule_jobs([("twice", -3), ("never", -2, {"kept": "yes"}), ("fine", -1)])
    sched.schedule_recurring("tick", Every(3600), start=sched.server_time() - 1)
    env = {"REDIS_URL": solo.url, "RACHE_REDIS_PREFIX": PREFIX, "FAILS_twice": "2",
           "FAILS_never": "9", "FAILS_tick": "9"}  # fmt: skip
    args = ["dispatch", "--call", "targets:flaky", "--retries", "2", "--retry-backoff", "0.05"]
    process = subprocess.Popen(
        [sys.executable, "-m", "rache", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(sched.failures()) == 2 and sched.runs("twice")[0].state != "running")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "2 failed, 0 put back, 6 failed attempts retried" in err, err
    twice, never, fine = (sched.runs(job_id)[0] for job_id in ("twice", "never", "fine"))
    assert (twice.state, twice.attempts) == ("succeeded", 2)
    assert (never.state, never.attempts) == ("failed", 2)
    assert never.error is not None and "RuntimeError: call 3 failed" in never.error
    assert fine.state == "succeeded" and fine.attempts == 0
    assert (tmp_path / "calls-never.txt").read_text() == "xxx"  # 1 call + 2 retries
    tick = sched.runs("tick")[0]
    assert tick.state == "failed"
    assert {run.occurrence_id for run in sched.failures()} == {
        never.occurrence_id,
        tick.occurrence_id,
    }

    # rache failures: the list, as text and JSON
    listed = rache("failures", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert never.occurrence_id in listed.stdout and "RuntimeError: call 3 failed" in listed.stdout
    assert "(3 attempts)" in listed.stdout
    lines = rache("failures", "--json", "--limit", "1", cwd=tmp_path, env=env).stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["state"] == "failed"

    # --again: a plain job's failed run scheduled again; a recurring one's refused.
    assert sched.job_details("never")["schedule_at"] is None
    again = rache("failures", "--again", never.occurrence_id, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "scheduled never again" in again.stdout
    assert sched.job_details("never")["schedule_at"] is not None
    assert sched.job_details("never")["kept"] == "yes"
    twice_again = rache("failures", "--again", never.occurrence_id, cwd=tmp_path, env=env)
    assert twice_again.returncode == 1 and "scheduled again already" in twice_again.stderr
    recurring = rache("failures", "--again", tick.occurrence_id, cwd=tmp_path, env=env)
    assert recurring.returncode == 1 and "recurs" in recurring.stderr
    unknown = rache("failures", "--again", "nosuch:1", cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "no recent failed run" in unknown.stderr


def test_rache_dispatch_refuses_bad_retry_options(
    solo: harness.RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "targets.py").write_text(TARGETS)
    env = {"REDIS_URL": solo.url}
    for args in (["--retries", "-1"], ["--retries", "101"], ["--retry-backoff", "0"],
                 ["--retry-backoff", "soon"]):  # fmt: skip
        result = rache("dispatch", "--call", "targets:flaky", *args, cwd=tmp_path, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert "--retr" in result.stderr or "duration" in result.stderr, result.stderr


# -- rq -----------------------------------------------------------------------------------------

RQ = os.path.join(os.path.dirname(sys.executable), "rq")


def rq_burst(solo: harness.RedisServer, queue: str) -> None:
    """A real ``rq worker --burst`` process: it runs what the queue holds, then exits."""
    result = subprocess.run(
        [RQ, "worker", "--burst", "--url", solo.url, queue],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_an_rq_worker_reports_each_run_through_the_adapters_callbacks(
    solo: harness.RedisServer, solo_raw: Any, sched: Scheduler
) -> None:
    rq = pytest.importorskip("rq")
    sched.schedule_jobs([("ok", -3), ("bad", -2), ("flaky", -1)])
    queue = rq.Queue("outcomes", connection=solo_raw)
    tasks = {
        "ok": adapters.rq(queue, "tests.support.rq_tasks.succeed", scheduler=sched),
        "bad": adapters.rq(queue, "tests.support.rq_tasks.fail", scheduler=sched),
        "flaky": adapters.rq(
            queue, "tests.support.rq_tasks.fail", scheduler=sched, retry=rq.Retry(max=1)
        ),
    }
    handler = adapters.hands_off(lambda job: tasks[job["id"]](job))
    Dispatcher(handler, scheduler=sched).run(until_idle=True)
    assert [sched.runs(job_id)[0].state for job_id in tasks] == ["running"] * 3
    rq_burst(solo, "outcomes")
    ok, bad, flaky_run = (sched.runs(job_id)[0] for job_id in tasks)
    assert ok.state == "succeeded"
    assert bad.state == "failed" and "rq task failed for bad" in (bad.error or "")
    assert (flaky_run.state, flaky_run.attempts) == ("failed", 1)  # rq retried it once
    assert {run.occurrence_id for run in sched.failures()} == {
        bad.occurrence_id,
        flaky_run.occurrence_id,
    }


def test_rache_rq_periodic_jobs_report_their_runs(solo: harness.RedisServer, solo_raw: Any) -> None:
    pytest.importorskip("rq")
    from datetime import datetime, timedelta, timezone

    import rache.rq

    rq_scheduler = rache.rq.Scheduler(connection=solo_raw, queue_name="periodic")
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    good = rq_scheduler.schedule(start, "tests.support.rq_tasks.record", args=["x"], interval=3600)
    bad = rq_scheduler.schedule(start, "tests.support.rq_tasks.fail", args=[{"id": "p"}],
                                interval=3600)  # fmt: skip
    runner = rache.rq.Runner(rq_scheduler.rache)
    Dispatcher(runner, scheduler=rq_scheduler.rache, reschedule_in=30).run(until_idle=True)
    assert rq_scheduler.rache.runs(good.id)[0].state == "running"
    rq_burst(solo, "periodic")
    assert rq_scheduler.rache.runs(good.id)[0].state == "succeeded"
    failed = rq_scheduler.rache.runs(bad.id)[0]
    assert failed.state == "failed" and "rq task failed for p" in (failed.error or "")


# -- Celery -------------------------------------------------------------------------------------

CELERY_APP = """
import os

import rache.celery
from celery import Celery

app = Celery("outcomes_app", broker=os.environ["BROKER"])
app.conf.rache_prefix = os.environ["RACHE_PREFIX"]
app.conf.broker_connection_retry_on_startup = True
rache.celery.report_outcomes(app)  # the one line: the worker reports each run's outcome


@app.task(name="ok")
def ok(job):
    return job["id"]


@app.task(name="bad")
def bad(job):
    raise RuntimeError("celery task failed for " + job["id"])


@app.task(name="again", bind=True, max_retries=1, default_retry_delay=0)
def again(self, job):
    raise self.retry(exc=RuntimeError("celery attempt failed"))
"""


@pytest.mark.slow
def test_a_celery_worker_reports_each_run_through_its_task_signals(
    solo: harness.RedisServer, sched: Scheduler, tmp_path: Path
) -> None:
    celery = pytest.importorskip("celery")
    from tests.support.beats import start_celery

    (tmp_path / "outcomes_app.py").write_text(CELERY_APP)
    env = {"BROKER": solo.url, "RACHE_PREFIX": PREFIX}
    worker = start_celery(
        tmp_path, "worker", env, app="outcomes_app", command=["worker", "-P", "solo", "-c", "1"]
    )
    app = celery.Celery("sender", broker=solo.url)
    try:
        worker.wait_for("ready.", timeout=30)
        sched.schedule_jobs([("ok", -3), ("bad", -2), ("again", -1)])
        senders = {name: adapters.celery(app, name) for name in ("ok", "bad", "again")}
        handler = adapters.hands_off(lambda job: senders[job["id"]](job))
        Dispatcher(handler, scheduler=sched).run(until_idle=True)
        wait_for(
            lambda: all(sched.runs(name)[0].state != "running" for name in senders),
            30,
            "the worker's reports",
        )
    finally:
        worker.stop()
        app.close()
    ok, bad, again = (sched.runs(name)[0] for name in ("ok", "bad", "again"))
    assert ok.state == "succeeded", worker.text()
    assert bad.state == "failed" and "celery task failed for bad" in (bad.error or "")
    assert (again.state, again.attempts) == ("failed", 1)
