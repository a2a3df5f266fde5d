"""A retry that comes after its call's record expired (issue #25, item 1).

The fault proxy (tests/support/faults.py) lets a script call reach Redis, makes the
contending move (another process claims, or schedules), then holds the reply for
``HOLD`` seconds, longer than the record's life (``Scheduler(call_record_ttl=TTL)``, short
so that no test waits a minute), and drops it. Four calls, as the issue found them:
``schedule_job('A', 0)``, a put-back, ``delete_job('D1')``, a claim.

- A client rache makes (``REDIS_URL``, ``config.client_options``) times out well within
  the record's life: its retry is answered from the record, and each case holds.
- A client given with ``socket_timeout=None`` waits out the hold: rache warns about it
  when the scheduler is made, naming ``call_record_ttl`` and ``socket_timeout``, and the
  retry runs the call again (the harm the warning is about, shown so that the first kind
  of test is known to reach past the record's life).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from rache import config, scripts
from rache.aio import AsyncScheduler
from rache.keys import shard_of
from rache.scheduler import Scheduler
from tests.support import harness as testing
from tests.support.faults import Contender, Proxy, Target, handed_name
from tests.support.shells import LoopThread
from tests.test_lost_replies import contender  # noqa: F401 (the session's other process)

#: The record's life in these tests, and how long the proxy holds a reply (longer).
TTL = 2
HOLD = 3.5

CASES = [
    (topology, shell, client)
    for topology in ("single", "sharded")
    for shell in ("sync", "asyncio")
    for client in ("made", "given")
]


class Case:
    """One test's schedule: a proxy in front of the server, the scheduler under test."""

    def __init__(
        self,
        topology: str,
        shell: str,
        client: str,
        server: testing.RedisServer,
        other: Contender,
        loop: LoopThread,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.shell, self.client, self.loop, self.contender = shell, client, loop, other
        self.proxy = Proxy(server.host, server.port)
        self.direct = server.client()
        self.direct.flushdb()
        shards = 3 if topology == "sharded" else 1
        self.target = Target(server.url, "rache:", shards)
        self.setup = Scheduler(self.direct, "rache:", shards=shards)
        other.handed = []
        connection: Any = None
        if client == "made":  # the client rache makes, from REDIS_URL
            monkeypatch.setenv("REDIS_URL", self.proxy.url)
        elif shell == "sync":
            connection = redis.Redis(
                host=self.proxy.host, port=self.proxy.port, socket_timeout=None,
                retry=Retry(NoBackoff(), 3),
            )  # fmt: skip
        else:
            connection = redis.asyncio.Redis(
                host=self.proxy.host, port=self.proxy.port, socket_timeout=None,
                retry=AsyncRetry(NoBackoff(), 3),
            )  # fmt: skip
        kind: Any = Scheduler if shell == "sync" else AsyncScheduler
        self.sched = kind(connection, "rache:", shards=shards, call_record_ttl=TTL)

    def run(self, result: Any) -> Any:
        return self.loop.run(result) if self.shell == "asyncio" else result

    def hold(self, move: Callable[[], Any] = lambda: None) -> Callable[[], None]:
        """A hook: the contending move, then the reply held past the record's life."""

        def hook() -> None:
            move()
            time.sleep(HOLD)

        return hook

    def claim(self, limit: int) -> List[str]:
        jobs = self.sched.pending_jobs(limit=limit)
        if self.shell == "sync":
            return [handed_name(job) for job in jobs]

        async def consume() -> List[str]:
            return [handed_name(job) async for job in jobs]

        handed: List[str] = self.run(consume())
        return handed

    def first_then_close(self) -> str:
        jobs = self.sched.pending_jobs()
        if self.shell == "sync":
            first = next(jobs)
            jobs.close()
            return handed_name(first)

        async def one() -> str:
            first = await jobs.__anext__()
            await jobs.aclose()
            return handed_name(first)

        first_name: str = self.run(one())
        return first_name

    def close(self) -> None:
        connection = self.sched.connection
        if self.shell == "asyncio":
            self.loop.run(connection.aclose())
        else:
            connection.close()
        self.proxy.close()
        self.direct.close()


@pytest.fixture
def case(
    request: pytest.FixtureRequest,
    solo: testing.RedisServer,
    contender: Contender,  # noqa: F811
    loop_thread: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Case]:
    topology, shell, client = request.param
    caplog.set_level(logging.WARNING, logger="rache.scheduler")
    made = Case(topology, shell, client, solo, contender, loop_thread, monkeypatch)
    yield made
    made.close()


def cases() -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES], indirect=True)


def counts(handed: List[str]) -> collections.Counter[str]:
    return collections.Counter(occurrence.rsplit(":", 1)[0] for occurrence in handed)


def spread(stem: str, shards: int, per_shard: int) -> List[str]:
    ids: List[str] = []
    seen = [0] * shards
    i = 0
    while min(seen) < per_shard:
        job_id, i = f"{stem}{i}", i + 1
        shard = shard_of(job_id.encode(), shards)
        if seen[shard] < per_shard:
            seen[shard] += 1
            ids.append(job_id)
    return ids


