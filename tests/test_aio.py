"""What only the asyncio shell has: async module functions, many tasks, cancellation.

(The behaviour suite runs on both shells through the ``make`` and ``sched`` fixtures.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import threading
from typing import Any, Dict, List

import pytest
import redis.asyncio

import rache
import rache.scripts
from rache import Cron, Every, aio, wire
from rache.aio import AsyncScheduler
from tests.support import harness as testing
from tests.support.helpers import AsyncDelayedScript, job_keys


def run(coroutine: Any) -> Any:
    """Run a test's coroutine on a fresh event loop."""
    return asyncio.run(coroutine)


def test_async_module_functions_use_redis_url(
    server: testing.RedisServer, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("RACHE_REDIS_PREFIX", "aio:")

    async def scenario() -> List[Any]:
        await aio.schedule_job("a", -1, n=1)
        assert await aio.schedule_jobs([("b", -1), ("c", 3600, {"s": "x"})]) == 3 - 1
        seen = [job async for job in aio.pending_jobs(reschedule_in=60)]
        details = await aio.job_details("c")
        ids = [job_id async for job_id in aio.scheduled_jobs()]
        await aio.delete_job("c")
        default = aio.default_scheduler()
        assert default is aio.default_scheduler()  # one default per loop
        await default.connection.aclose()
        return [seen, details["s"], ids]

    seen, data, ids = run(scenario())
    assert seen == [{"id": "a", "n": 1}, {"id": "b"}]
    assert data == "x"
    assert sorted(ids) == ["a", "b", "c"]
    # a and b's runs (claimed with reschedule_in: still scheduled), c's gone with it
    assert job_keys(raw) == [b"aio:job:a", b"aio:lastrun", b"aio:queue", b"aio:runs"]


def test_async_module_functions_take_a_connection(server: testing.RedisServer, raw: Any) -> None:
    async def scenario() -> Any:
        client = redis.asyncio.Redis.from_url(server.url, decode_responses=True)
        await aio.schedule_job("a", -1, connection=client, n=1)
        jobs = [job async for job in aio.pending_jobs(connection=client)]
        await client.aclose()
        return jobs

    assert run(scenario()) == [{"id": "a", "n": 1}]


def test_bad_arguments_fail_at_the_call(server: testing.RedisServer) -> None:
    sched = AsyncScheduler(redis.asyncio.Redis.from_url(server.url))
    with pytest.raises(ValueError, match="limit must be 0 or more"):
        sched.pending_jobs(limit=-1)  # not at the first __anext__
    with pytest.raises(TypeError, match="reschedule_in must be a number"):
        aio.pending_jobs(reschedule_in="soon", connection=sched.connection)  # type: ignore[arg-type]


@pytest.mark.slow
def test_fifty_tasks_and_two_processes_take_each_job_once(
    server: testing.RedisServer, raw: Any
) -> None:
    jobs = 20_000
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"job-{i:05}": now - 1 for i in range(jobs)})
    results: Dict[str, Any] = {}
    processes = threading.Thread(
        target=lambda: results.update(polled=testing.run_pollers(server.url, 2, limit=10))
    )

    async def tasks() -> List[str]:
        client = redis.asyncio.Redis.from_url(server.url, max_connections=50)
        sched = AsyncScheduler(client)
        claimed: List[str] = []

        async def poll() -> None:
            while True:
                batch = [job["id"] async for job in sched.pending_jobs(limit=20)]
                if not batch:
                    return
                claimed.extend(batch)

        processes.start()
        for _ in range(3000):  # the processes take a moment to spawn: start with them
            if await client.zcard("rache:queue") < jobs:
                break
            await asyncio.sleep(0.01)
        await asyncio.gather(*(poll() for _ in range(50)))
        await client.aclose()
        return claimed

    by_tasks = run(tasks())
    processes.join()
    by_processes = [job_id for polled in results["polled"] for job_id in polled.ids]
    counts = collections.Counter(by_tasks + by_processes)
    assert [job_id for job_id, n in counts.items() if n > 1] == []
    assert len(counts) == jobs
    assert by_tasks and by_processes  # both kinds of poller took part


