"""Recurring jobs on a real Redis: each occurrence handed out once, with its own due time."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
import redis
import redis.asyncio

from rache import Cron, Every, JobNotFound, Scheduler, recurrence, scripts, wire
from rache.aio import AsyncScheduler
from rache.claim import Claim
from rache.durations import ms_to_seconds
from rache.rules import Placed, from_details
from rache.scripts import Call
from tests.support.cluster_view import ClusterView
from tests.support.helpers import AsyncFailingScript, FailingScript, commands_sent, run, snapshot
from tests.support.shells import Blocking


def due_ms(job: Any) -> int:
    """The due time a job was handed out for, ms."""
    assert job.due_at is not None
    return round(float(job.due_at) * 1000)


def server_ms(raw: Any) -> int:
    seconds, micros = raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


def score_ms(raw: Any, job_id: str) -> int:
    return wire.time_ms(repr(raw.zscore("rache:queue", job_id)).encode())


def far_daily_rule(raw: Any) -> tuple[str, int]:
    """A daily cron rule whose last occurrence was about 12 hours ago, and that time (ms)."""
    now = server_ms(raw)
    hour = (datetime.fromtimestamp(now / 1000, timezone.utc).hour + 12) % 24
    expression = f"0 {hour} * * *"
    rule = Placed(Cron(expression))
    latest = recurrence.latest_at_or_before(rule, now)
    assert latest is not None
    return expression, latest


def test_an_every_n_job_hands_out_each_occurrence_with_its_due_time(sched: Any, raw: Any) -> None:
    start = server_ms(raw) - 1000  # a second ago: the occurrences at -1 s and -0.5 s are due
    sched.schedule_recurring("tick", Every(0.5), start=start / 1000, data={"url": "u"})
    sched.schedule_job("plain", -1)
    jobs = list(sched.pending_jobs(reschedule_in=3600))
    by_id = {job["id"]: job for job in jobs}
    assert by_id["tick"] == {"id": "tick", "url": "u"}
    # Missed 'start', so coalesced into the latest due occurrence: start + 500 or + 1000
    due = due_ms(by_id["tick"])
    assert due in (start + 500, start + 1000) and (due - start) % 500 == 0
    assert by_id["tick"].occurrence_id == f"tick:{by_id['tick'].due_at}"
    # Still scheduled, at the next occurrence on the grid; reschedule_in applied to the plain
    # job only.
    assert score_ms(raw, "tick") == due + 500
    assert raw.zscore("rache:queue", "plain") > time.time() + 3000
    assert list(sched.pending_jobs()) == []


def test_job_details_shows_the_rule_and_the_next_occurrences(sched: Any, raw: Any) -> None:
    start = server_ms(raw) + 60_000
    sched.schedule_recurring("tick", Every(90, misfire="skip", grace=5), start=start / 1000)
    details = sched.job_details("tick")
    assert details["recurring"] == {
        "every": 90,
        "start": ms_to_seconds(start),
        "misfire": "skip",
        "grace": 5,
    }
    assert details["next_occurrences"] == [ms_to_seconds(start + k * 90_000) for k in range(5)]
    assert round(details["schedule_at"] * 1000) == start
    sched.schedule_recurring("daily", Cron("30 2 * * *", timezone="Europe/Paris"))
    daily = sched.job_details("daily")
    assert daily["recurring"]["cron"] == "30 2 * * *"
    assert len(daily["next_occurrences"]) == 5
    # delete_job removes the rule too
    sched.delete_job("tick")
    sched.delete_job("daily")
    assert raw.exists("rache:recurring") == 0
    with pytest.raises(JobNotFound):
        sched.job_details("tick")


def test_a_new_cron_job_stands_at_its_next_occurrence_before_any_poller_runs(
    sched: Any, raw: Any
) -> None:
    rule = Placed(Cron("30 2 * * *", timezone="Europe/Paris"))
    before = recurrence.next_at_or_after(rule, server_ms(raw))
    due = sched.schedule_recurring("report", Cron("30 2 * * *", timezone="Europe/Paris"))
    after = recurrence.next_at_or_after(rule, server_ms(raw))
    assert round(due * 1000) in (before, after)  # hours away, not "due now"
    # Every view tells the truth at once: nothing due, no lag, the next due time is it.
    stats = sched.stats()
    assert (stats.total, stats.due, stats.lag, stats.next_due) == (1, 0, 0.0, due)
    assert list(sched.scheduled_jobs(with_times=True)) == [("report", due)]
    details = sched.job_details("report")
    assert details["schedule_at"] == due == details["next_occurrences"][0]
    assert list(sched.pending_jobs()) == []
    # From a start given: the first occurrence at or after it, even a past one (due then).
    start = server_ms(raw) - 3 * 86_400_000
    sched.schedule_recurring("old", Cron("30 2 * * *", timezone="Europe/Paris"), start=start / 1000)
    first = recurrence.next_at_or_after(rule, start)
    assert sched.job_details("old")["schedule_at"] == ms_to_seconds(first)
    assert [due_ms(job) for job in sched.pending_jobs()] == [
        recurrence.latest_at_or_before(rule, server_ms(raw))
    ]


def test_a_cron_declaration_reads_the_server_clock_only_without_a_start(
    sched: Any, raw: Any
) -> None:
    sched.schedule_recurring("warm", Cron("0 0 * * *"))  # every script in the cache
    sched.stats()
    sent = commands_sent(raw, lambda: sched.schedule_recurring("a", Cron("0 0 * * *")))
    assert sent == ["EVALSHA", "EVALSHA"]  # the clock (stats-3.lua), then the declaration
    sent = commands_sent(raw, lambda: sched.schedule_recurring("b", Cron("0 0 * * *"), start=0))
    assert sent == ["EVALSHA"]
    assert commands_sent(raw, lambda: sched.schedule_recurring("c", Every(60))) == ["EVALSHA"]


@pytest.mark.parametrize(("misfire", "runs"), [("coalesce", True), ("skip", False)])
def test_a_cron_job_after_a_downtime_follows_its_misfire_policy(
    sched: Any, raw: Any, misfire: str, runs: bool
) -> None:
    expression, latest = far_daily_rule(raw)
    three_days_ago = (server_ms(raw) - 3 * 86_400_000) / 1000
    sched.schedule_recurring("daily", Cron(expression, misfire=misfire), start=three_days_ago)
    jobs = list(sched.pending_jobs())
    assert [due_ms(job) for job in jobs] == ([latest] if runs else [])
    # three missed occurrences, at most one run; the job waits for the next one
    assert score_ms(raw, "daily") == latest + 86_400_000
    assert list(sched.pending_jobs()) == []
    assert raw.hget("rache:recurring", "daily").startswith(b"c|||")


def test_schedule_job_on_a_recurring_job_resumes_its_rule_from_then(raw: Any) -> None:
    sched = Scheduler(raw, prefix="rache:")
    start = server_ms(raw) - 10_000
    sched.schedule_recurring("tick", Every(4), start=start / 1000)
    sched.schedule_job("tick", 3600)
    assert raw.hexists("rache:recurring", "tick")
    details = sched.job_details("tick")
    first = details["next_occurrences"][0]
    assert round(first * 1000) == recurrence.next_at_or_after(
        Placed(Every(4), start_ms=start), score_ms(raw, "tick")
    )


def test_stopping_early_puts_a_recurring_occurrence_back(raw: Any) -> None:
    sched = Scheduler(raw, prefix="rache:", batch_size=10)
    start = server_ms(raw) - 100
    sched.schedule_recurring("tick", Every(60), start=start / 1000)
    sched.schedule_job("a", -5)
    jobs = sched.pending_jobs()
    assert next(jobs)["id"] == "a"
    jobs.close()  # 'tick' was claimed and moved on, never handed out: it comes back
    assert score_ms(raw, "tick") == start
    again = list(sched.pending_jobs())
    assert [(job["id"], due_ms(job)) for job in again] == [("tick", start)]


def claim_without_advancing(sched: Scheduler, raw: Any) -> tuple[Claim, Call]:
    """A claim-7.lua call as pending_jobs makes it, stopped before its advance-4.lua."""
    claim = sched.claim()
    call = claim.next_call()
    assert call is not None and call.script is scripts.CLAIM
    assert claim.take(run(raw, call)) is None  # the batch awaits its advance
    advance = claim.next_call()
    assert advance is not None and advance.script is scripts.ADVANCE
    return claim, advance


def test_a_lease_that_expired_is_claimed_again_and_its_old_holder_hands_out_nothing(
    raw: Any,
) -> None:
    sched = Scheduler(raw, prefix="rache:")
    sched.recurring_lease = 0.3
    expression, latest = far_daily_rule(raw)
    sched.schedule_recurring("daily", Cron(expression), start=(latest - 1000) / 1000)
    # The first holder claims, then stalls past its lease.
    first, first_advance = claim_without_advancing(sched, raw)
    assert list(sched.pending_jobs()) == []  # leased: nobody else gets it meanwhile
    time.sleep(0.4)
    # A second poller takes the job up, and hands out the same occurrence, once.
    jobs = list(sched.pending_jobs())
    assert [due_ms(job) for job in jobs] == [latest]
    # The first holder wakes: its advance fails, so it hands out nothing.
    assert first.take(run(raw, first_advance)) == []
    assert score_ms(raw, "daily") == latest + 86_400_000
    assert list(sched.pending_jobs()) == []


def test_a_holder_that_never_advances_loses_nothing(raw: Any) -> None:
    sched = Scheduler(raw, prefix="rache:")
    sched.recurring_lease = 0.2
    expression, latest = far_daily_rule(raw)
    sched.schedule_recurring("daily", Cron(expression), start=(latest - 1000) / 1000)
    claim_without_advancing(sched, raw)  # and dies
    time.sleep(0.3)
    jobs = list(sched.pending_jobs())
    assert [(job["id"], due_ms(job)) for job in jobs] == [("daily", latest)]


# -- bad input -------------------------------------------------------------------------------

#: Each case: what to pass to schedule_recurring after the job id, made inside the check
#: (a rule is checked when it is built), and the error it raises.
#: The constructors, untyped: some cases below pass what their signatures refuse.
AnyEvery: Any = Every
AnyCron: Any = Cron

BAD_RULES: list[tuple[Callable[[], tuple[Any, dict[str, Any]]], type, str]] = [
    (lambda: (AnyEvery(0), {}), ValueError, "every must be more than 0 seconds"),
    (lambda: (AnyEvery(-5), {}), ValueError, "every must be more than 0 seconds"),
    (lambda: (AnyEvery(float("nan")), {}), ValueError, "every must be more than 0 seconds"),
    (lambda: (AnyEvery("5"), {}), TypeError, "every must be a number of seconds"),
    (lambda: (None, {}), TypeError, "rule must be a rache.Every or a rache.Cron, not NoneType"),
    (lambda: ({"every": 5}, {}), TypeError, "rule must be a rache.Every or a rache.Cron, not dict"),
    (lambda: ("* * * * *", {}), TypeError, "rule must be a rache.Every or a rache.Cron, not str"),
    (
        lambda: (AnyCron("61 * * * *"), {}),
        ValueError,
        "cron expression '61 \\* \\* \\* \\*' is not valid",
    ),
    (lambda: (AnyCron("nonsense"), {}), ValueError, "cron expression 'nonsense' is not valid"),
    (lambda: (AnyCron(5), {}), TypeError, "cron must be a str"),
    (
        lambda: (AnyCron("* * * * *", timezone="Mars/Olympus"), {}),
        ValueError,
        "timezone 'Mars/Olympus'",
    ),
    (lambda: (AnyCron("* * * * *", timezone="../etc"), {}), ValueError, "timezone '../etc'"),
    (
        lambda: (AnyCron("* * * * *", timezone="localtime"), {}),
        ValueError,
        "^timezone 'localtime' is not an IANA location zone: it is the zone of the host",
    ),
    (
        lambda: (AnyCron("* * * * *", timezone="right/UTC"), {}),
        ValueError,
        "^timezone 'right/UTC' is not an IANA location zone: 'right/' zones count leap",
    ),
    (
        lambda: (AnyEvery(5, timezone="Mars/Base"), {}),
        TypeError,
        "unexpected keyword argument 'timezone'",
    ),
    (lambda: (AnyCron("* * * * *", timezone=5), {}), TypeError, "timezone must be a str, not int"),
    (
        lambda: (AnyCron("0 0 1 1 * 0 2030"), {}),
        ValueError,
        "it has 7 fields, where rache takes 5, or 6",
    ),
    (
        lambda: (AnyEvery(5, misfire="later"), {}),
        ValueError,
        "misfire must be one of coalesce, skip",
    ),
    (lambda: (AnyEvery(5, grace=-1), {}), ValueError, "grace must be 0 or more"),
    (lambda: (AnyCron("* * * * *", jitter=-1), {}), ValueError, "jitter must be 0 or more"),
    (lambda: (AnyEvery(5), {"every": 5}), TypeError, "unexpected keyword argument 'every'"),
    (
        lambda: (AnyEvery(5), {"start": "now"}),
        TypeError,
        "start must be a Unix timestamp or a datetime",
    ),
    (
        lambda: (AnyEvery(5), {"start": datetime(2024, 1, 1)}),
        ValueError,
        "start must be an aware datetime",
    ),
    (lambda: (AnyEvery(5), {"data": {"id": 1}}), ValueError, "'id' is reserved"),
    (lambda: (AnyEvery(5), {"data": [1]}), TypeError, "data must be a mapping"),
]


@pytest.mark.parametrize(("build", "error", "match"), BAD_RULES)
def test_bad_rules_are_errors_that_change_nothing(
    raw: Any, build: Callable[[], tuple[Any, dict[str, Any]]], error: type, match: str
) -> None:
    sched = Scheduler(raw, prefix="rache:")
    sched.schedule_recurring("keep", Every(5), data={"n": 1})
    sched.schedule_job("a", 10, n=1)
    before = snapshot(raw)
    with pytest.raises(error, match=match):
        rule, keywords = build()
        sched.schedule_recurring("keep", rule, **keywords)
    with pytest.raises(TypeError, match="job_id must be a str"):
        sched.schedule_recurring(5, Every(1))  # type: ignore[arg-type]
    assert snapshot(raw) == before


def test_a_rule_is_a_value_that_each_shell_takes_and_job_details_gives_back(
    sched: Any, raw: Any
) -> None:
    hourly = Every(3600, misfire="skip", grace=5, jitter=60)
    start = server_ms(raw) // 1000 + 600
    # One value for many jobs: each job's occurrences shift by its own offset below 60 s.
    firsts = {job_id: sched.schedule_recurring(job_id, hourly, start=start) for job_id in "abc"}
    for job_id, first in firsts.items():
        shift = hourly.place(job_id).start_ms
        assert first == ms_to_seconds(start * 1000 + shift) and 0 <= shift < 60_000
        rule = sched.job_details(job_id)["recurring"]
        assert rule == {"every": 3600, "start": first, "misfire": "skip", "grace": 5}
        assert from_details(rule) == Every(3600, misfire="skip", grace=5)  # the jitter: placed
    nightly = Cron("30 2 * * *", timezone="Europe/Paris", misfire="skip")
    sched.schedule_recurring("nightly", nightly, data={"n": 1})
    described = sched.job_details("nightly")["recurring"]
    assert from_details(described) == nightly and str(from_details(described)) == str(nightly)
    # An equal value (another spelling of the same rule) is the same rule: nothing moves.
    before = snapshot(raw)
    sched.schedule_recurring("a", Every(timedelta(hours=1), misfire="skip", grace=5, jitter=60))
    assert snapshot(raw) == before
    # Anything else than a rule value, or the keyword form of before 1.0: refused, no change.
    bad: Any = sched.schedule_recurring
    for rule_given in (None, 3600, "0 * * * *", {"every": 3600}):
        with pytest.raises(TypeError, match=r"^rule must be a rache\.Every or a rache\.Cron"):
            bad("a", rule_given)
    with pytest.raises(TypeError):
        bad("a", every=3600)
    with pytest.raises(TypeError):
        bad("a", cron="0 * * * *", timezone="UTC")
    assert snapshot(raw) == before


def test_declaring_the_same_rule_again_keeps_the_job_as_it_runs(raw: Any) -> None:
    sched = Scheduler(raw, prefix="rache:")
    sched.schedule_recurring("tick", Every(60), data={"n": 1})
    sched.schedule_recurring("daily", Cron("0 9 * * *", timezone="Europe/Paris"))
    list(sched.pending_jobs())  # 'tick' runs, 'daily' is set to its first occurrence
    before = snapshot(raw)
    time.sleep(0.01)
    # A program declaring its schedule at each start: nothing moves, data still merges.
    sched.schedule_recurring("tick", Every(60))
    sched.schedule_recurring("daily", Cron("0 9 * * *", timezone="Europe/Paris"))
    assert snapshot(raw) == before
    sched.schedule_recurring("tick", Every(60), data={"n": 2})
    assert raw.hget("rache:job:tick", "n") == b"2"
    assert raw.zscore("rache:queue", "tick") == pytest.approx(before_score(before, raw))
    # A different rule replaces it, from now.
    sched.schedule_recurring("tick", Every(30))
    assert raw.hget("rache:recurring", "tick").split(b"|")[2] == b"30000"
    assert score_ms(raw, "tick") <= server_ms(raw)


def before_score(before: dict[bytes, Any], raw: Any) -> float:
    """The score 'tick' had in a snapshot, restored into a scratch key to read it."""
    raw.restore("scratch", 0, before[b"rache:queue"])
    score = raw.zscore("scratch", "tick")
    raw.delete("scratch")
    return float(score)


def test_a_poller_that_cannot_evaluate_a_cron_rule_leaves_it_to_another(
    raw: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sched = Scheduler(raw, prefix="rache:")
    sched.recurring_lease = 0.2
    expression, latest = far_daily_rule(raw)
    sched.schedule_recurring("daily", Cron(expression), start=(latest - 1000) / 1000)
    sched.schedule_job("plain", -1)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "croniter", None)  # this poller has no croniter
        assert [job["id"] for job in sched.pending_jobs()] == ["plain"]
    assert "cannot evaluate the cron rule of job 'daily'" in caplog.text
    time.sleep(0.3)  # its lease ends; a poller with croniter takes it up
    assert [(job["id"], due_ms(job)) for job in sched.pending_jobs()] == [("daily", latest)]


@pytest.mark.parametrize("shell", ["sync", "asyncio"])
def test_a_failed_advance_puts_back_the_batch_and_ends_its_leases(
    raw: Any, shell: str, loop_thread: Any, server: Any
) -> None:
    # The claim went through, the advance of its cron job did not (the connection broke):
    # the batch goes back at once, its cron job's lease ended (not left to run out).
    setup = Scheduler(raw, "rache:")
    setup.schedule_job("plain", -5, n=1)
    setup.schedule_recurring("every", Every(3600), start=0)
    setup.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)
    before = raw.zscore("rache:queue", "plain")
    if shell == "sync":
        sched: Any = Scheduler(FailingScript(raw, scripts.ADVANCE), "rache:")
    else:
        client = redis.asyncio.Redis.from_url(server.url)
        inner = AsyncScheduler(AsyncFailingScript(client, scripts.ADVANCE), "rache:")
        sched = Blocking(inner, loop_thread)
    with pytest.raises(redis.ConnectionError):
        list(sched.pending_jobs())
    if shell == "asyncio":
        loop_thread.run(asyncio.sleep(0.05))  # the put-back runs as a task
    assert raw.zscore("rache:queue", "plain") == before  # put back as it was
    # every: back at the occurrence the claim took (coalesced: the latest one, an hour's)
    assert 0 < raw.zscore("rache:queue", "every") <= time.time()
    assert raw.zscore("rache:queue", "cron") == 0  # released: due as it was, idle
    assert raw.hget("rache:recurring", "cron").startswith(b"c|||")
    again = Scheduler(raw, "rache:")
    assert sorted(job["id"] for job in again.pending_jobs()) == ["cron", "every", "plain"]
    if shell == "asyncio":
        loop_thread.run(client.aclose())


# -- every lease released on every path --------------------------------------------------------

#: A cron job every second, and a lease longer than its period: a dead holder's lease spans
#: occurrences that fall while it holds.
EVERY_SECOND = "* * * * * *"
LONG_LEASE = 1.5


def shard_score_ms(sched: Any, raw: Any, job_id: str) -> int:
    """A job's score (ms) in its own shard's queue."""
    score = raw.zscore(sched.layout.of(job_id.encode()).queue, job_id)
    return wire.time_ms(repr(score).encode())


def wait_until_due(sched: Any, raw: Any, job_id: str) -> int:
    """Sleep until ``job_id`` (a recurring job) is due on the server; its due time (ms)."""
    due = shard_score_ms(sched, raw, job_id)
    time.sleep(max(0.0, (due - server_ms(raw)) / 1000) + 0.01)
    return due


def lease_without_advancing(sched: Any, raw: Any) -> Claim:
    """A claim as a poller makes it, through the batch that leases the cron job; no advance.

    Every shard's batch until the one that awaits its advance (``take`` answers None).
    """
    claim: Claim = sched.claim()
    while (call := claim.next_call()) is not None:
        assert call.script is scripts.CLAIM
        if claim.take(run(raw, call)) is None:
            assert claim.next_call() is not None  # the advance, never sent
            return claim
    raise AssertionError("no batch leased the cron job")


@pytest.mark.slow
@pytest.mark.one_client_kind  # a test of seconds: conftest generates one kind a topology
@pytest.mark.parametrize("shards", [1, 3])
def test_a_holder_killed_before_its_advance_loses_no_occurrence_of_a_job_every_second(
    make: Callable[..., Any], raw: Any, shards: int
) -> None:
    # (a sharded schedule's prefix has no hash tag: each shard adds its own)
    sched = make(prefix="rache:" if shards == 1 else "sharded:", shards=shards)
    getattr(sched, "inner", sched).recurring_lease = LONG_LEASE
    sched.schedule_recurring("tick", Cron(EVERY_SECOND))
    pending = wait_until_due(sched, raw, "tick")
    lease_without_advancing(sched, raw)  # and the holder dies: its advance never comes
    assert shard_score_ms(sched, raw, "tick") > server_ms(raw)  # leased
    handed: list[tuple[int, int]] = []  # (occurrence, when handed out), ms
    until = server_ms(raw) + LONG_LEASE * 1000 + 1200
    while server_ms(raw) < until:
        handed += [(due_ms(job), server_ms(raw)) for job in sched.pending_jobs()]
        time.sleep(0.05)
    dues = [due for due, _ in handed]
    # Each occurrence once, from the one the dead holder held, none skipped ...
    assert dues == list(range(pending, dues[-1] + 1, 1000))
    assert dues[-1] >= pending + 2000  # the 2 the lease held, and one after it
    # ... each after at most the lease (and the poll's own interval).
    assert max(at - due for due, at in handed) <= LONG_LEASE * 1000 + 500


class RanThenLost(FailingScript):
    """A sync client whose calls of ``script`` run, and whose replies are then lost for good."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = self.client.execute_command(*args, **options)
        if len(args) > 1 and args[0] == "EVALSHA" and args[1] == self.script.sha:
            raise redis.ConnectionError("the connection broke after the call ran")
        return reply