def warned(case: Case, caplog: pytest.LogCaptureFixture) -> bool:
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    texts = [r.getMessage() for r in records if r.name == "rache.scheduler"]
    return any("call_record_ttl=2 s" in t and "socket_timeout=None" in t for t in texts)


def check_warning(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    """A given client without a socket timeout is warned about; the one rache makes is not."""
    assert warned(case, caplog) == (case.client == "given")
    assert case.sched.call_record_ttl == TTL


@cases()
def test_schedule_job_retried_late(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    check_warning(case, caplog)
    case.proxy.faults.arm(scripts.SCHEDULE, case.hold(lambda: case.contender.claim(case.target)))
    case.run(case.sched.schedule_job("A", 0))
    case.proxy.faults.check(1)
    case.contender.drain(case.target)
    handed = counts(case.contender.handed)["A"]
    assert handed == (1 if case.client == "made" else 2), case.contender.handed


@cases()
def test_put_back_retried_late(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    ids = spread("p", len(case.sched.shards), 3 if len(case.sched.shards) > 1 else 6)
    for n, job_id in enumerate(ids):
        case.setup.schedule_job(job_id, -60 + n)
    case.proxy.faults.arm(scripts.RELEASE, case.hold(lambda: case.contender.claim(case.target)))
    first = case.first_then_close()
    case.proxy.faults.check(1)
    assert case.contender.handed, "the poller in between got the jobs put back"
    case.contender.drain(case.target)
    twice = [j for j, n in counts([first, *case.contender.handed]).items() if n > 1]
    if case.client == "made":
        assert not twice and set(counts([first, *case.contender.handed])) == set(ids)
    else:  # the put-back ran again: the jobs claimed in between went back, out again
        assert twice


@cases()
def test_delete_retried_late(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    case.setup.schedule_job("D1", 3600)
    case.proxy.faults.arm(
        scripts.DELETE, case.hold(lambda: case.contender.schedule(case.target, "D1", -1))
    )
    case.run(case.sched.delete_job("D1"))
    case.proxy.faults.check(1)
    handed = counts(case.contender.drain(case.target))["D1"]
    assert handed == (1 if case.client == "made" else 0)  # given: the new run deleted too


@cases()
def test_claim_retried_late(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    ids = spread("c", len(case.sched.shards), 2 if len(case.sched.shards) > 1 else 6)
    for n, job_id in enumerate(ids):
        case.setup.schedule_job(job_id, -60 + n)
    case.proxy.faults.arm(scripts.CLAIM, case.hold())
    ours = case.claim(3)
    case.proxy.faults.check(1)
    case.contender.drain(case.target)
    everything = counts([*ours, *case.contender.handed])
    if case.client == "made":
        assert ours and sorted(everything) == sorted(ids) and set(everything.values()) == {1}
    else:  # the retry claimed a second batch: the first is lost
        assert len(everything) < len(ids)


def test_a_client_rache_makes_retries_within_the_records_life() -> None:
    for ttl in (1, TTL, 60, 3600):
        for asyncio in (False, True):
            client = (config.async_client if asyncio else config.client)("redis://h/0", ttl)
            policy = config.retry_policy(client)
            assert 0 < policy.worst <= ttl / 2, (ttl, policy)
            assert policy.socket_timeout is not None and policy.retries > 0


def policy_of(**kwargs: Any) -> Tuple[float, config.RetryPolicy]:
    policy = config.retry_policy(redis.Redis(**kwargs))
    return policy.worst, policy


def test_the_worst_case_of_a_client_given() -> None:
    assert policy_of(socket_timeout=None)[0] == float("inf")  # redis-py 8's Retry, no timeout
    assert policy_of(socket_timeout=None, retry=Retry(NoBackoff(), 0))[0] == 0  # never again
    assert (
        policy_of(socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 3))[0]
        == 4 * 3
    )
    assert policy_of(socket_timeout=1, retry=Retry(NoBackoff(), -1))[0] == float("inf")


def test_a_client_given_sets_the_records_life_unless_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rache.scheduler")
    slow = redis.Redis(socket_timeout=10, socket_connect_timeout=10, retry=Retry(NoBackoff(), 9))
    assert Scheduler(slow).call_record_ttl == 400  # twice 10 x 20 s
    assert not caplog.records
    assert Scheduler(slow, call_record_ttl=100).call_record_ttl == 100
    assert len(caplog.records) == 1 and "up to 200 s" in caplog.records[0].getMessage()
    Scheduler(slow, call_record_ttl=100)
    assert len(caplog.records) == 1  # once per client
    quick = redis.Redis(socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 2))
    assert Scheduler(quick).call_record_ttl == 60
    unbounded = redis.Redis(socket_timeout=None)
    assert Scheduler(unbounded).call_record_ttl == 60
    assert len(caplog.records) == 2 and "without bound" in caplog.records[1].getMessage()


@pytest.mark.parametrize("bad", [0, 0.5, 86401, float("nan"), float("inf")])
def test_call_record_ttl_out_of_bounds_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="call_record_ttl must be from 1 to 86400 seconds"):
        Scheduler(redis.Redis(), call_record_ttl=bad)


def test_call_record_ttl_of_a_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="call_record_ttl must be a number of seconds"):
        Scheduler(redis.Redis(), call_record_ttl="60")  # type: ignore[arg-type]
