"""rache.rq: rq-scheduler's API over rache, against a real Redis and real ``rq worker``s.

Parity first: each call makes the rq job that rq-scheduler 0.14's same call makes (same
function, arguments, options, meta, status, queue, due time). Then what the runner does
with due jobs, read back from rq's queues and from the runs of real worker processes.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from rq import Queue
from rq.job import Job, JobStatus

from rache import Cron, adapters
from rache import Scheduler as RacheScheduler
from rache.constants import PREFIX_META, REDIS_META, SHARDS_META
from rache.rq import QUEUE_FIELD, Runner, Scheduler, local_timezone
from tests.support import harness
from tests.support.helpers import commands_sent, snapshot
from tests.support.rq_tasks import RAN

ROOT = Path(__file__).resolve().parent.parent
TASK = "tests.support.rq_tasks.record"


def rq_worker(server: harness.RedisServer, *queues: str) -> List[str]:
    """Run a real ``rq worker --burst`` process on ``queues``; the tags its runs recorded."""
    before = server.client().llen(RAN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [os.path.join(os.path.dirname(sys.executable), "rq"), "worker", "--burst"]
    command += ["-w", "rq.worker.SimpleWorker", "--url", server.url, *queues]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ran = server.client(decode_responses=True).lrange(RAN, before, -1)
    return [str(tag) for tag in ran]


def ids(queue: Queue) -> List[str]:
    return list(queue.get_job_ids())


# Parity with rq-scheduler.

#: Fields of an rq job that must be the same whichever scheduler made it.
FIELDS = (
    "func_name",
    "args",
    "kwargs",
    "description",
    "timeout",
    "result_ttl",
    "ttl",
    "origin",
    "meta",
    "enqueue_at_front",
    "_dependency_ids",
)

AT = datetime(2030, 1, 2, 3, 4, 5)
CALLS: Dict[str, Callable[[Any, str], Any]] = {
    "enqueue_at": lambda s, i: s.enqueue_at(
        AT,
        TASK,
        "a",
        job_id=i,
        timeout=30,
        job_ttl=600,
        job_result_ttl=60,
        job_description="described",
        meta={"k": 1},
        queue_name="other",
        at_front=True,
    ),
    "enqueue_at, aware": lambda s, i: s.enqueue_at(
        AT.replace(tzinfo=timezone(timedelta(hours=2))), TASK, "b", job_id=i
    ),
    "enqueue_in": lambda s, i: s.enqueue_in(timedelta(hours=1), TASK, tag="c", job_id=i),
    "schedule": lambda s, i: s.schedule(
        AT, TASK, args=["d"], interval=60, repeat=5, id=i, queue_name="other", at_front=True
    ),
    "schedule, once": lambda s, i: s.schedule(AT, TASK, kwargs={"tag": "e"}, id=i, ttl=5),
    "schedule, depends_on": lambda s, i: s.schedule(AT, TASK, args=["f"], id=i, depends_on="dep"),
    "cron": lambda s, i: s.cron("*/5 * * * *", TASK, args=["g"], id=i, repeat=2, timeout=9),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_each_call_makes_the_rq_job_that_rq_scheduler_makes(solo_raw: Any, call: str) -> None:
    rq_scheduler = pytest.importorskip("rq_scheduler")
    theirs = rq_scheduler.Scheduler(queue_name="q", connection=solo_raw)
    ours = Scheduler(queue_name="q", connection=solo_raw)
    with warnings.catch_warnings():  # rq-scheduler's crontab warns of its own change
        warnings.simplefilter("ignore", FutureWarning)
        their_job = CALLS[call](theirs, "theirs")
    our_job = CALLS[call](ours, "ours")
    assert our_job.id == "ours"
    for job in (their_job, our_job):
        job.refresh()
    for field in FIELDS:
        if field == "enqueue_at_front" and call == "enqueue_at":
            # rq-scheduler's enqueue_at sets it after saving the job, so it is lost there
            assert (our_job.enqueue_at_front, their_job.enqueue_at_front) == (True, None)
            continue
        if field == "meta":  # ours says which schedule the worker reports each run to
            meta = dict(our_job.meta)
            where = {key: meta.pop(key) for key in (PREFIX_META, SHARDS_META, REDIS_META)}
            assert where == {PREFIX_META: "rache:rq:", SHARDS_META: 1, REDIS_META: "queue"}
            assert meta == their_job.meta
            continue
        assert getattr(our_job, field) == getattr(their_job, field), field
    # and its callbacks record each run's outcome (rq-scheduler's job has none)
    assert our_job.success_callback is adapters.rq_succeeded
    assert our_job.failure_callback is adapters.rq_failed
    assert their_job.success_callback is None
    assert our_job.get_status() == their_job.get_status() == JobStatus.SCHEDULED
    their_time = solo_raw.zscore(theirs.scheduled_jobs_key, "theirs")
    our_time = ours.rache.job_details("ours")["schedule_at"]
    assert abs(our_time - their_time) < 1.0  # rq-scheduler drops the fraction
    [(listed, when)] = ours.get_jobs(with_times=True)
    assert listed.id == "ours" and when.tzinfo is None  # naive UTC, as rq-scheduler's
    assert abs(when.replace(tzinfo=timezone.utc).timestamp() - their_time) < 1.0
    assert ours.rache.job_details("ours")[QUEUE_FIELD] == our_job.origin


def test_the_schedule_is_rache_s_and_the_rq_job_is_saved_at_once(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    job = scheduler.enqueue_in(timedelta(minutes=5), TASK, "x")
    assert Job.fetch(job.id, connection=solo_raw).get_status() == JobStatus.SCHEDULED
    details = scheduler.rache.job_details(job.id)
    assert details == {"id": job.id, "schedule_at": details["schedule_at"], QUEUE_FIELD: "default"}
    now = solo_raw.time()[0]
    assert 299 <= details["schedule_at"] - now <= 301
    assert solo_raw.zscore("rache:rq:queue", job.id) == details["schedule_at"]


# Due jobs into rq, run by real workers.


def test_due_jobs_go_into_their_queues_and_real_workers_run_each_once(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    for n in range(10):
        scheduler.enqueue_at(past, TASK, f"due-{n}", queue_name="other" if n % 2 else None)
    later = scheduler.enqueue_in(timedelta(hours=1), TASK, "later")
    assert scheduler.count() == 11
    assert scheduler.count(until=datetime.now(timezone.utc)) == 10
    scheduler.run(burst=True)
    assert len(ids(Queue("default", connection=solo_raw))) == 5
    assert len(ids(Queue("other", connection=solo_raw))) == 5
    assert [job.id for job in scheduler.get_jobs()] == [later.id]
    assert sorted(rq_worker(solo, "default", "other")) == sorted(f"due-{n}" for n in range(10))
    assert later in scheduler and later.id in scheduler
    assert Job.fetch(later.id, connection=solo_raw).get_status() == JobStatus.SCHEDULED


def test_at_front_jobs_go_to_the_front_of_their_queue(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    past = datetime(2020, 1, 1)
    first = scheduler.enqueue_at(past, TASK, "first")
    front = scheduler.enqueue_at(past + timedelta(seconds=1), TASK, "front", at_front=True)
    moved = scheduler.enqueue_jobs()
    assert [job.id for job in moved] == [first.id, front.id]
    assert ids(Queue("default", connection=solo_raw)) == [front.id, first.id]


def test_interval_and_cron_jobs_repeat_as_told_then_stop(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    now = datetime.now(timezone.utc)
    every = scheduler.schedule(now, TASK, args=["every"], interval=1, repeat=2)
    forever = scheduler.schedule(now, TASK, args=["forever"], interval=1)
    cron = scheduler.cron("0 6 * * *", TASK, args=["cron"], repeat=1)  # daily, 06:00 UTC
    daily = scheduler.cron("0 6 * * *", TASK, args=["daily"])
    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        scheduler.enqueue_jobs()
        time.sleep(0.05)
    assert every not in scheduler and forever in scheduler
    assert Job.fetch(every.id, connection=solo_raw).meta["repeat"] == 0
    scheduler.cancel(forever)  # so that only the cron jobs are due below
    scheduler.change_execution_time(cron, datetime(2020, 1, 1))  # due: its one run, then off
    assert [job.id for job in scheduler.enqueue_jobs()] == [cron.id]
    assert cron not in scheduler
    for moved in ([daily.id], []):  # due twice for one occurrence (today's): moved once
        scheduler.change_execution_time(daily, datetime(2020, 1, 1))
        assert [job.id for job in scheduler.enqueue_jobs()] == moved
    assert daily in scheduler
    ran = rq_worker(solo, "default")
    assert ran.count("every") == 2 and ran.count("cron") == 1 and ran.count("daily") == 1
    # at 0, 1 and 2 s (3 too if the loop began late); a stall over 1 s coalesces two runs
    assert 2 <= ran.count("forever") <= 4


def test_a_cron_job_in_local_time_takes_the_zone_of_tz(
    solo_raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    scheduler = Scheduler(connection=solo_raw)
    job = scheduler.cron("0 9 * * *", TASK, args=["tokyo"], use_local_timezone=True)
    details = scheduler.rache.job_details(job.id)
    assert details["recurring"]["timezone"] == "Asia/Tokyo"
    due = datetime.fromtimestamp(details["schedule_at"], timezone.utc)
    assert (due.hour, due.minute) == (0, 0)  # 09:00 in Tokyo
    utc = scheduler.cron("0 9 * * *", TASK, args=["utc"])
    assert scheduler.rache.job_details(utc.id)["recurring"]["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("tz", "taken"),
    [("posix/Asia/Tokyo", "Asia/Tokyo"), ("right/Asia/Tokyo", "Asia/Tokyo"), ("localtime", None)],
)
def test_a_cron_job_in_local_time_takes_the_place_tz_names(
    solo_raw: Any, monkeypatch: pytest.MonkeyPatch, tz: str, taken: Any
) -> None:
    """A posix/ or right/ copy is the zone it copies; 'localtime' names no place: passed over."""
    monkeypatch.setenv("TZ", tz)
    zone = local_timezone()
    if taken is None:  # the host's zone from /etc/localtime or /etc/timezone, or UTC
        assert zone != "localtime" and Cron("* * * * *", timezone=zone).timezone == zone
    else:
        assert zone == taken
    scheduler = Scheduler(connection=solo_raw)
    job = scheduler.cron("0 9 * * *", TASK, args=["local"], use_local_timezone=True)
    assert scheduler.rache.job_details(job.id)["recurring"]["timezone"] == zone


def test_a_job_handed_out_twice_is_moved_once(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    once = scheduler.enqueue_at(datetime(2020, 1, 1), TASK, "once")
    periodic = scheduler.schedule(datetime(2020, 1, 1), TASK, args=["p"], interval=3600)
    runner = scheduler.runner()
    jobs = list(scheduler.rache.pending_jobs(reschedule_in=60))
    assert len(jobs) == 2
    for job in jobs + jobs:  # each handed out twice: a runner died after moving it
        runner(job)
    assert (runner.moved, runner.skipped) == (2, 2)
    assert sorted(ids(Queue("default", connection=solo_raw))) == sorted([once.id, periodic.id])
    assert once not in scheduler and periodic in scheduler


def test_a_periodic_job_whose_last_run_was_moved_is_not_moved_again(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    runner = scheduler.runner()
    last = scheduler.schedule(datetime(2020, 1, 1), TASK, args=["last"], interval=60, repeat=1)
    single = scheduler.schedule(datetime(2020, 1, 1), TASK, args=["one"], interval=60, repeat=0)
    assert runner.move(last.id, f"{last.id}:1").id == last.id  # its one run
    assert runner.move(single.id, f"{single.id}:1").id == single.id  # repeat=0: one run too
    # A later occurrence handed out before the rache job was deleted (its runner died):
    assert runner.move(last.id, f"{last.id}:2") is None
    assert runner.move(single.id, f"{single.id}:2") is None
    assert ids(Queue("default", connection=solo_raw)) == [last.id, single.id]
    assert last not in scheduler and single not in scheduler


def test_a_job_whose_rq_job_is_gone_is_unscheduled(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    job = scheduler.enqueue_at(datetime(2020, 1, 1), TASK, "gone")
    solo_raw.delete(job.key)
    assert scheduler.enqueue_jobs() == []
    assert job.id not in scheduler
    assert ids(Queue("default", connection=solo_raw)) == []


def test_a_runner_leaves_jobs_that_are_not_rq_scheduler_s_alone(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    scheduler.rache.schedule_job("not-rq", -1, url="http://example.com")
    runner = Runner(scheduler.rache)
    [job] = scheduler.rache.pending_jobs(reschedule_in=60)
    with pytest.raises(ValueError, match="'not-rq' is not an rq-scheduler job"):
        runner(job)
    assert scheduler.rache.job_details("not-rq")["url"] == "http://example.com"


def test_a_dependent_job_waits_for_its_dependency(solo: harness.RedisServer, solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    first = Queue("later", connection=solo_raw).enqueue(TASK, "dependency")
    job = scheduler.enqueue_at(datetime(2020, 1, 1), TASK, "dependent", depends_on=first)
    scheduler.run(burst=True)
    assert job.get_status() == JobStatus.DEFERRED
    assert rq_worker(solo, "later", "default") == ["dependency", "dependent"]


# Reading and changing the schedule.


def test_get_jobs_count_cancel_and_contains(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    base = datetime(2030, 1, 1)
    jobs = [scheduler.enqueue_at(base + timedelta(days=n), TASK, str(n)) for n in range(5)]
    assert [job.id for job in scheduler.get_jobs()] == [job.id for job in jobs]
    until = base + timedelta(days=2)
    assert [job.id for job in scheduler.get_jobs(until=until)] == [job.id for job in jobs[:3]]
    assert scheduler.count(until=until) == 3 and scheduler.count() == 5
    assert scheduler.count(until=until.replace(tzinfo=timezone.utc).timestamp()) == 3
    assert scheduler.count(until=timedelta(days=1)) == 0
    sliced = list(scheduler.get_jobs(with_times=True, offset=1, length=2))
    assert [(job.id, when) for job, when in sliced] == [
        (jobs[1].id, base + timedelta(days=1)),
        (jobs[2].id, base + timedelta(days=2)),
    ]
    scheduler.cancel(jobs[0])
    scheduler.cancel(jobs[1].id)
    assert jobs[0] not in scheduler and jobs[1].id not in scheduler and jobs[2] in scheduler
    assert "unknown" not in scheduler
    assert scheduler.count() == 3
    assert Job.fetch(jobs[0].id, connection=solo_raw).id == jobs[0].id  # as rq-scheduler


def test_change_execution_time(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    one_off = scheduler.enqueue_at(datetime(2030, 1, 1), TASK, "x")
    scheduler.change_execution_time(one_off, datetime(2031, 1, 1))
    assert [when for _, when in scheduler.get_jobs(with_times=True)] == [datetime(2031, 1, 1)]
    periodic = scheduler.schedule(datetime(2030, 1, 1), TASK, args=["p"], interval=60)
    scheduler.change_execution_time(periodic, datetime(2020, 1, 1))
    [moved] = scheduler.enqueue_jobs()
    assert moved.id == periodic.id
    details = scheduler.rache.job_details(periodic.id)
    assert details["recurring"]["every"] == 60 and details[QUEUE_FIELD] == "default"
    scheduler.cancel(periodic)
    with pytest.raises(ValueError, match="Job not in scheduled jobs queue"):
        scheduler.change_execution_time(periodic, datetime(2030, 1, 1))


def queue_removals(raw: Any, action: Callable[[], Any]) -> List[str]:
    """The ZREMs (scripts' own included) that Redis ran on a queue while ``action`` ran."""
    marker = raw.client()
    marker.ping()
    with raw.monitor() as monitor:
        action()
        marker.echo("--end--")
        seen: List[str] = []
        while True:
            command = monitor.next_command()["command"]
            if command == "ECHO --end--":
                return seen
            if command.split()[0].upper() == "ZREM" and "queue" in command:
                seen.append(command)


@pytest.mark.parametrize("start", [datetime(2030, 1, 1), datetime(2020, 1, 1)])
def test_change_execution_time_never_takes_the_job_off_the_schedule(
    solo_raw: Any, start: datetime
) -> None:
    """One write moves the job: no moment (a crash, a lost connection) finds it gone."""
    scheduler = Scheduler(connection=solo_raw)
    one_off = scheduler.enqueue_at(datetime(2030, 1, 1), TASK, "x")
    periodic = scheduler.schedule(start, TASK, args=["p"], interval=60)
    cron = scheduler.cron("0 6 * * *", TASK, args=["c"])
    for job, when in [
        (one_off, datetime(2031, 1, 1)),
        (periodic, datetime(2032, 1, 1)),
        (periodic, start),  # back to its rule's own start
        (cron, datetime(2033, 1, 1)),
    ]:
        moves = queue_removals(solo_raw, partial(scheduler.change_execution_time, job, when))
        assert moves == []
        due = scheduler.rache.job_details(job.id)["schedule_at"]
        assert due == when.replace(tzinfo=timezone.utc).timestamp()  # a cron job's claim
        assert job.id in scheduler.rache.recurring_jobs() or job is one_off  # moves it on
    details = scheduler.rache.job_details(periodic.id)
    assert details["recurring"]["every"] == 60 and details[QUEUE_FIELD] == "default"
    assert details["recurring"]["start"] == start.replace(tzinfo=timezone.utc).timestamp()
    scheduler.change_execution_time(periodic, datetime(2020, 1, 1, 0, 0, 30))
    assert [job.id for job in scheduler.enqueue_jobs()] == [periodic.id]  # due, then every 60 s
    before = snapshot(solo_raw)
    with pytest.raises(ValueError, match=r"^date_time of a periodic job: start must be a finite"):
        scheduler.change_execution_time(periodic, datetime(1960, 1, 1))
    assert snapshot(solo_raw) == before


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_jobs_to_queue_are_due_on_the_server_clock_not_the_local_one(
    solo_raw: Any, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    """Due times are set on the Redis server's clock: "now" and ``until`` are read there."""
    scheduler = Scheduler(connection=solo_raw)
    now = scheduler.rache.server_time()
    past = scheduler.enqueue_at(datetime.fromtimestamp(now - 10, timezone.utc), TASK, "p")
    soon = scheduler.enqueue_at(datetime.fromtimestamp(now + 10, timezone.utc), TASK, "s")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + skew)  # the local clock an hour off
    assert [job.id for job in scheduler.get_jobs_to_queue()] == [past.id]
    assert [job.id for job, _ in scheduler.get_jobs_to_queue(with_times=True)] == [past.id]
    assert scheduler.count(until=timedelta(seconds=5)) == 1
    assert [job.id for job in scheduler.get_jobs(until=timedelta(seconds=30))] == [
        past.id,
        soon.id,
    ]


# Bad input: a clear error, and nothing changed.

BAD: Dict[str, Any] = {
    "enqueue_at, no datetime": (
        lambda s: s.enqueue_at("tomorrow", TASK),
        TypeError,
        "scheduled_time must be a datetime",
    ),
    "enqueue_in, a number": (
        lambda s: s.enqueue_in(60, TASK),
        TypeError,
        "time_delta must be a timedelta",
    ),
    "schedule, repeat without interval": (
        lambda s: s.schedule(AT, TASK, repeat=3),
        ValueError,
        "without interval",
    ),
    "schedule, interval 0": (
        lambda s: s.schedule(AT, TASK, interval=0.5),
        ValueError,
        "interval must be at least 1",
    ),
    "schedule, negative repeat": (
        lambda s: s.schedule(AT, TASK, interval=5, repeat=-1),
        ValueError,
        "repeat must be",
    ),
    "schedule, a repeat too long to write": (
        lambda s: s.schedule(AT, TASK, interval=5, repeat=-(10**5000)),
        ValueError,
        "^repeat must be at least 0, not a negative int of about 5001 digits$",
    ),
    "schedule, before 1970": (
        lambda s: s.schedule(datetime(1960, 1, 1), TASK, interval=5),
        ValueError,
        "after 1970",
    ),
    "cron, bad expression": (
        lambda s: s.cron("61 * * * *", TASK),
        ValueError,
        "cron_string '61 \\* \\* \\* \\*'",
    ),
    "cron, 6 fields": (
        lambda s: s.cron("0 0 1 1 * 2031", TASK),
        ValueError,
        "6 fields: rache.rq takes 5",
    ),
    "cron, not a str": (lambda s: s.cron(5, TASK), TypeError, "cron_string must be a str"),
    "queue_name": (lambda s: s.enqueue_at(AT, TASK, queue_name=3), TypeError, "queue_name"),
    "meta": (lambda s: s.enqueue_at(AT, TASK, meta=[1]), TypeError, "meta must be a dict"),
    "get_jobs, offset alone": (
        lambda s: list(s.get_jobs(offset=1)),
        ValueError,
        "offset and length",
    ),
    "count, until": (lambda s: s.count(until="soon"), TypeError, "until must be"),
    "cancel, not an id": (lambda s: s.cancel(3), TypeError, "job must be an rq job"),
    "change_execution_time, unscheduled": (
        lambda s: s.change_execution_time("nope", AT),
        ValueError,
        "not in scheduled jobs",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_and_changes_nothing(solo_raw: Any, case: str) -> None:
    scheduler = Scheduler(connection=solo_raw)
    scheduler.enqueue_at(AT, TASK, "standing", job_id="standing")
    call, error, message = BAD[case]
    before = snapshot(solo_raw)
    with pytest.raises(error, match=message):
        call(scheduler)
    assert snapshot(solo_raw) == before


@pytest.mark.parametrize(
    "when", [datetime(9999, 1, 1), datetime(1, 1, 1), datetime(2400, 1, 1, tzinfo=timezone.utc)]
)
def test_a_time_rache_cannot_keep_is_rache_s_clear_error_and_changes_nothing(
    solo_raw: Any, when: datetime
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    scheduler.enqueue_at(AT, TASK, "standing", job_id="standing")
    before = snapshot(solo_raw)
    message = "scheduled_time must be a finite Unix timestamp within"
    with pytest.raises(ValueError, match=message):
        scheduler.enqueue_at(when, TASK, "x")
    with pytest.raises(ValueError, match=message):
        scheduler.enqueue_at(when, TASK, "x", job_id="standing")  # the rq job stays as it was
    with pytest.raises(ValueError, match=message):
        scheduler.schedule(when, TASK, args=["x"])
    assert snapshot(solo_raw) == before


def test_enqueue_at_schedules_one_job_in_one_script_call(solo_raw: Any) -> None:
    scheduler = Scheduler(connection=solo_raw)
    scheduler.enqueue_at(AT, TASK, "warm", job_id="warm")  # the script in the cache
    sent = commands_sent(solo_raw, lambda: scheduler.enqueue_at(AT, TASK, "x", job_id="one"))
    assert sent.count("EVALSHA") == 2  # the delete of a given id's rache job, then one schedule
    sent = commands_sent(solo_raw, lambda: scheduler.enqueue_at(AT, TASK, "y"))
    assert sent.count("EVALSHA") == 1
    naive, aware = scheduler.rache.job_details("one"), AT.replace(tzinfo=timezone.utc)
    assert naive["schedule_at"] == aware.timestamp()  # naive is UTC, as in rq-scheduler


def test_bad_scheduler_arguments(solo_raw: Any) -> None:
    with pytest.raises(ValueError, match="`connection` argument is required"):
        Scheduler()
    with pytest.raises(ValueError, match="interval must be"):
        Scheduler(connection=solo_raw, interval=0)
    with pytest.raises(TypeError, match="job_class must be a class"):
        Scheduler(connection=solo_raw, job_class=3)
    with pytest.raises(TypeError, match=r"scheduler must be a rache\.Scheduler"):
        Runner(solo_raw)
    assert Scheduler(connection=solo_raw, queue=Queue("named", connection=solo_raw)).queue_name == (
        "named"
    )


@pytest.mark.parametrize("how", ["REDIS_URL", "rqscheduler's options"])
def test_python_m_rache_rq_moves_due_jobs(
    solo: harness.RedisServer, solo_raw: Any, tmp_path: Path, how: str
) -> None:
    scheduler = Scheduler(connection=solo_raw)
    for n in range(3):
        scheduler.enqueue_at(datetime(2020, 1, 1), TASK, f"cli-{n}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": solo.url}
    command = [sys.executable, "-m", "rache.rq", "--burst"]
    if how != "REDIS_URL":  # as a supervisor line written for rqscheduler would run it
        env["REDIS_URL"] = "redis://localhost:1/0"  # not this one
        command += ["-H", solo.host, "-p", str(solo.port), "-d", "0", "-i", "5"]
        command += ["--pid", str(tmp_path / "pid"), "--path", str(tmp_path)]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "3 claimed, 3 handled, 0 failed" in result.stderr
    if how != "REDIS_URL":
        assert int((tmp_path / "pid").read_text()) > 0
    assert sorted(rq_worker(solo, "default")) == ["cli-0", "cli-1", "cli-2"]
    assert scheduler.count() == 0
    assert RacheScheduler(solo_raw, "rache:rq:").stats().total == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--lease", "0"], "lease must be a number of seconds above 0, not 0.0"),
        (["-q", "nosuch.Queue"], "queue_class 'nosuch.Queue' cannot be imported"),
        (["-i", "-1"], "interval must be a number of seconds above 0"),
    ],
)
def test_python_m_rache_rq_refuses_bad_options_in_one_line(
    solo: harness.RedisServer, options: List[str], message: str
) -> None:
    command = [sys.executable, "-m", "rache.rq", "--url", solo.url, *options]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"python -m rache.rq: error: {message}")


def test_without_rq_importing_rache_rq_says_which_extra_to_install() -> None:
    code = "import sys; sys.modules['rq'] = None; import rache.rq"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "MissingExtra: rache.rq needs rq: pip install '.[rq]' in rache's checkout"
    ), done.stderr


