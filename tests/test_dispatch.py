"""The Dispatcher, sync and asyncio: wake-up, shutdown, outages, counts, against real Redis."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import redis
import redis.asyncio

import rache
from rache import Cron, Dispatcher, Every, Job, Scheduler
from rache.aio import AsyncDispatcher, AsyncScheduler
from rache.keys import shard_of
from tests.support import harness as testing
from tests.support.helpers import commands_sent
from tests.support.shells import LoopThread

ROOT = Path(__file__).resolve().parent.parent


class Running:
    """A dispatcher (sync, or asyncio on a loop of its own) running in a thread."""

    def __init__(
        self,
        kind: str,
        url: str,
        handler: Callable[[Job], Any],
        *,
        cluster: Optional[testing.RedisServer] = None,
        prefix: str = "rache:",
        shards: int = 1,
        client_options: Optional[Dict[str, Any]] = None,
        **options: Any,
    ) -> None:
        self.kind = kind
        self.url = url
        self.cluster = cluster  # a node: a RedisCluster client then, not a plain one
        self.prefix = prefix
        self.shards = shards
        self.client_options = client_options or {}
        self.handler = handler
        self.options = options
        self.dispatcher: Any = None
        self.error: Optional[BaseException] = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _main(self) -> None:
        try:
            if self.kind == "sync":
                client: Any = (
                    redis.Redis.from_url(self.url, **self.client_options)
                    if self.cluster is None
                    else redis.RedisCluster(host=self.cluster.host, port=self.cluster.port)
                )
                self.dispatcher = Dispatcher(
                    self.handler,
                    scheduler=Scheduler(client, self.prefix, shards=self.shards),
                    **self.options,
                )
                self.ready.set()
                self.dispatcher.run()
                client.close()
            else:
                asyncio.run(self._async_main())
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise

    async def _async_main(self) -> None:
        client: Any = (
            redis.asyncio.Redis.from_url(self.url, **self.client_options)
            if self.cluster is None
            else redis.asyncio.RedisCluster(host=self.cluster.host, port=self.cluster.port)
        )
        self.dispatcher = AsyncDispatcher(
            self.handler,
            scheduler=AsyncScheduler(client, self.prefix, shards=self.shards),
            **self.options,
        )
        self.ready.set()
        await self.dispatcher.run()
        await client.aclose()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    def stop(self) -> None:
        self.dispatcher.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the dispatcher did not stop"
        assert self.error is None, self.error


def recorder() -> Tuple[List[Tuple[Job, float]], Callable[[Job], None]]:
    """A handler that notes each job with the wall-clock time it was handed out."""
    seen: List[Tuple[Job, float]] = []

    def handler(job: Job) -> None:
        seen.append((job, time.time()))

    return seen, handler


def run_sync_or_async(kind: str, dispatcher_of: Callable[[Any], Any], url: str) -> Any:
    """Build ``dispatcher_of(scheduler)`` over a fresh client, run it until idle, return it."""
    if kind == "sync":
        client = redis.Redis.from_url(url)
        dispatcher = dispatcher_of(Scheduler(client, "rache:"))
        dispatcher.run(until_idle=True)
        client.close()
        return dispatcher

    async def main() -> Any:
        aclient = redis.asyncio.Redis.from_url(url)
        dispatcher = dispatcher_of(AsyncScheduler(aclient, "rache:"))
        await dispatcher.run(until_idle=True)
        await aclient.aclose()
        return dispatcher

    return asyncio.run(main())


KINDS = ["sync", "asyncio"]


def longer_than(items: List[Any], count: int) -> bool:
    """Whether ``items`` holds more than ``count`` items (a condition to wait for)."""
    return len(items) > count


# The schedule scripts publish when the head moves earlier -----------------------------------


def test_schedule_scripts_publish_only_when_the_head_moves_earlier(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("rache:wakeup")
    pubsub.get_message(timeout=1)  # the subscribe confirmation

    def published() -> List[float]:
        messages = []
        while (message := pubsub.get_message(timeout=0.05)) is not None:
            messages.append(float(message["data"]))
        return messages

    sched.schedule_job("a", 100)
    assert len(published()) == 1  # an empty schedule: the first job is its head
    sched.schedule_job("b", 200)
    assert published() == []  # behind the head: no sleeping dispatcher cares
    sched.schedule_job("a", 300)
    assert published() == []  # the head moved later: dispatchers wake early, harmlessly
    sched.schedule_job("c", 50)
    [due] = published()
    assert due == raw.zscore("rache:queue", "c")
    assert sched.schedule_jobs([("d", 400), ("e", 500)]) == 2
    assert published() == []
    sched.schedule_jobs([("f", 400), ("g", 10)])
    assert published() == [raw.zscore("rache:queue", "g")]
    # A claim's put-back makes due jobs the head again: published.
    sched.schedule_jobs([("h", -5), ("i", -4)])
    assert len(published()) == 1
    jobs = sched.pending_jobs()
    assert next(jobs)["id"] == "h"
    jobs.close()  # "i" was claimed, never handed out: put back
    assert published() == [raw.zscore("rache:queue", "i")]
    pubsub.close()


# Wake-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_scheduled_while_the_dispatcher_sleeps_is_handed_out_on_time(
    server: testing.RedisServer, raw: Any, kind: str
) -> None:
    seen, handler = recorder()
    running = Running(kind, server.url, handler, max_sleep=30)
    sched = Scheduler(raw, "rache:")
    lags = []
    try:
        running.wait_for(lambda: running.dispatcher.core.claims >= 1)
        time.sleep(0.2)  # asleep now, for up to 30 s
        for i in range(5):
            claims = running.dispatcher.core.claims
            sched.schedule_job(f"job-{i}", 0.2)
            running.wait_for(functools.partial(longer_than, seen, i), timeout=5)
            job, handed = seen[i]
            assert job["id"] == f"job-{i}"
            assert job.due_at is not None
            lags.append(handed - job.due_at)
            # Woken by the message, it claimed nothing yet due; then slept until due.
            assert running.dispatcher.core.claims - claims <= 3
            time.sleep(0.05)
    finally:
        running.stop()
    lags.sort()
    shown = [round(lag * 1e3, 2) for lag in lags]
    print(f"\n{kind} {server.spec.label}: lag due -> handler, ms: {shown}")
    assert min(lags) >= -0.002  # never early (the same clock: server and test share a host)
    assert lags[len(lags) // 2] < 0.05, lags  # a few ms in practice; 50 ms on a noisy VM


@pytest.mark.parametrize("kind", KINDS)
def test_the_wakeup_works_with_every_kind_of_client(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    # Pub/Sub messages arrive as RESP3 pushes or RESP2 arrays, decoded or not.
    for protocol, decode in [(2, False), (2, True), (3, False), (3, True)]:
        seen, handler = recorder()
        options = {"protocol": protocol, "decode_responses": decode}
        running = Running(kind, solo.url, handler, client_options=options, max_sleep=30)
        try:
            running.wait_for(lambda: running.dispatcher.core.claims >= 1)  # noqa: B023
            Scheduler(solo_raw, "rache:").schedule_job(f"job-{protocol}-{decode}", 0.1)
            running.wait_for(lambda: len(seen) == 1)  # noqa: B023
        finally:
            running.stop()
        job, handed = seen[0]
        assert job.due_at is not None and handed - job.due_at < 0.05, (protocol, decode)


@pytest.mark.slow
def test_the_wakeup_works_on_a_cluster(solo: testing.RedisServer, tmp_path: Path) -> None:
    # PUBLISH from a script on the schedule's node reaches a subscriber on any node.
    if solo.spec.kind != "binary":
        pytest.skip(f"a cluster needs a redis-server binary, not {solo.spec.describe()}")
    # A sharded schedule publishes on each shard's channel, and claims from every shard.
    cluster = testing.start_cluster(solo.spec, tmp_path)
    client = cluster.client()
    try:
        for kind, prefix, shards in [(k, "{rache}:", 1) for k in KINDS] + [
            (k, f"{k}:", 3) for k in KINDS
        ]:
            seen, handler = recorder()
            running = Running(
                kind, "", handler, cluster=cluster.nodes[0], prefix=prefix, shards=shards,
                max_sleep=30,
            )  # fmt: skip
            ids = [f"{kind}-job-{i}" for i in range(6)]
            try:
                running.wait_for(lambda: running.dispatcher.core.claims >= 1)  # noqa: B023
                time.sleep(0.2)
                scheduler = Scheduler(client, prefix, shards=shards)
                for i, job_id in enumerate(ids):  # each later one wakes no one
                    scheduler.schedule_job(job_id, 0.2 + i / 20)
                running.wait_for(lambda: len(seen) == len(ids))  # noqa: B023
            finally:
                running.stop()
            assert [job["id"] for job, _ in seen] == ids
            for job, handed in seen:
                assert job.due_at is not None and handed - job.due_at < 0.05, (kind, shards)
            if shards > 1:
                assert len({shard_of(job_id.encode(), 3) for job_id in ids}) > 1
    finally:
        client.close()
        cluster.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_without_the_wakeup_the_same_job_waits_for_the_timer(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    # The test above can fail: with wakeup=False, the dispatcher sleeps through the job.
    seen, handler = recorder()
    running = Running(kind, solo.url, handler, max_sleep=1.5, wakeup=False)
    try:
        running.wait_for(lambda: running.dispatcher.core.claims >= 1)
        Scheduler(solo_raw, "rache:").schedule_job("late", 0.2)
        running.wait_for(lambda: len(seen) == 1)
    finally:
        running.stop()
    job, handed = seen[0]
    assert job.due_at is not None and handed - job.due_at > 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_an_idle_dispatcher_sends_one_claim_per_max_sleep(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    _, handler = recorder()
    running = Running(kind, solo.url, handler, max_sleep=0.4)
    try:
        running.wait_for(lambda: running.dispatcher.core.claims >= 1)
        sent = commands_sent(solo_raw, lambda: time.sleep(2))
    finally:
        running.stop()
    # Nothing but claims (the pubsub connection is silent), one per max_sleep: with the
    # default max_sleep of 30 s, 2 a minute.
    assert set(sent) == {"EVALSHA"}, sent
    assert 3 <= len(sent) <= 7, sent


# Handlers, errors, counts -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reschedule_in", [None, 60])
def test_a_failing_handler_is_logged_and_the_loop_goes_on(
    solo: testing.RedisServer,
    solo_raw: Any,
    kind: str,
    reschedule_in: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    Scheduler(solo_raw, "rache:").schedule_jobs([("a", -3), ("bad", -2, {"n": 1}), ("c", -1)])
    handed: List[str] = []
    errors: List[Tuple[str, str]] = []

    def handler(job: Job) -> None:
        handed.append(job["id"])
        if job["id"] == "bad":
            raise RuntimeError("boom")

    def on_error(job: Job, exc: BaseException) -> None:
        errors.append((job["id"], str(exc)))

    def build(sched: Any) -> Any:
        kind_class = Dispatcher if kind == "sync" else AsyncDispatcher
        return kind_class(handler, scheduler=sched, reschedule_in=reschedule_in, on_error=on_error)

    with caplog.at_level(logging.ERROR, logger="rache"):
        dispatcher = run_sync_or_async(kind, build, solo.url)
    assert handed == ["a", "bad", "c"]
    assert errors == [("bad", "boom")]
    assert (dispatcher.claimed, dispatcher.handled, dispatcher.failed) == (3, 2, 1)
    assert dispatcher.lag is not None and 0.9 < dispatcher.max_lag < 10
    [record] = [r for r in caplog.records if r.name == "rache.dispatch"]
    assert "'bad'" in record.getMessage() and record.exc_info is not None
    # The job's fate: back in the schedule with reschedule_in, else gone (on_error decides).
    assert (solo_raw.zscore("rache:queue", "bad") is not None) == (reschedule_in is not None)


def test_a_full_batch_is_followed_by_another_claim_at_once(solo_raw: Any) -> None:
    # The scheduler's batch_size (2) splits the dispatcher's batch (5) into claims of 2, 2
    # and 1: full, so the next batch at once, with claims of 2 and 0 (nothing more due).
    sched = Scheduler(solo_raw, "rache:", batch_size=2)
    sched.schedule_jobs([(f"job-{i}", -1) for i in range(7)])
    handed: List[Any] = []
    dispatcher = Dispatcher(handed.append, scheduler=sched, batch=5)
    dispatcher.run(until_idle=True)
    assert [job["id"] for job in handed] == [f"job-{i}" for i in range(7)]
    assert dispatcher.core.claims == 5


class OneRound:
    """A Dispatcher, or an AsyncDispatcher on ``loop_thread``, driven by run_once() alone."""

    def __init__(
        self,
        kind: str,
        url: str,
        handler: Callable[[Job], Any],
        loop_thread: LoopThread,
        *,
        batch_size: int = 500,
        **options: Any,
    ) -> None:
        self.kind, self.loop_thread = kind, loop_thread
        if kind == "sync":
            self.client: Any = redis.Redis.from_url(url)
            scheduler: Any = Scheduler(self.client, "rache:", batch_size=batch_size)
            self.dispatcher: Any = Dispatcher(handler, scheduler=scheduler, **options)
        else:
            self.client = redis.asyncio.Redis.from_url(url)
            scheduler = AsyncScheduler(self.client, "rache:", batch_size=batch_size)
            self.dispatcher = AsyncDispatcher(handler, scheduler=scheduler, **options)

    def run_once(self) -> float:
        if self.kind == "sync":
            return float(self.dispatcher.run_once())
        return float(self.loop_thread.run(self.dispatcher.run_once()))

    def close(self) -> None:
        if self.kind == "sync":
            self.client.close()
        else:
            self.loop_thread.run(self.client.aclose())


@pytest.mark.parametrize("kind", KINDS)
def test_run_once_hands_out_one_round_and_says_how_long_to_wait(
    solo: testing.RedisServer, solo_raw: Any, loop_thread: LoopThread, kind: str
) -> None:
    sched = Scheduler(solo_raw, "rache:")
    sched.schedule_jobs([(f"job-{i}", -1) for i in range(3)] + [("later", 20)])
    handed: List[Job] = []
    one = OneRound(kind, solo.url, handed.append, loop_thread, batch=2)
    try:
        assert one.run_once() == 0  # a full claim: more may be due
        assert [job["id"] for job in handed] == ["job-0", "job-1"]
        wait = one.run_once()
        assert [job["id"] for job in handed] == ["job-0", "job-1", "job-2"]
        assert 19 < wait <= 20.01  # until "later" falls due
        dispatcher = one.dispatcher
        assert (dispatcher.claimed, dispatcher.handled, dispatcher.failed) == (3, 3, 0)
        assert dispatcher.core.claims == 2
        assert list(sched.scheduled_jobs()) == ["later"]
    finally:
        one.close()


@pytest.mark.parametrize("finish_batch", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_a_stop_during_run_once_ends_the_round_after_the_batch_in_hand(
    solo: testing.RedisServer,
    solo_raw: Any,
    loop_thread: LoopThread,
    kind: str,
    finish_batch: bool,
) -> None:
    # A round of 6 jobs in claims of 2: the handler stops the dispatcher at the first job.
    sched = Scheduler(solo_raw, "rache:")
    sched.schedule_jobs([(f"job-{i}", -1) for i in range(6)])
    handed: List[str] = []
    one: Any = None
    during: List[int] = []  # jobs in the schedule while the stopping handler call still ran

    def handler(job: Job) -> None:
        if not handed:
            one.dispatcher.stop()
            # No put-back thread under run_once (run() starts one): nothing goes back while
            # the handler call runs, however long; the rest goes back when it returns.
            time.sleep(0.3)
            during.append(len(list(sched.scheduled_jobs())))
        handed.append(job["id"])

    one = OneRound(
        kind, solo.url, handler, loop_thread, batch_size=2, batch=6, finish_batch=finish_batch
    )
    try:
        one.run_once()
        out = 2 if finish_batch else 1  # the batch in hand, or only the job being handled
        assert handed == [f"job-{i}" for i in range(out)]
        assert one.dispatcher.put_back == 2 - out
        assert one.dispatcher.stopping
        assert len(list(sched.scheduled_jobs())) == 6 - out
        assert during == [4]  # the batch of 2 still out while its first handler call ran
        one.run_once()  # clears the stop, as run() does: the rest, each once
        assert handed == [f"job-{i}" for i in range(6)]
        assert not one.dispatcher.stopping
    finally:
        one.close()


@pytest.mark.parametrize("kind", KINDS)
def test_run_once_rides_out_an_outage_with_backoff(
    solo: testing.RedisServer, tmp_path: Path, loop_thread: LoopThread, kind: str
) -> None:
    if solo.spec.kind != "binary":
        pytest.skip(f"needs a redis-server binary to stop, not {solo.spec.describe()}")
    own = testing.start(solo.spec, tmp_path)
    one = OneRound(kind, own.url, print, loop_thread, backoff=0.05, max_backoff=0.5)
    try:
        own.stop()
        waits = [one.run_once() for _ in range(3)]  # no exception: backoff delays
        assert all(0 < wait <= 0.5 for wait in waits), waits
        assert one.dispatcher.core.errors == 3
    finally:
        one.close()


@pytest.mark.parametrize("kind", KINDS)
def test_under_memory_pressure_a_dispatcher_hands_out_what_it_can_and_backs_off(
    solo: testing.RedisServer, tmp_path: Path, loop_thread: LoopThread, kind: str
) -> None:
    # maxmemory reached under noeviction: the plain due jobs go out (removing is allowed),
    # the recurring ones wait, and the loop backs off instead of raising (rache dispatch
    # exited 1); once memory frees, the recurring occurrences come out, once.
    if solo.spec.kind != "binary":
        pytest.skip(f"needs a redis-server binary of its own, not {solo.spec.describe()}")
    own = testing.start(solo.spec, tmp_path, args=["--maxmemory-policy", "noeviction"])
    client = own.client()
    sched = Scheduler(client, "rache:")
    sched.schedule_recurring("every", rache.Every(60), start=0)
    sched.schedule_recurring("cron", rache.Cron("0 0 1 1 *"), start=0)
    plain = [f"plain-{i:03}" for i in range(100)]
    sched.schedule_jobs([(job_id, -1) for job_id in plain])
    handed: List[str] = []
    one = OneRound(
        kind,
        own.url,
        lambda job: handed.append(job["id"]),
        loop_thread,
        backoff=0.05,
        max_backoff=0.5,
    )
    try:
        client.config_set("maxmemory", 1)
        waits = [one.run_once() for _ in range(3)]  # no exception: backoff delays
        assert all(0 < wait <= 0.5 for wait in waits), waits
        assert sorted(handed) == plain
        client.config_set("maxmemory", 0)
        one.run_once()
        assert sorted(handed) == sorted([*plain, "cron", "every"])
    finally:
        one.close()
        client.close()
        own.stop()


def test_on_error_can_reschedule_the_job(solo: testing.RedisServer, solo_raw: Any) -> None:
    sched = Scheduler(solo_raw, "rache:")
    sched.schedule_job("flaky", -1, tries=0)

    def handler(job: Job) -> None:
        raise ValueError("not yet")

    def retry(job: Job, exc: BaseException) -> None:
        sched.schedule_job(job["id"], 30, tries=job["tries"] + 1)

    Dispatcher(handler, scheduler=sched, on_error=retry).run(until_idle=True)
    assert sched.job_details("flaky")["tries"] == 1


def test_prometheus_metrics(solo: testing.RedisServer, solo_raw: Any) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    sched = Scheduler(solo_raw, "rache:")
    sched.schedule_jobs([("a", -1), ("b", -1)])

    def handler(job: Job) -> None:
        if job["id"] == "b":
            raise RuntimeError("b fails")

    Dispatcher(handler, scheduler=sched, metrics=registry).run(until_idle=True)
    value = registry.get_sample_value
    assert value("rache_dispatcher_claimed_total") == 2
    assert value("rache_dispatcher_handled_total") == 1
    assert value("rache_dispatcher_failed_total") == 1
    assert value("rache_dispatcher_lag_seconds_count") == 2
    # A second dispatcher on the same registry adds to the same metrics.
    sched.schedule_job("c", -1)
    Dispatcher(handler, scheduler=sched, metrics=registry).run(until_idle=True)
    assert value("rache_dispatcher_claimed_total") == 3


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"batch": 0}, ValueError, "batch must be from 1"),
        ({"batch": "10"}, TypeError, "batch must be an int"),
        ({"max_sleep": 0}, ValueError, "max_sleep must be"),
        ({"max_sleep": float("nan")}, ValueError, "max_sleep must be"),
        ({"backoff": 5, "max_backoff": 1}, ValueError, "max_backoff"),
        ({"reschedule_in": 0}, ValueError, "reschedule_in must be more than 0"),
        ({"reschedule_in": "1"}, TypeError, "reschedule_in must be a number"),
        ({"on_error": 3}, TypeError, "on_error must be callable"),
        ({"metrics": "yes"}, TypeError, "metrics must be a prometheus_client"),
    ],
)
def test_bad_options_are_refused_clearly(
    solo_raw: Any, options: Dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        Dispatcher(print, scheduler=Scheduler(solo_raw, "rache:"), **options)


def test_bad_handler_and_scheduler_are_refused(solo_raw: Any) -> None:
    with pytest.raises(TypeError, match="handler must be callable"):
        Dispatcher(42, scheduler=Scheduler(solo_raw))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AsyncDispatcher"):
        Dispatcher(print, scheduler=AsyncScheduler(solo_raw))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rache\.Dispatcher"):
        AsyncDispatcher(print, scheduler=Scheduler(solo_raw))  # type: ignore[arg-type]


# Several dispatchers: no job twice ----------------------------------------------------------


def _dispatch_process(url: str, kind: str, barrier: Any, seconds: float, out: Any) -> None:
    """One dispatcher process: run for ``seconds``, then report every job id it handed out."""
    ids: List[str] = []

    def handler(job: Job) -> None:
        ids.append(job["id"])

    barrier.wait()
    if kind == "sync":
        dispatcher = Dispatcher(handler, scheduler=Scheduler(redis.Redis.from_url(url)), batch=20)
        threading.Timer(seconds, dispatcher.stop).start()
        dispatcher.run()
    else:

        async def main() -> None:
            aclient = redis.asyncio.Redis.from_url(url)
            dispatcher = AsyncDispatcher(handler, scheduler=AsyncScheduler(aclient), batch=20)
            asyncio.get_running_loop().call_later(seconds, dispatcher.stop)
            await dispatcher.run()
            await aclient.aclose()

        asyncio.run(main())
    out.put(ids)


@pytest.mark.slow
def test_several_dispatcher_processes_hand_out_each_job_once(
    solo: testing.RedisServer, solo_raw: Any
) -> None:
    # 3,000 jobs: a third due already, the rest falling due over the next 1.5 s, while four
    # dispatchers (two sync, two asyncio, each its own process) claim in batches of 20.
    now = float(solo_raw.time()[0])
    ids = [f"job-{i:05}" for i in range(3000)]
    solo_raw.zadd("rache:queue", {job_id: now - 1 + i / 1000 for i, job_id in enumerate(ids)})
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(4), context.Queue()
    kinds = ["sync", "asyncio", "sync", "asyncio"]
    workers = [
        context.Process(target=_dispatch_process, args=(solo.url, kind, barrier, 2.5, out))
        for kind in kinds
    ]
    for worker in workers:
        worker.start()
    try:
        handed = [out.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    counts = collections.Counter(job_id for per in handed for job_id in per)
    assert {job_id: n for job_id, n in counts.items() if n > 1} == {}
    assert sorted(counts) == ids
    assert all(len(per) > 0 for per in handed)  # every dispatcher took a share
    assert solo_raw.zcard("rache:queue") == 0


# Shutdown ---------------------------------------------------------------------------------

CHILD = """
import asyncio, sys, time
import redis, redis.asyncio
from rache import Dispatcher, Scheduler
from rache.aio import AsyncDispatcher, AsyncScheduler

