"""The task-queue adapters against the real libraries (rq, Celery, arq) and a real Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import redis
import redis.asyncio

from rache import Dispatcher, Job, Scheduler, adapters
from rache.aio import AsyncDispatcher, AsyncScheduler
from tests.support import harness

ROOT = Path(__file__).resolve().parent.parent


def fetch(job: Dict[str, Any]) -> str:
    """An rq task: what the rq worker runs for each job."""
    return f"fetched {job['url']}"


def recording(handler: Any, jobs: List[Job]) -> Any:
    """``handler``, noting each job it is given."""

    def wrapped(job: Job) -> Any:
        jobs.append(job)
        return handler(job)

    return wrapped


def schedule_feeds(raw: Any) -> None:
    Scheduler(raw, "rache:").schedule_jobs(
        (f"feed:{n}", -1, {"url": f"https://example.com/{n}"}) for n in range(3)
    )


def test_rq_enqueues_each_occurrence_once_and_a_worker_runs_it(solo_raw: Any) -> None:
    rq = pytest.importorskip("rq")
    schedule_feeds(solo_raw)
    queue = rq.Queue("feeds", connection=solo_raw)
    handler = adapters.rq(queue, fetch, result_ttl=600)
    jobs: List[Job] = []
    dispatcher = Dispatcher(recording(handler, jobs), scheduler=Scheduler(solo_raw, "rache:"))
    dispatcher.run(until_idle=True)
    assert dispatcher.handled == 3 and queue.count == 3
    assert queue.job_ids == [adapters.rq_job_id(job) for job in jobs]
    first = queue.fetch_job(queue.job_ids[0])
    assert first.meta["rache_occurrence"] == jobs[0].occurrence_id
    assert first.args == ({"id": "feed:0", "url": "https://example.com/0"},)
    # The same occurrences handed out again (a lost reply, a put-back): not enqueued again.
    for job in jobs:
        assert handler(job) is None
    assert queue.count == 3
    rq.SimpleWorker([queue], connection=solo_raw).work(burst=True)
    results = [queue.fetch_job(job_id).return_value() for job_id in map(adapters.rq_job_id, jobs)]
    assert results == [f"fetched https://example.com/{n}" for n in range(3)]


def test_rq_job_ids_are_valid_rq_ids_for_any_job_id(solo_raw: Any) -> None:
    rq = pytest.importorskip("rq")
    Scheduler(solo_raw, "rache:").schedule_job("https://x/é?q=1 2", -0.5)
    queue = rq.Queue("odd", connection=solo_raw)
    Dispatcher(adapters.rq(queue, fetch), scheduler=Scheduler(solo_raw)).run(until_idle=True)
    [job_id] = queue.job_ids
    assert job_id.startswith("rache-") and job_id.replace("-", "").isalnum()


def test_celery_sends_each_job_to_the_redis_broker(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    celery = pytest.importorskip("celery")
    schedule_feeds(solo_raw)
    app = celery.Celery("rache-test", broker=solo.url)
    jobs: List[Job] = []
    handler = adapters.celery(app, "feeds.fetch", queue="feeds")
    Dispatcher(recording(handler, jobs), scheduler=Scheduler(solo_raw)).run(until_idle=True)
    messages = [json.loads(raw) for raw in reversed(solo_raw.lrange("feeds", 0, -1))]
    assert [m["headers"]["id"] for m in messages] == [job.occurrence_id for job in jobs]
    assert {m["headers"]["task"] for m in messages} == {"feeds.fetch"}
    args, kwargs, _ = json.loads(base64.b64decode(messages[0]["body"]))
    assert args == [{"id": "feed:0", "url": "https://example.com/0"}] and kwargs == {}
    app.close()


async def resize(ctx: Dict[str, Any], job: Dict[str, Any]) -> str:
    """An arq task."""
    return f"resized {job['id']}"


# arq (0.28, the latest) pins redis<6, and passes redis-py 6+ an option and calls a method
# it deprecated: the Makefile installs arq beside the redis-py the rest of the suite uses,
# so those two warnings of arq's own calls are let pass.
@pytest.mark.filterwarnings("ignore:Call to '__init__' function with deprecated usage")
@pytest.mark.filterwarnings("ignore:Call to deprecated close")
def test_arq_enqueues_each_occurrence_once_and_a_worker_runs_it(
    solo: harness.RedisServer,
) -> None:
    arq = pytest.importorskip("arq")
    from arq.connections import RedisSettings
    from arq.worker import Worker

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(solo.url)
        await client.flushdb()
        scheduler = AsyncScheduler(client)
        await scheduler.schedule_jobs((f"img:{n}", -1) for n in range(3))
        pool = await arq.create_pool(RedisSettings(host=solo.host, port=solo.port))
        jobs: List[Job] = []
        handler = adapters.arq(pool, "resize")
        dispatcher = AsyncDispatcher(recording(handler, jobs), scheduler=scheduler)
        await dispatcher.run(until_idle=True)
        assert dispatcher.handled == 3
        for job in jobs:  # arq refuses an id it holds: the repeat is not enqueued
            assert await handler(job) is None
        assert await pool.zcard("arq:queue") == 3
        worker = Worker(functions=[resize], redis_pool=pool, burst=True, handle_signals=False)
        await worker.main()
        results = [await arq.jobs.Job(job.occurrence_id, pool).result() for job in jobs]
        assert results == [f"resized img:{n}" for n in range(3)]
        await worker.close()
        await client.aclose()

    asyncio.run(main())


def test_the_callable_adapter_passes_a_plain_dict(solo_raw: Any) -> None:
    Scheduler(solo_raw).schedule_job("a", -1, n=1)
    got: List[Any] = []
    Dispatcher(adapters.call(got.append), scheduler=Scheduler(solo_raw)).run(until_idle=True)
    assert got == [{"id": "a", "n": 1}] and type(got[0]) is dict


def test_adapters_refuse_bad_arguments() -> None:
    with pytest.raises(TypeError, match="func must be callable"):
        adapters.call(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sets 'job_id' itself"):
        adapters.rq(object(), fetch, job_id="x")
    with pytest.raises(TypeError, match="task must be a task name"):
        adapters.celery(object(), "")
    with pytest.raises(TypeError, match="sets 'task_id' itself"):
        adapters.celery(object(), "t", task_id="x")
    with pytest.raises(TypeError, match="function must be a function name"):
        adapters.arq(object(), "")


def test_importing_rache_imports_no_task_queue() -> None:
    code = (
        "import sys, rache, rache.aio, rache.adapters, rache.dispatch;"
        "print(sorted({'rq', 'celery', 'arq', 'prometheus_client'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("dispatch_callable.py", "handled 3"),
        ("dispatch_rq.py", "enqueued 5 jobs; rq queue holds 5"),
        ("dispatch_celery.py", "in the broker: reports.build report:0:"),
        ("dispatch_arq.py", "resizing 2.png (job image:2)"),
    ],
)
def test_the_examples_run(
    solo: harness.RedisServer, solo_raw: Any, example: str, expected: str
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": solo.url,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / example)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