@pytest.mark.slow
def test_the_example_runs(solo: harness.RedisServer, solo_raw: Any) -> None:
    env = {**os.environ, "REDIS_URL": solo.url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rq_scheduler_app.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("hello", "moved"))]
    assert "scheduled 4 jobs; 'soon' is an rq job already: soon" in result.stdout
    assert lines[0] == "moved 5 jobs into rq; still scheduled: 1"
    assert sorted(lines[1:]) == [
        "hello a second later",
        "hello every second",
        "hello every second",
        "hello every second",
        "hello from the past",
    ]
    assert Scheduler(connection=solo_raw).count() == 0  # the cron job cancelled at the end


def test_adopt_takes_over_rq_scheduler_s_schedule(solo: harness.RedisServer, solo_raw: Any) -> None:
    rq_scheduler = pytest.importorskip("rq_scheduler")
    theirs = rq_scheduler.Scheduler(connection=solo_raw)
    due = theirs.enqueue_at(datetime(2020, 1, 1), TASK, "adopted")
    later = theirs.enqueue_at(datetime(2030, 1, 1), TASK, "later")
    periodic = theirs.schedule(datetime(2030, 1, 1), TASK, args=["p"], interval=60, repeat=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        cron = theirs.cron("0 6 * * *", TASK, args=["c"])
    gone = theirs.enqueue_at(datetime(2030, 1, 1), TASK, "gone")
    solo_raw.delete(gone.key)
    times = dict(solo_raw.zrange(theirs.scheduled_jobs_key, 0, -1, withscores=True))
    ours = Scheduler(connection=solo_raw)
    assert ours.adopt() == 4
    assert solo_raw.exists(theirs.scheduled_jobs_key) == 0
    listed = {job.id: when for job, when in ours.get_jobs(with_times=True)}
    assert sorted(listed) == sorted(job.id for job in (due, later, periodic, cron))
    for job in (due, later, periodic, cron):  # at the time rq-scheduler had
        at = listed[job.id].replace(tzinfo=timezone.utc).timestamp()
        assert at == times[job.id.encode()]
    assert ours.rache.job_details(periodic.id)["recurring"]["every"] == 60
    assert ours.rache.job_details(cron.id)["recurring"]["cron"] == "0 6 * * *"
    assert ours.adopt() == 0  # again: nothing left
    ours.run(burst=True)
    assert rq_worker(solo, "default") == ["adopted"]


def test_adopt_refuses_a_rule_rache_cannot_read_before_touching_that_job(
    solo_raw: Any,
) -> None:
    ours = Scheduler(connection=solo_raw)
    ours.enqueue_at(datetime(2030, 1, 1), TASK, "ours", job_id="same")
    before = {k: v for k, v in snapshot(solo_raw).items() if k.startswith(b"rache:")}
    job = Job.create(TASK, connection=solo_raw, id="same", meta={"cron_string": "not cron"})
    job.save()  # what rq-scheduler left: the same id, with a rule no Cron takes
    solo_raw.zadd("rq:scheduler:scheduled_jobs", {"same": 1893456000})
    with pytest.raises(ValueError, match="not cron"):
        ours.adopt()
    after = snapshot(solo_raw)  # rache's keys as they were; still in rq-scheduler's set
    assert {k: v for k, v in after.items() if k.startswith(b"rache:")} == before
    assert solo_raw.zscore("rq:scheduler:scheduled_jobs", "same") == 1893456000
    assert "same" in ours


def test_the_docs_page_runs_as_written(
    solo: harness.RedisServer, solo_raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/howto/rq-scheduler.rst: each Python block, on its own, prints what it says."""
    from tests.test_readme import expected_output, python_blocks

    monkeypatch.setenv("REDIS_URL", solo.url)
    page = ROOT / "docs" / "howto" / "rq-scheduler.rst"
    blocks = python_blocks(page.read_text())
    assert len(blocks) == 3
    for block in blocks:
        solo_raw.flushdb()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(page), "exec"), {})
        for expected in expected_output(block):
            assert expected in out.getvalue(), (expected, out.getvalue())