url, kind = sys.argv[1], sys.argv[2]

def handler(job):
    print(job["id"], flush=True)
    time.sleep(0.05)

if kind == "sync":
    Dispatcher(handler, scheduler=Scheduler(redis.Redis.from_url(url)), batch=10).run()
else:
    async def main():
        aclient = redis.asyncio.Redis.from_url(url)
        await AsyncDispatcher(handler, scheduler=AsyncScheduler(aclient), batch=10).run()
        await aclient.aclose()
    asyncio.run(main())
print("stopped", flush=True)
"""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_batch_in_hand_and_exits_0(
    solo: testing.RedisServer, solo_raw: Any, kind: str, sig: int
) -> None:
    Scheduler(solo_raw, "rache:").schedule_jobs([(f"job-{i:02}", -1) for i in range(25)])
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, solo.url, kind],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    first = child.stdout.readline()  # the first job of the first batch is being handled
    assert first.startswith("job-00")
    child.send_signal(sig)
    out, _ = child.communicate(timeout=20)
    assert child.returncode == 0
    lines = [first.strip(), *out.split()]
    assert lines == [f"job-{i:02}" for i in range(10)] + ["stopped"]
    assert solo_raw.zcard("rache:queue") == 15  # the rest was never claimed


@pytest.mark.parametrize("kind", KINDS)
def test_a_signal_wakes_a_sleeping_dispatcher(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, solo.url, kind],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while solo_raw.pubsub_numsub("rache:wakeup")[0][1] < 1:  # subscribed, so claimed: asleep
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    started = time.monotonic()
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=20)
    assert child.returncode == 0 and out.split() == ["stopped"]
    assert time.monotonic() - started < 2  # not the 30 s of its sleep


# Outages ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_redis_restart_is_survived_and_logged_once(
    solo: testing.RedisServer,
    tmp_path: Path,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if solo.spec.kind != "binary":
        pytest.skip(f"needs a redis-server binary to restart, not {solo.spec.describe()}")
    own = testing.start(solo.spec, tmp_path)
    caplog.set_level(logging.WARNING, logger="rache")
    seen, handler = recorder()
    running = Running(kind, own.url, handler, max_sleep=30, backoff=0.05, max_backoff=0.5)
    try:
        client = own.client()
        Scheduler(client, "rache:").schedule_job("before", 0)
        running.wait_for(lambda: len(seen) == 1)
        client.close()
        own.stop()
        time.sleep(1.2)  # down for 1.2 s: several failed attempts, one log line
        own = testing.start(solo.spec, tmp_path, port=own.port)
        client = own.client()
        time.sleep(0.8)  # the backoff (at most 0.5 s) brings it back, subscribed anew
        Scheduler(client, "rache:").schedule_job("after", 0.2)
        running.wait_for(lambda: len(seen) == 2)
        client.close()
    finally:
        running.stop()
        own.stop()
    job, handed = seen[1]
    assert job["id"] == "after"
    assert job.due_at is not None
    assert handed - job.due_at < 0.1  # woken by the wakeup channel, so resubscribed
    messages = [r.getMessage() for r in caplog.records if r.name == "rache.dispatch"]
    assert len([m for m in messages if "unreachable" in m]) == 1, messages
    assert len([m for m in messages if "reachable again" in m]) == 1, messages
    assert running.dispatcher.core.errors >= 3  # it retried, backing off, without spinning
    assert running.dispatcher.core.errors < 60


def test_the_rache_module_exports_the_dispatcher() -> None:
    assert rache.Dispatcher is Dispatcher and rache.Job is Job
    assert {"Dispatcher", "Job"} <= set(rache.__all__)


@pytest.mark.parametrize("kind", KINDS)
def test_recurring_occurrences_go_through_the_dispatcher(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    # every-N moves in the claim itself; cron needs the advance step after it.
    sched = Scheduler(solo_raw, "rache:")
    sched.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)
    sched.schedule_recurring("every", Every(3600), start=0)
    handed: List[Job] = []
    cls = Dispatcher if kind == "sync" else AsyncDispatcher
    run_sync_or_async(kind, lambda s: cls(handed.append, scheduler=s, max_sleep=1), solo.url)
    assert sorted(job["id"] for job in handed) == ["cron", "every"]
    now = solo_raw.time()[0]
    assert sched.job_details("cron")["schedule_at"] > now  # advanced: next January 1st
    assert sched.job_details("every")["schedule_at"] > now
    handed.clear()
    run_sync_or_async(kind, lambda s: cls(handed.append, scheduler=s, max_sleep=1), solo.url)
    assert handed == []  # each occurrence once


@pytest.mark.parametrize("kind", KINDS)
def test_a_cron_job_due_within_its_lease_is_handed_out_on_time(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    # Every second: each claim leases the job 5 s ahead, and its advance moves it back to
    # the next second; the dispatcher must sleep until then, not until the lease ends.
    Scheduler(solo_raw, "rache:").schedule_recurring("tick", Cron("* * * * * *"))
    seen, handler = recorder()
    running = Running(kind, solo.url, handler, max_sleep=30)
    try:
        running.wait_for(lambda: len(seen) >= 3, timeout=10)
    finally:
        running.stop()
    lags = [handed - job.due_at for job, handed in seen if job.due_at is not None]
    assert len(lags) == len(seen) >= 3
    assert max(lags) < 0.25, lags  # a few ms; the lease's 5 s without the fix