class AsyncRanThenLost(FailingScript):
    """A redis.asyncio client whose calls of ``script`` run, and whose replies are lost."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = await self.client.execute_command(*args, **options)
        if len(args) > 1 and args[0] == "EVALSHA" and args[1] == self.script.sha:
            raise redis.ConnectionError("the connection broke after the call ran")
        return reply


@pytest.mark.parametrize("shell", ["sync", "asyncio"])
def test_an_advance_that_ran_but_whose_reply_was_lost_puts_its_occurrence_back(
    raw: Any, shell: str, loop_thread: Any, server: Any
) -> None:
    # The advance moved the cron job on, and its answer never came: the occurrence it would
    # have handed out goes back, once; nothing else moves.
    setup = Scheduler(raw, "rache:")
    setup.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)
    setup.schedule_job("plain", -5)
    year = datetime.now(timezone.utc).replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0
    )
    if shell == "sync":
        sched: Any = Scheduler(RanThenLost(raw, scripts.ADVANCE), "rache:")
    else:
        client = redis.asyncio.Redis.from_url(server.url)
        inner = AsyncScheduler(AsyncRanThenLost(client, scripts.ADVANCE), "rache:")
        sched = Blocking(inner, loop_thread)
    with pytest.raises(redis.ConnectionError):
        list(sched.pending_jobs())
    if shell == "asyncio":
        loop_thread.run(asyncio.sleep(0.05))  # the put-back runs as a task
    assert raw.zscore("rache:queue", "cron") == year.timestamp()  # its occurrence, idle
    assert raw.hget("rache:recurring", "cron").startswith(b"c|||")
    again = Scheduler(raw, "rache:")
    handed = sorted((job["id"], job.due_at) for job in again.pending_jobs())
    assert handed == [("cron", int(year.timestamp())), ("plain", handed[1][1])]
    assert list(again.pending_jobs()) == []
    if shell == "asyncio":
        loop_thread.run(client.aclose())


def test_a_lease_taken_up_keeps_to_the_claims_limit(raw: Any) -> None:
    sched = Scheduler(raw, prefix="rache:")
    sched.recurring_lease = LONG_LEASE
    sched.schedule_recurring("tick", Cron(EVERY_SECOND))
    pending = wait_until_due(sched, raw, "tick")
    lease_without_advancing(sched, raw)  # and the holder dies
    time.sleep(LONG_LEASE + 1.1)  # the lease ran out, and held 2 occurrences or more
    # A claim of 2 jobs: the first 2 the dead holder never handed out, and no more ...
    jobs = list(sched.pending_jobs(limit=2))
    assert [due_ms(job) for job in jobs] == [pending, pending + 1000]
    # ... the job resumes at the first one left, which the next claim hands out (coalesced).
    assert score_ms(raw, "tick") == pending + 2000
    assert raw.hget("rache:recurring", "tick").startswith(b"c|||")
    again = [due_ms(job) for job in sched.pending_jobs()]
    assert len(again) == 1 and pending + 2000 <= again[0] <= server_ms(raw)


# -- the edges: bad data, memory pressure, clock jumps (rache/lua/README.md) -------------------

#: Rule values no rache wrote: a claim must set each aside, never raise after a write.
UNPARSABLE = {"bad-every": "e|x|y", "bad-cron": "c|broken", "bad-any": "zzz"}


def edge_schedule(make: Callable[..., Any], shards: int) -> Any:
    # (a sharded schedule's prefix has no hash tag: each shard adds its own)
    return make(prefix="rache:" if shards == 1 else "sharded:", shards=shards)


@pytest.mark.one_client_kind
@pytest.mark.parametrize("shards", [1, 3])
def test_a_rule_that_does_not_parse_is_set_aside_and_the_rest_handed_out(
    make: Callable[..., Any], raw: Any, shards: int
) -> None:
    sched = edge_schedule(make, shards)
    sched.schedule_recurring("good", Every(60), start=0)
    for job_id in UNPARSABLE:
        sched.schedule_recurring(job_id, Every(60), start=0, data={"kept": 1})
    sched.schedule_job("plain", -1)
    for job_id, value in UNPARSABLE.items():  # as a hand or another program would write it
        raw.hset(sched.layout.of(job_id.encode()).recurring, job_id, value)
    handed = sorted(job["id"] for job in sched.pending_jobs())
    assert handed == ["good", "plain"]  # nothing raised, the rest handed out
    for job_id in UNPARSABLE:  # off the schedule, rule and data kept as they were
        keys = sched.layout.of(job_id.encode())
        assert raw.zscore(keys.queue, job_id) is None
        assert raw.hget(keys.recurring, job_id) == UNPARSABLE[job_id].encode()
        assert sched.job_details(job_id)["kept"] == 1  # details read it without raising
    aside = sorted((job.job_id, job.rule, job.due) for job in sched.bad_rules())
    assert aside == sorted((job_id, value, 0) for job_id, value in UNPARSABLE.items())
    assert sorted(sched.stats().set_aside) == sorted(sched.bad_rules())
    health = sched.health(late=10**9)  # rache doctor and the dashboard say so, raw rule and all
    flagged = {p.job_id: p.message for p in health.problems if p.kind == "set aside"}
    assert not health.ok and sorted(flagged) == sorted(UNPARSABLE)
    assert all(repr(UNPARSABLE[job_id]) in flagged[job_id] for job_id in UNPARSABLE)
    assert list(sched.pending_jobs()) == []  # no later claim meets them again
    sched.schedule_recurring("bad-every", Every(60), start=0)  # declared again: back
    assert sorted(job.job_id for job in sched.bad_rules()) == ["bad-any", "bad-cron"]
    assert [job["id"] for job in sched.pending_jobs()] == ["bad-every"]


def set_maxmemory(raw: Any, value: int) -> None:
    """Set maxmemory on the server, or on each master of the cluster (under noeviction)."""
    clients = [raw]
    if isinstance(raw, ClusterView):
        primaries = raw.cluster.get_primaries()  # type: ignore[no-untyped-call]
        clients = [redis.Redis(host=node.host, port=node.port) for node in primaries]
    for client in clients:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", value)


@pytest.mark.one_client_kind
@pytest.mark.parametrize("shards", [1, 3])
def test_under_memory_pressure_a_claim_removes_what_it_may_and_leaves_the_rest(
    make: Callable[..., Any], raw: Any, shards: int
) -> None:
    sched = edge_schedule(make, shards)
    sched.schedule_recurring("every", Every(60), start=0)
    sched.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)
    plain = [f"plain-{i}" for i in range(20)]
    sched.schedule_jobs([(job_id, -1) for job_id in plain])
    set_maxmemory(raw, 1)  # every write that may add memory is refused
    try:
        with pytest.raises(redis.exceptions.ResponseError, match="when used memory"):
            sched.schedule_job("more", 0)  # (the pressure is real)
        # Rescheduling would add: nothing goes, nothing raises.
        assert list(sched.pending_jobs(reschedule_in=60)) == []
        # Removing may: the plain jobs go out, the recurring ones stay as they were.
        handed = sorted(job["id"] for job in sched.pending_jobs())
        assert handed == sorted(plain)
        for job_id in ("every", "cron"):
            assert shard_score_ms(sched, raw, job_id) == 0
    finally:
        set_maxmemory(raw, 0)
    # Memory back: each recurring job's occurrence comes out, once.
    assert sorted(job["id"] for job in sched.pending_jobs()) == ["cron", "every"]
    assert list(sched.pending_jobs()) == []


def jump_forward(sched: Any, raw: Any, job_id: str, lead_ms: int) -> int:
    """Leave ``job_id`` as a claim on a clock ``lead_ms`` ahead would have: its score (ms).

    ``lead_ms``: a whole number of the job's periods, so that it lands on an occurrence.

    The server's clock cannot be moved here, so the state a jumped claim leaves is written
    as it would have written it: the job at its first occurrence after the jumped now, and
    its shard's clock mark (the latest time a claim moved recurring jobs) at that now.
    """
    keys = sched.layout.of(job_id.encode())
    moved = shard_score_ms(sched, raw, job_id) + lead_ms  # a whole number of periods on
    raw.zadd(keys.queue, {job_id: moved / 1000})
    raw.set(keys.clock, server_ms(raw) + lead_ms)
    return moved


@pytest.mark.one_client_kind
@pytest.mark.parametrize("shards", [1, 3])
def test_after_the_clock_went_back_a_recurring_job_resumes_within_a_period(
    make: Callable[..., Any], raw: Any, shards: int
) -> None:
    sched = edge_schedule(make, shards)
    sched.schedule_recurring("every", Every(2))
    sched.schedule_recurring("cron", Cron(EVERY_SECOND))
    for job_id in ("every", "cron"):
        assert jump_forward(sched, raw, job_id, 3600_000) > server_ms(raw) + 3500_000
    # The clock is back: the first claim re-aims each job at its next occurrence.
    list(sched.pending_jobs())
    now = server_ms(raw)
    assert shard_score_ms(sched, raw, "every") <= now + 2000
    assert shard_score_ms(sched, raw, "cron") <= now + 1000 + LONG_LEASE * 1000
    handed: set[str] = set()
    until = now + 3500
    while server_ms(raw) < until and handed != {"every", "cron"}:
        handed.update(job["id"] for job in sched.pending_jobs())
        time.sleep(0.05)
    assert handed == {"every", "cron"}