@pytest.mark.parametrize("reschedule_in", [None, 3600])
def test_a_task_cancelled_while_awaiting_a_claim_loses_nothing(
    server: testing.RedisServer, raw: Any, reschedule_in: Any
) -> None:
    jobs = 2000
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"job-{i:05}": now - 100 + i % 50 for i in range(jobs)})
    before = dict(raw.zrange("rache:queue", 0, -1, withscores=True))

    async def scenario() -> List[str]:
        client = redis.asyncio.Redis.from_url(server.url)
        sched = AsyncScheduler(client)
        received: List[str] = []

        async def consume() -> None:
            async for job in sched.pending_jobs(reschedule_in):
                received.append(job["id"])

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # the task starts its first claim and awaits it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the claim completes, then its jobs go back, in the background
            await asyncio.sleep(0.02)
            if not sched._background and await client.zcard("rache:queue") == jobs:
                break
        await client.aclose()
        return received

    assert run(scenario()) == []
    assert dict(raw.zrange("rache:queue", 0, -1, withscores=True)) == before


def test_a_task_cancelled_between_batches_keeps_what_it_received(
    server: testing.RedisServer, raw: Any
) -> None:
    jobs = 30
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"job-{i:02}": now - 100 + i for i in range(jobs)})

    async def scenario() -> List[str]:
        client = redis.asyncio.Redis.from_url(server.url)
        sched = AsyncScheduler(client, batch_size=10)
        received: List[str] = []
        second_batch = asyncio.Event()

        async def consume() -> None:
            async for job in sched.pending_jobs():
                received.append(job["id"])
                if len(received) == 10:
                    second_batch.set()  # the next __anext__ awaits the second claim

        task = asyncio.create_task(consume())
        await second_batch.wait()
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            await asyncio.sleep(0.02)
            if not sched._background and await client.zcard("rache:queue") == jobs - 10:
                break
        await client.aclose()
        return received

    received = run(scenario())
    assert received == [f"job-{i:02}" for i in range(10)]
    assert sorted(raw.zrange("rache:queue", 0, -1)) == [
        f"job-{i:02}".encode() for i in range(10, 30)
    ]


def test_aclosing_puts_the_rest_of_the_batch_back_at_once(
    server: testing.RedisServer, raw: Any
) -> None:
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"job-{i}": now - 10 for i in range(5)})

    async def scenario() -> int:
        client = redis.asyncio.Redis.from_url(server.url)
        sched = AsyncScheduler(client)
        async with contextlib.aclosing(sched.pending_jobs()) as jobs:
            async for _job in jobs:
                break
        left = int(await client.zcard("rache:queue"))  # before the loop could finalize it
        await client.aclose()
        return left

    assert run(scenario()) == 4


def test_an_async_scheduler_reads_redis_url_lazily(
    server: testing.RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://nowhere")
    with pytest.raises(rache.ConfigurationError, match="REDIS_URL is not a Redis URL"):
        AsyncScheduler()
    monkeypatch.setenv("REDIS_URL", server.url)
    sched = AsyncScheduler()
    assert "AsyncScheduler" in repr(sched) and str(server.port) in repr(sched)


BUSY = """
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[1])
return 1
"""


def test_a_cancel_while_aclose_puts_back_still_puts_back(
    server: testing.RedisServer, raw: Any
) -> None:
    # Found in review: the put-back in the generator's finally was not shielded, so a
    # cancel landing while it waited (here: for the pool's only connection) dropped it.
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"job-{i}": now - 10 for i in range(10)})

    async def scenario() -> List[str]:
        pool = redis.asyncio.BlockingConnectionPool.from_url(server.url, max_connections=1)
        client = redis.asyncio.Redis(connection_pool=pool)
        sched = AsyncScheduler(client)
        received: List[str] = []
        got_one, go_on = asyncio.Event(), asyncio.Event()

        async def consume() -> None:
            async with contextlib.aclosing(sched.pending_jobs()) as jobs:
                async for job in jobs:
                    received.append(job["id"])
                    got_one.set()
                    await go_on.wait()
                    break

        task = asyncio.create_task(consume())
        await got_one.wait()
        busy: Any = asyncio.ensure_future(client.eval(BUSY, 0, 300_000))  # holds the connection
        await asyncio.sleep(0.05)
        go_on.set()  # the consumer leaves: aclose() waits for the connection to put back 9
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await busy
        for _ in range(100):
            if not sched._background:
                break
            await asyncio.sleep(0.02)
        await client.aclose()
        await pool.disconnect()  # the client does not own a pool it was given
        return received

    assert run(scenario()) == ["job-0"]
    assert raw.zcard("rache:queue") == 9


