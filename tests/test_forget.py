"""One-shot jobs that leave nothing behind: ``forget=True`` and ``rache orphans``, forget-3.lua."""

from __future__ import annotations

import asyncio
import json
from typing import Any, List

import pytest
import redis
import redis.asyncio
from click.testing import CliRunner

from rache import Dispatcher, Every, Job, Scheduler, admin
from rache.aio import AsyncDispatcher, AsyncScheduler
from rache.cli import main
from rache.scripts import SCRIPTS
from tests.support import harness as testing


def job_keys(raw: Any, pattern: str = "*job:*") -> List[bytes]:
    return sorted(raw.keys(pattern))


@pytest.mark.parametrize("shards", [1, 3])
def test_forget_deletes_the_data_of_jobs_handed_out_unless_scheduled_again(
    solo_raw: Any, shards: int
) -> None:
    scheduler = Scheduler(solo_raw, "rache:", shards=shards)
    scheduler.schedule_jobs(
        [(f"job-{i}", -1, {"n": i}) for i in range(20)] + [("keep", -1, {"k": 1})]
    )
    scheduler.schedule_job("later", 3600, x=1)  # not due: untouched

    def handler(job: Job) -> None:
        if job["id"] == "keep":  # scheduled again while its batch is handed out
            scheduler.schedule_job("keep", 600)

    dispatcher = Dispatcher(handler, scheduler=scheduler, batch=7, forget=True)
    dispatcher.run(until_idle=True)
    assert dispatcher.handled == 21
    left = {key.split(b"job:")[1] for key in job_keys(solo_raw)}
    assert left == {b"keep", b"later"}
    kept = scheduler.job_details("keep")
    assert kept["k"] == 1 and kept["schedule_at"] is not None


def test_without_forget_the_data_stays_as_in_0_3_1(solo_raw: Any) -> None:
    scheduler = Scheduler(solo_raw, "rache:")
    scheduler.schedule_jobs([(f"job-{i}", -1, {"n": i}) for i in range(5)])
    Dispatcher(lambda job: None, scheduler=scheduler).run(until_idle=True)
    assert len(job_keys(solo_raw)) == 5


def test_forget_keeps_rescheduled_and_recurring_jobs(solo_raw: Any) -> None:
    scheduler = Scheduler(solo_raw, "rache:")
    scheduler.schedule_job("periodic", -1, n=1)
    scheduler.schedule_recurring("beat", Every(3600), start=0, data={"b": 1})
    Dispatcher(lambda job: None, scheduler=scheduler, reschedule_in=60, forget=True).run(
        until_idle=True
    )
    assert job_keys(solo_raw) == [b"rache:job:beat", b"rache:job:periodic"]


def test_a_failed_job_is_forgotten_unless_on_error_schedules_it_again(solo_raw: Any) -> None:
    scheduler = Scheduler(solo_raw, "rache:")
    scheduler.schedule_jobs([("retry", -1, {"tries": 0}), ("drop", -1, {"tries": 0})])

    def handler(job: Job) -> None:
        raise RuntimeError("down")

    def on_error(job: Job, exc: BaseException) -> None:
        if job["id"] == "retry":
            scheduler.schedule_job("retry", 60, tries=job["tries"] + 1)

    Dispatcher(handler, scheduler=scheduler, on_error=on_error, forget=True).run(until_idle=True)
    assert job_keys(solo_raw) == [b"rache:job:retry"]
    assert scheduler.job_details("retry")["tries"] == 1


def test_the_async_dispatcher_forgets_too(solo: testing.RedisServer, solo_raw: Any) -> None:
    Scheduler(solo_raw, "rache:").schedule_jobs([(f"job-{i}", -1, {"n": i}) for i in range(9)])

    async def main_() -> None:
        client = redis.asyncio.Redis.from_url(solo.url)
        scheduler = AsyncScheduler(client, "rache:")
        await AsyncDispatcher(lambda job: None, scheduler=scheduler, batch=4, forget=True).run(
            until_idle=True
        )
        await client.aclose()

    asyncio.run(main_())
    assert job_keys(solo_raw) == []


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_forget_jobs_of_a_sharded_schedule_go_to_each_job_s_shard(
    solo: testing.RedisServer, solo_raw: Any, kind: str
) -> None:
    scheduler = Scheduler(solo_raw, "rache:", shards=3)
    scheduler.schedule_jobs([(f"job-{i}", -1, {"n": i}) for i in range(12)])
    jobs = list(scheduler.pending_jobs())
    assert len({scheduler.layout.index_of(job.raw_id) for job in jobs}) == 3
    scheduler.schedule_job("job-5", 60)  # scheduled again: kept
    if kind == "sync":
        forgotten = scheduler.forget_jobs(job["id"] for job in jobs)  # ids, a generator
    else:

        async def forget() -> int:
            client = redis.asyncio.Redis.from_url(solo.url)
            try:
                return await AsyncScheduler(client, "rache:", shards=3).forget_jobs(jobs)
            finally:
                await client.aclose()

        forgotten = asyncio.run(forget())
    assert forgotten == 11
    assert [key.split(b"job:")[1] for key in job_keys(solo_raw)] == [b"job-5"]


