"""Live pollers and health: announce, list, lapse, withdraw; doctor's exit codes; gauges.

Real servers and real processes: a ``rache dispatch`` killed with SIGKILL leaves
``pollers()`` within its time to live, one stopped with SIGTERM at once; an idle one writes
at most once every few seconds (counted with INFO commandstats).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from click.testing import CliRunner

import rache
from rache import Dispatcher, Poller, Scheduler
from rache.aio import AsyncDispatcher, AsyncScheduler
from rache.cli import main
from rache.constants import ANNOUNCE_EVERY, POLLER_TTL
from rache.pollers import Announcer
from tests.support import harness as testing
from tests.support.shells import LoopThread

ROOT = Path(__file__).resolve().parent.parent


def poller(name: str = "host-a:1", **fields: Any) -> Poller:
    values = dict(
        name=name, kind="dispatcher", host="host-a", pid=1, version="1.0", started=1.5e9,
        last_claim=None, handed_out=3, failures=1,
    )  # fmt: skip
    values.update(fields)
    return Poller(**values)  # type: ignore[arg-type]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


# -- the API, both shells, every client kind -------------------------------------------------


def test_announce_lists_a_poller_until_withdrawn(sched: Any, raw: Any) -> None:
    assert sched.pollers() == []
    expires = sched.announce(poller())
    now = sched.server_time()
    assert now + POLLER_TTL - 1 < expires <= now + POLLER_TTL + 0.01
    sched.announce(poller("host-b:2", kind="rache dispatch", last_claim=1.6e9))
    first, second = sched.pollers()
    assert first[:9] == poller()[:9]
    assert second.name == "host-b:2" and second.kind == "rache dispatch"
    assert second.last_claim == 1.6e9
    assert first.expires == expires and first.announced == pytest.approx(expires - 60, abs=1e-3)
    assert sched.withdraw("host-a:1") is True
    assert sched.withdraw("host-a:1") is False
    assert [p.name for p in sched.pollers()] == ["host-b:2"]
    assert sched.withdraw("host-b:2") is True
    assert raw.exists(b"rache:pollers") == 0  # the last one out deletes the key


def test_an_entry_lapses_after_its_ttl_without_cleanup(sched: Any, raw: Any) -> None:
    sched.announce(poller("short:1"), ttl=0.3)
    sched.announce(poller("long:2"))
    assert [p.name for p in sched.pollers()] == ["long:2", "short:1"]
    time.sleep(0.4)
    assert [p.name for p in sched.pollers()] == ["long:2"]  # gone, though still stored
    assert raw.hexists(b"rache:pollers", b"short:1")
    raw.hset(b"rache:pollers", b"", b"0")  # the prune is due: the next announce prunes
    sched.announce(poller("long:2"))
    assert not raw.hexists(b"rache:pollers", b"short:1")


def test_the_default_ttl_arithmetic(sched: Any, raw: Any) -> None:
    # 60 s after the last announce; announces 5 s apart: 11 may be missed before it lapses.
    assert POLLER_TTL == 60 and ANNOUNCE_EVERY == 5
    assert Announcer("dispatcher").every() == 5 and Announcer("x", ttl=3).every() == 1
    sched.announce(poller())
    now_ms = sched.server_time() * 1000
    stored = raw.hget(b"rache:pollers", b"host-a:1")
    expiry = int(stored.split(b"|", 1)[0])
    assert now_ms + 60_000 - 1000 < expiry <= now_ms + 60_000 + 1


def test_bad_input_is_refused_and_writes_nothing(sched: Any, raw: Any) -> None:
    with pytest.raises(TypeError, match=r"rache\.Poller"):
        sched.announce({"name": "x"})
    with pytest.raises(TypeError, match="name"):
        sched.announce(poller(""))
    with pytest.raises(ValueError, match="pid"):
        sched.announce(poller(pid=-1))
    with pytest.raises(ValueError, match="ttl"):
        sched.announce(poller(), ttl=0)
    with pytest.raises(ValueError, match="late"):
        sched.health(late=-1)
    assert raw.keys(b"*") == []


def test_health_names_each_problem(sched: Any) -> None:
    healthy = sched.health()
    assert healthy.ok and healthy.problems == [] and healthy.pollers == []
    sched.schedule_job("old", -600)
    sched.schedule_job("new", -1)
    verdict = sched.health(late=300)
    assert not verdict.ok
    assert [(p.kind, p.job_id) for p in verdict.problems] == [
        ("no live poller", None),
        ("late", "old"),
    ]
    assert "2 jobs are due" in verdict.problems[0].message
    assert verdict.stats.due == 2
    sched.announce(poller())
    verdict = sched.health(late=3600)
    assert verdict.ok and [p.name for p in verdict.pollers] == ["host-a:1"]
    assert [p.kind for p in sched.health(late=300).problems] == ["late"]


# -- shards and Redis Cluster ----------------------------------------------------------------


def test_sharded_schedule_on_a_cluster(cluster_nodes: testing.RedisClusterServers) -> None:
    client = cluster_nodes.client()
    try:
        client.flushall()
        sched = Scheduler(client, "rache:", shards=3)
        sched.announce(poller())
        assert [p.name for p in sched.pollers()] == ["host-a:1"]
        sched.schedule_jobs([(f"j{i}", -700) for i in range(9)])
        verdict = sched.health(late=600)
        assert [p.kind for p in verdict.problems] == ["late"]
        assert verdict.problems[0].job_id.startswith("j")
        assert sched.withdraw("host-a:1")
        assert [p.kind for p in sched.health(late=600).problems] == ["no live poller", "late"]
    finally:
        client.close()


def test_sharded_schedule_on_one_server(raw: Any, server: testing.RedisServer) -> None:
    sched = Scheduler(raw, "rache:", shards=4)
    sched.announce(poller())
    assert raw.exists(b"rache:pollers")  # one key under the schedule's own prefix
    assert [p.name for p in Scheduler(raw, "rache:", shards=4).pollers()] == ["host-a:1"]


# -- the loops announce themselves -----------------------------------------------------------


def test_a_dispatcher_is_listed_while_it_runs(solo_raw: Any) -> None:
    sched = Scheduler(solo_raw)
    sched.schedule_job("a", -1)
    dispatcher = Dispatcher(lambda job: None, scheduler=sched, max_sleep=0.2)
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        [found] = wait_for(sched.pollers, 5, "the dispatcher never announced itself")
        assert found.kind == "dispatcher" and found.pid == os.getpid()
        assert found.version == rache.__version__
        # its counts come with a later announce (every few seconds)
        found = wait_for(
            lambda: [p for p in sched.pollers() if p.handed_out == 1],
            ANNOUNCE_EVERY + 3,
            "the dispatcher's counts were never announced",
        )[0]
        assert found.last_claim is not None and found.failures == 0
    finally:
        dispatcher.stop()
        thread.join(10)
    assert sched.pollers() == []  # a clean stop withdraws at once


def test_an_async_dispatcher_is_listed_while_it_runs(
    solo: testing.RedisServer, solo_raw: Any, loop_thread: LoopThread
) -> None:
    client = redis.asyncio.Redis.from_url(solo.url)
    dispatcher = AsyncDispatcher(
        lambda job: None, scheduler=AsyncScheduler(client), max_sleep=0.2, kind="worker"
    )
    sched = Scheduler(solo_raw)
    future = __import__("asyncio").run_coroutine_threadsafe(dispatcher.run(), loop_thread.loop)
    try:
        [found] = wait_for(sched.pollers, 5, "the async dispatcher never announced itself")
        assert found.kind == "worker"
    finally:
        dispatcher.stop()
        future.result(10)
        loop_thread.run(client.aclose())
    assert sched.pollers() == []


def test_the_rq_runner_and_celery_beat_say_what_they_are(solo: testing.RedisServer) -> None:
    from rache.rq import Scheduler as RqScheduler

    rq_dispatcher = RqScheduler(connection=redis.Redis.from_url(solo.url)).dispatcher()
    assert rq_dispatcher.core.announcer.kind == "rq runner"
    from rache.celery import BeatScheduler
    from tests.test_celery_beat import PREFIX, app_with

    app = app_with(rache_redis_url=solo.url, rache_prefix=PREFIX, result_expires=None)
    app.conf.beat_schedule = {}
    beat = BeatScheduler(app)
    sched = Scheduler(redis.Redis.from_url(solo.url), PREFIX)
    try:
        beat.tick()
        [found] = sched.pollers()
        assert found.kind == "celery beat"
        # its ticks are up to max_interval (25 s) apart: its entry outlives two of them,
        # and a beat killed without a word leaves the list within a minute
        assert beat.max_interval == 25
        assert found.expires is not None and found.announced is not None
        assert found.expires - found.announced == POLLER_TTL == 60
    finally:
        beat.close()
    assert sched.pollers() == []


def _dispatch(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rache", "--url", url, "dispatch", "--call", "json:dumps", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_rache_dispatch_killed_leaves_within_its_ttl(
    solo: testing.RedisServer, solo_raw: Any
) -> None:
    sched = Scheduler(solo_raw)
    process = _dispatch(solo.url, "--poller-ttl", "2s")
    try:
        [found] = wait_for(sched.pollers, 20, "rache dispatch never announced itself")
        assert found.kind == "rache dispatch" and found.pid == process.pid
        assert (found.expires or 0) - (found.announced or 0) == 2
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed = time.monotonic()
        wait_for(lambda: sched.pollers() == [], 4, "a killed rache dispatch stayed listed")
        assert time.monotonic() - killed <= 2.5
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_rache_dispatch_stopped_leaves_at_once(solo: testing.RedisServer, solo_raw: Any) -> None:
    sched = Scheduler(solo_raw)
    process = _dispatch(solo.url)  # the default ttl: 60 s
    try:
        [found] = wait_for(sched.pollers, 20, "rache dispatch never announced itself")
        assert (found.expires or 0) - (found.announced or 0) == POLLER_TTL
        result = CliRunner().invoke(main, ["--url", solo.url, "pollers"])
        assert result.exit_code == 0 and "rache dispatch" in result.output
        assert str(process.pid) in result.output and "NAME" in result.output
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert sched.pollers() == []
        assert solo_raw.exists(b"rache:pollers") == 0
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_an_idle_rache_dispatch_writes_once_every_few_seconds(
    solo: testing.RedisServer, solo_raw: Any
) -> None:
    sched = Scheduler(solo_raw)
    process = _dispatch(solo.url, "--max-sleep", "1")
    try:
        wait_for(sched.pollers, 20, "rache dispatch never announced itself")
        time.sleep(1)
        solo_raw.config_resetstat()
        window = 3 * ANNOUNCE_EVERY
        time.sleep(window)
        stats = solo_raw.info("commandstats")
        writes = sum(
            stats.get(f"cmdstat_{command}", {}).get("calls", 0)
            for command in ("hset", "hdel", "del", "zadd", "zrem", "set")
        )
        # 3 announces in 15 s, give or take one at either edge, and one prune's field
        assert 2 <= stats["cmdstat_hset"]["calls"] <= 5, stats.get("cmdstat_hset")
        assert writes == stats["cmdstat_hset"]["calls"], stats
        assert stats["cmdstat_evalsha"]["calls"] <= 3 * 2 + window + 2  # announces + claims
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)


# -- rache pollers, rache doctor, the gauges ----------------------------------------------------


@pytest.fixture
def durable(raw: Any) -> Iterator[None]:
    """The server as doctor wants it (noeviction, appendonly), so only the schedule judges."""
    raw.config_set("maxmemory-policy", "noeviction")
    raw.config_set("appendonly", "yes")
    yield
    raw.config_set("appendonly", "no")


def doctor(server: testing.RedisServer, *args: str) -> Any:
    return CliRunner().invoke(main, ["--url", server.url, "doctor", *args])


def test_doctor_exit_codes(server: testing.RedisServer, raw: Any, durable: None) -> None:
    sched = Scheduler(raw)
    healthy = doctor(server)
    assert healthy.exit_code == 0, healthy.output
    assert "ok   schedule healthy: 0 due, 0 live pollers" in healthy.output
    sched.schedule_job("stuck", -30)
    unattended = doctor(server)
    assert unattended.exit_code == 1, unattended.output
    assert "FAIL 1 job is due and no poller is alive" in unattended.output
    sched.announce(poller())
    assert doctor(server).exit_code == 0
    sched.schedule_job("stuck", -600)
    late = doctor(server, "--late", "5m")
    assert late.exit_code == 1, late.output
    assert "FAIL job 'stuck' has been due for 10m" in late.output
    assert doctor(server, "--late", "1h").exit_code == 0
    assert doctor(server, "--late", "soon").exit_code == 2


def test_rache_pollers_json_and_empty(server: testing.RedisServer, raw: Any) -> None:
    empty = CliRunner().invoke(main, ["--url", server.url, "pollers"])
    assert empty.exit_code == 0 and "no live poller" in empty.output
    Scheduler(raw).announce(poller())
    listed = CliRunner().invoke(main, ["--url", server.url, "pollers", "--json"])
    assert listed.exit_code == 0
    assert '"name": "host-a:1"' in listed.output and '"handed_out": 3' in listed.output


def test_the_gauges_read_the_schedule(raw: Any) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from rache.service import ScheduleGauges

    sched = Scheduler(raw)
    registry = prometheus_client.CollectorRegistry()
    registry.register(ScheduleGauges(sched))
    sched.schedule_job("a", -100)
    sched.announce(poller())
    text = prometheus_client.generate_latest(registry).decode()
    assert "rache_due_jobs 1.0" in text and "rache_live_pollers 1.0" in text
    gauge = re.search(r"^rache_oldest_due_age_seconds (\S+)$", text, re.M)
    assert gauge is not None
    age = float(gauge.group(1))
    assert 100 <= age < 110
    down = ScheduleGauges(Scheduler(redis.Redis(port=1), "rache:"))
    assert down.collect() == []  # Redis away: no gauges, no failed scrape