def test_module_functions_schedule_recurring_jobs(
    server: testing.RedisServer, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("RACHE_REDIS_PREFIX", "aio:")
    monkeypatch.setattr(rache, "_default", None)
    rache.schedule_recurring("sync", Every(60), data={"n": 1})

    async def scenario() -> List[Any]:
        await aio.schedule_recurring("async", Cron("0 0 * * *", timezone="America/New_York"))
        details = await aio.job_details("async")
        await aio.default_scheduler().connection.aclose()
        return [details]

    (details,) = run(scenario())
    assert details["recurring"]["timezone"] == "America/New_York"
    assert rache.job_details("sync")["recurring"]["every"] == 60
    assert sorted(raw.hkeys("aio:recurring")) == [b"async", b"sync"]
    assert rache._default is not None
    rache._default.connection.close()


def test_a_task_cancelled_while_awaiting_an_advance_loses_nothing(
    server: testing.RedisServer, raw: Any
) -> None:
    # A cron job long overdue: the claim leases it, the advance hands its occurrence out.
    rache.Scheduler(raw).schedule_recurring("yearly", Cron("0 0 1 1 *"), start=0)

    async def scenario() -> List[Any]:
        client = redis.asyncio.Redis.from_url(server.url)
        advancing = asyncio.Event()
        # the advance is on its way for 0.2 s; the task is cancelled meanwhile
        slow = AsyncDelayedScript(client, rache.scripts.ADVANCE, advancing, 0.2)
        sched = AsyncScheduler(slow)

        async def consume() -> List[Any]:
            return [job async for job in sched.pending_jobs()]

        task = asyncio.ensure_future(consume())
        await advancing.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # the advance lands, then its occurrence goes back
        sched = AsyncScheduler(client)
        again = [(job["id"], job.due_at) async for job in sched.pending_jobs()]
        await client.aclose()
        return again

    again = run(scenario())
    this_year = datetime.datetime.now(datetime.timezone.utc).replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0
    )
    assert again == [("yearly", int(this_year.timestamp()))]


