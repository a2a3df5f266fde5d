"""Recurring jobs under many poller processes: every occurrence exactly once, on cadence.

Pollers are processes of their own; one of them is killed, or stalls past its lease,
between the claim that leases a cron job and the advance that hands its occurrence out.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import statistics
import time
from typing import Any, List, Tuple

import pytest
import redis

from rache import Cron, Every, Scheduler, recurrence, wire
from rache.rules import Placed
from tests.support import harness
from tests.support.helpers import run
from tests.test_recurring import due_ms, server_ms

LEASE = 0.5
#: (job id, occurrence due time in ms, when the poller got it in ms): what a poller saw
Seen = List[Tuple[str, int, float]]


def poll_until(url: str, until_ms: int, least: float, barrier: Any = None) -> Seen:
    """Poll in a tight loop until ``until_ms`` (Unix ms), and for ``least`` seconds at least.

    Returns every job handed out, and when.
    """
    client = redis.Redis.from_url(url)
    sched = Scheduler(client, "rache:")
    sched.recurring_lease = LEASE
    client.ping()
    if barrier is not None:
        barrier.wait()
    until_ms = max(until_ms, round((time.time() + least) * 1000))
    seen: Seen = []
    while time.time() * 1000 < until_ms:
        for job in sched.pending_jobs():
            seen.append((job["id"], due_ms(job), time.time() * 1000))
        time.sleep(0.001)
    client.close()
    return seen


def _run(queue: Any, target: Any, *args: Any) -> None:
    queue.put(target(*args))


def run_processes(
    target: Any, args: Tuple[Any, ...], count: int, when_ready: Any = None
) -> List[Any]:
    """Run ``target(*args, barrier)`` in ``count`` processes at once; their results.

    ``when_ready()`` runs once all of them are up, as they start.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(count + 1)
    workers = [
        context.Process(target=_run, args=(queue, target, *args, barrier), daemon=True)
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(120)
    if when_ready is not None:
        when_ready()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    return results


@pytest.mark.slow
def test_an_every_200ms_job_polled_by_4_processes_runs_each_occurrence_once(
    server: harness.RedisServer, raw: Any
) -> None:
    sched = Scheduler(raw, "rache:")
    starts = []

    def schedule() -> None:  # once the pollers are up, 0.1 s from now
        starts.append(server_ms(raw) + 100)
        sched.schedule_recurring(
            "tick",
            Every(0.2, misfire="skip", grace=0.1),
            start=starts[0] / 1000,
        )

    results = run_processes(poll_until, (server.url, 0, 5.4), 4, schedule)
    start = starts[0]
    seen = [entry for result in results for entry in result]
    counts = collections.Counter(due for _, due, _ in seen)
    assert {due: n for due, n in counts.items() if n > 1} == {}  # never twice
    # every occurrence of the 5 s, each on the grid: none lost, none late beyond the grace
    # (the pollers stop 5.3 s after the start: the one at 5.2 s may come too)
    assert sorted(counts)[:26] == [start + 200 * k for k in range(26)]
    assert sorted(counts)[26:] in ([], [start + 5200])
    assert sum(1 for result in results if result) >= 2  # the work was really shared
    lateness = [got - due for _, due, got in seen]
    print(
        f"\n26 occurrences, 4 pollers: lateness (handed out - due) max {max(lateness):.1f} ms, "
        f"median {statistics.median(lateness):.1f} ms"
    )
    assert max(lateness) < 100


def claim_and_hold(url: str, claim_now: Any, ready: Any, go: Any, queue: Any) -> None:
    """Claim when told (leasing the cron job), report, and advance only when told again."""
    client = redis.Redis.from_url(url)
    client.ping()
    sched = Scheduler(client, "rache:")
    sched.recurring_lease = LEASE
    claim_now.wait(60)
    claim = sched.claim()
    call = claim.next_call()
    assert call is not None
    assert claim.take(run(client, call)) is None  # the batch awaits its advance
    advance = claim.next_call()
    assert advance is not None
    ready.set()
    go.wait(60)
    jobs = claim.take(run(client, advance))
    assert jobs is not None
    queue.put([(job["id"], due_ms(job)) for job in jobs])


@pytest.mark.slow
def test_pollers_killed_or_stalled_between_claim_and_advance_lose_and_repeat_nothing(
    server: harness.RedisServer, raw: Any
) -> None:
    sched = Scheduler(raw, "rache:")
    now = server_ms(raw)
    sched.schedule_recurring("hourly", Cron("0 * * * *"), start=(now - 7_200_000) / 1000)
    occurrence = recurrence.latest_at_or_before(Placed(Cron("0 * * * *")), now)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    events = [[context.Event() for _ in range(3)] for _ in range(2)]
    victims = [
        context.Process(target=claim_and_hold, args=(server.url, *events[i], queue))
        for i in range(2)
    ]
    for victim in victims:
        victim.start()
    # The first claims the job (a lease), and is killed before its advance.
    killed, stalled = victims
    events[0][0].set()
    assert events[0][1].wait(60)
    leased = raw.zscore("rache:queue", "hourly")
    assert leased > time.time()  # leased, and not handed out
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    killed.join(10)
    # Once that lease ran out, the second claims the job again, and stalls past its lease.
    time.sleep(leased - time.time() + 0.01)
    events[1][0].set()
    assert events[1][1].wait(60)
    assert raw.zscore("rache:queue", "hourly") > leased
    # 2 pollers, for that lease and then some: one of them hands the occurrence out.
    results = run_processes(poll_until, (server.url, 0, LEASE + 1), 2)
    handed = [(job_id, due) for result in results for job_id, due, _ in result]
    events[1][2].set()  # the stalled one wakes: its lease was taken up, its advance fails
    stalled_handed = queue.get(timeout=30)
    stalled.join(10)
    assert stalled_handed == []
    counts = collections.Counter(handed)
    assert counts[("hourly", occurrence)] == 1
    assert set(counts.values()) == {1}  # (a new hour may have begun: that one once, too)
    # Still recurring, at its next occurrence, no lease left in its rule.
    assert raw.hget("rache:recurring", "hourly").startswith(b"c|||")
    next_due = wire.time_ms(repr(raw.zscore("rache:queue", "hourly")).encode())
    assert next_due == max(due for _, due in handed) + 3_600_000


def claim_and_die(url: str, lease: float, ready: Any) -> None:
    """Claim (leasing the cron job), say so, and wait for the SIGKILL: no advance ever."""
    client = redis.Redis.from_url(url)
    sched = Scheduler(client, "rache:")
    sched.recurring_lease = lease
    claim = sched.claim()
    call = claim.next_call()
    assert call is not None
    assert claim.take(run(client, call)) is None  # the batch awaits its advance
    ready.set()
    time.sleep(600)


def poll_with_lease(url: str, lease: float, least: float, barrier: Any) -> Seen:
    """``poll_until`` for ``least`` seconds, with a lease of ``lease`` seconds."""
    client = redis.Redis.from_url(url)
    sched = Scheduler(client, "rache:")
    sched.recurring_lease = lease
    client.ping()
    barrier.wait()
    until = time.time() + least
    seen: Seen = []
    while time.time() < until:
        for job in sched.pending_jobs():
            seen.append((job["id"], due_ms(job), time.time() * 1000))
        time.sleep(0.005)
    client.close()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("lease", [0.4, 2.5])
def test_a_poller_sigkilled_between_claim_and_advance_costs_no_occurrence_of_a_job_every_second(
    server: harness.RedisServer, raw: Any, lease: float
) -> None:
    """A lease shorter than the period, and one longer: each occurrence out once either way."""
    sched = Scheduler(raw, "rache:")
    sched.schedule_recurring("tick", Cron("* * * * * *"))
    pending = wait_due(raw)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    victim = context.Process(target=claim_and_die, args=(server.url, lease, ready), daemon=True)
    victim.start()
    assert ready.wait(60)
    assert raw.zscore("rache:queue", "tick") * 1000 > server_ms(raw)  # leased
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    results = run_processes(poll_with_lease, (server.url, lease, lease + 2.5), 2)
    seen = [entry for result in results for entry in result]
    counts = collections.Counter(due for _, due, _ in seen)
    assert {due: n for due, n in counts.items() if n > 1} == {}  # never twice
    dues = sorted(counts)
    assert dues == list(range(pending, dues[-1] + 1, 1000))  # none lost, from the one held
    assert dues[-1] >= pending + (lease + 1) * 1000
    # each after at most the lease, and the time the pollers took to start
    assert max(got - due for _, due, got in seen) <= lease * 1000 + 3000


def wait_due(raw: Any) -> int:
    """Wait until the job ``tick`` is due; its due time (ms)."""
    due = round(float(raw.zscore("rache:queue", "tick")) * 1000)
    time.sleep(max(0.0, (due - server_ms(raw)) / 1000) + 0.01)
    return due