def test_forget_on_a_cluster(cluster_nodes: testing.RedisClusterServers) -> None:
    client = cluster_nodes.client()
    client.flushall()
    try:
        for scheduler in (Scheduler(client, "{one}:"), Scheduler(client, "many:", shards=3)):
            scheduler.schedule_jobs([(f"job-{i}", -1, {"n": i}) for i in range(30)])
            scheduler.schedule_job("later", 3600, x=1)
            Dispatcher(lambda job: None, scheduler=scheduler, batch=8, forget=True).run(
                until_idle=True
            )
            keys: List[Any] = []
            for node in cluster_nodes.nodes:
                plain = node.client()
                keys += plain.keys("*job:*")
                plain.close()
            assert [key.split(b"job:")[1] for key in keys] == [b"later"]
            # data left behind (claimed without forget): found and removed across the nodes
            scheduler.schedule_jobs([("left-1", -1, {"n": 1}), ("left-2", -1, {"n": 2})])
            assert len(list(scheduler.pending_jobs())) == 2
            shards = len(scheduler.shards)
            found = admin.orphans(client, scheduler.keys.prefix, shards=shards, delete=True)
            assert sorted(found) == [b"left-1", b"left-2"]
            assert (
                list(admin.orphans(client, scheduler.keys.prefix, shards=len(scheduler.shards)))
                == []
            )
            client.flushall()
    finally:
        client.close()


def test_the_script_spares_a_scheduled_job_and_can_only_list(solo_raw: Any) -> None:
    solo_raw.zadd("p:queue", {"scheduled": 1})
    solo_raw.hset("p:job:scheduled", "a", 1)
    solo_raw.hset("p:job:gone", "a", 1)
    solo_raw.hset("p:lastrun", mapping={"gone": "run", "scheduled": "run"})
    solo_raw.rpush("p:history:gone", "older")
    forget = SCRIPTS["forget"]
    named = [b"p:queue", b"p:lastrun", b"p:call:"]
    args = [b"p:job:", b"0", b"p:history:", b"scheduled", b"gone", b"never"]
    assert forget(solo_raw, named, args) == [b"gone"]
    assert solo_raw.exists("p:job:gone") == 1  # '0': listed, not deleted
    args[1] = b"1"
    assert forget(solo_raw, named, args) == [b"gone"]
    assert job_keys(solo_raw, "p:job:*") == [b"p:job:scheduled"]
    assert solo_raw.hlen("p:lastrun") == 2 and solo_raw.exists("p:history:gone")  # runs stay
    solo_raw.hset("p:job:gone", "a", 1)
    args[1] = b"2"  # a reshard's move: the runs too
    assert forget(solo_raw, named, args) == [b"gone"]
    assert solo_raw.hkeys("p:lastrun") == [b"scheduled"] and not solo_raw.exists("p:history:gone")
    solo_raw.set("p:wrong", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE p:wrong holds a string"):
        forget(solo_raw, [b"p:wrong", b"p:lastrun", b"p:call:"], args)


# rache orphans ------------------------------------------------------------------------------


def make_orphans(scheduler: Scheduler) -> None:
    """Three handed-out jobs whose data stays (0.3.1's way), and two scheduled ones with data."""
    scheduler.schedule_jobs(
        [
            ("a", -3, {"n": 1}),
            ("b", -2, {"n": 2}),
            ("c\x1b[31m", -1, {"n": 3}),
            ("d", 60, {"n": 4}),
            ("e", 60, {"n": 5}),
        ]
    )
    assert len(list(scheduler.pending_jobs())) == 3


@pytest.mark.parametrize("shards", [1, 3])
def test_orphans_lists_then_deletes_the_data_of_jobs_no_longer_scheduled(
    server: testing.RedisServer, raw: Any, shards: int
) -> None:
    make_orphans(Scheduler(raw, "rache:", shards=shards))
    env = {"REDIS_URL": server.url, "RACHE_REDIS_PREFIX": "rache:"}
    args = ["--shards", str(shards), "orphans", "--batch", "2"]  # SCAN pages of 2
    runner = CliRunner()
    listed = runner.invoke(main, args, env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert sorted(lines) == ["a", "b", "c\\x1b[31m"]  # escaped: no colour on a terminal
    assert "found 3 job(s) with data and no schedule entry" in listed.stderr
    as_json = runner.invoke(main, [*args, "--json"], env=env)
    assert sorted(json.loads(line)["id"] for line in as_json.stdout.splitlines()) == [
        "a", "b", "c\x1b[31m"
    ]  # fmt: skip
    assert len(job_keys(raw)) == 5  # listing deletes nothing
    deleted = runner.invoke(main, [*args, "--delete"], env=env)
    assert deleted.exit_code == 0 and "removed the data of 3 job(s)" in deleted.stderr
    assert sorted(key.split(b"job:")[1] for key in job_keys(raw)) == [b"d", b"e"]
    assert runner.invoke(main, args, env=env).stdout == ""


def test_orphans_of_a_sharded_schedule_without_shards_is_refused(
    server: testing.RedisServer, raw: Any
) -> None:
    make_orphans(Scheduler(raw, "rache:", shards=3))
    result = CliRunner().invoke(main, ["--url", server.url, "orphans", "--delete"])
    assert result.exit_code == 2 and "pass --shards 3" in result.output
    assert len(job_keys(raw)) == 5