def test_module_functions_of_the_integrations_seams(
    server: testing.RedisServer, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """schedule_job_at, recurring_jobs, server_time and delete_job's answer, both modules."""
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("RACHE_REDIS_PREFIX", "aio:")
    monkeypatch.setattr(rache, "_default", None)
    at = datetime.datetime(2033, 5, 18, 3, 33, 20, tzinfo=datetime.timezone.utc)
    assert rache.schedule_job_at("sync", at, data={"n": 1}) == 2_000_000_000
    rache.schedule_recurring("sync-rule", Every(60))
    seconds, micros = raw.time()
    assert abs(rache.server_time() - (seconds + micros / 1e6)) < 1

    async def scenario() -> List[Any]:
        due = await aio.schedule_job_at("async", 2_000_000_000.5, data={"n": 2})
        await aio.schedule_recurring("async-rule", Every(60))
        ids = [job_id async for job_id in aio.recurring_jobs()]
        now = await aio.server_time()
        deleted = [await aio.delete_job("async-rule"), await aio.delete_job("async-rule")]
        await aio.default_scheduler().connection.aclose()
        return [due, ids, now, deleted]

    due, ids, now, deleted = run(scenario())
    assert due == 2_000_000_000.5 and sorted(ids) == ["async-rule", "sync-rule"]
    assert abs(now - rache.server_time()) < 5 and deleted == [True, False]
    assert rache.job_details("async") == {"id": "async", "schedule_at": due, "n": 2}
    assert list(rache.recurring_jobs()) == ["sync-rule"]
    assert rache.delete_job("sync") is True and rache.delete_job("sync") is False
    assert rache._default is not None
    rache._default.connection.close()


@pytest.mark.parametrize("where", ["single", "shards", "cluster"])
def test_a_task_cancelled_while_awaiting_a_claim_leaves_no_cron_job_leased(
    server: testing.RedisServer, raw: Any, where: str, request: pytest.FixtureRequest
) -> None:
    # Due now: a cron job every second, an every-N job every 0.2 s, and a plain job.
    shards = 3 if where == "shards" else 1
    prefix = "{rache}:" if where == "cluster" else "rache:"
    if where == "cluster":
        nodes: testing.RedisClusterServers = request.getfixturevalue("cluster_nodes")
        raw = nodes.client()
        raw.flushall()
    setup = rache.Scheduler(raw, prefix, shards=shards)
    setup.schedule_recurring("cron", Cron("* * * * * *"), start=0)
    setup.schedule_recurring("every", Every(0.2), start=0)
    setup.schedule_job("plain", -5)
    queue = {job_id: score for job_id, score in _scores(setup, raw)}
    rules = {job_id: rule for job_id, rule in _rules(setup, raw)}

    async def scenario() -> List[Any]:
        client: Any = redis.asyncio.Redis.from_url(server.url)
        if where == "cluster":
            node = nodes.nodes[0]
            client = redis.asyncio.RedisCluster(host=node.host, port=node.port)
        claiming = asyncio.Event()
        slow = AsyncDelayedScript(client, rache.scripts.CLAIM, claiming, 0.2)
        sched = AsyncScheduler(slow, prefix, shards=shards)
        sched.recurring_lease = 5

        async def consume() -> List[Any]:
            return [job async for job in sched.pending_jobs()]

        task = asyncio.ensure_future(consume())
        await claiming.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # the claim lands, then its batch goes back
        sched = AsyncScheduler(client, prefix, shards=shards)
        # Nothing leased: the cron job and the plain one as they were, the every-N job at
        # the occurrence the claim took (coalesced: the latest one).
        scores = dict(_scores(setup, raw))
        assert scores.pop(b"every") <= float(setup.server_time())
        del queue[b"every"]
        assert scores == queue
        assert dict(_rules(setup, raw))[b"cron"] == rules[b"cron"]
        again = [(job["id"], job.due_at) async for job in sched.pending_jobs()]
        await client.aclose()
        return again

    again = sorted(run(scenario()))
    assert [job_id for job_id, _ in again] == ["cron", "every", "plain"]
    if where == "cluster":
        raw.close()


def _scores(sched: Any, raw: Any) -> List[Any]:
    return [
        item for keys in sched.shards for item in raw.zrange(keys.queue, 0, -1, withscores=True)
    ]


def _rules(sched: Any, raw: Any) -> List[Any]:
    return [item for keys in sched.shards for item in raw.hgetall(keys.recurring).items()]


@pytest.mark.slow
def test_a_cancelling_poller_costs_no_occurrence_of_a_job_every_second(
    server: testing.RedisServer, raw: Any
) -> None:
    # One task polls, another starts claims and cancels them at every moment of their flight;
    # a plain job and an every-0.2 s job ride along. For 6 s: each occurrence once, none lost.
    setup = rache.Scheduler(raw)
    setup.schedule_recurring("cron", Cron("* * * * * *"))
    start = round((float(setup.server_time()) + 0.3) * 1000)
    setup.schedule_recurring("every", Every(0.2), start=start / 1000)
    first_cron = round(raw.zscore("rache:queue", "cron") * 1000)

    async def scenario() -> List[Any]:
        client = redis.asyncio.Redis.from_url(server.url)
        seen: List[Any] = []
        loop = asyncio.get_running_loop()
        until = loop.time() + 6

        async def consume(sched: AsyncScheduler) -> None:
            async for job in sched.pending_jobs():
                seen.append((job["id"], wire.time_ms(job.raw_due or b"")))

        async def steady() -> None:
            sched = AsyncScheduler(client)
            while loop.time() < until:
                await consume(sched)
                await asyncio.sleep(0.01)

        async def cancelling() -> None:
            sched = AsyncScheduler(client)
            delays = [0, 0.0002, 0.0005, 0.001, 0.002, 0.004]
            k = 0
            while loop.time() < until:
                task = asyncio.ensure_future(consume(sched))
                await asyncio.sleep(delays[k % len(delays)])
                k += 1
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        await asyncio.gather(steady(), cancelling())
        await asyncio.sleep(0.3)  # the last put-backs land
        await client.aclose()
        return seen

    seen = run(scenario())
    counts = collections.Counter(seen)
    assert {item: n for item, n in counts.items() if n > 1} == {}  # never twice
    cron = sorted(due for job_id, due in counts if job_id == "cron")
    assert cron == list(range(first_cron, cron[-1] + 1, 1000))  # none lost
    assert len(cron) >= 5
    every = sorted(due for job_id, due in counts if job_id == "every")
    assert every == list(range(start, every[-1] + 1, 200))
    assert len(every) >= 25
