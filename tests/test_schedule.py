"""schedule_job: due times on the server clock, data that persists and merges, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from rache import ReservedFieldError, Scheduler, due_time
from tests.support.helpers import commands_sent, is_millisecond_time, snapshot, warm_up


def server_now(raw: Any) -> float:
    seconds, micros = raw.time()
    return float(seconds + micros / 1e6)


def test_job_lands_in_the_queue_at_server_time_plus_offset(sched: Scheduler, raw: Any) -> None:
    before = raw.time()[0]
    sched.schedule_job("a", 10)
    after = raw.time()[0]
    due = raw.zscore("rache:queue", "a")
    assert due.is_integer()
    assert before + 10 <= due <= after + 10


def test_two_jobs_in_the_same_second_are_exactly_ten_apart(sched: Scheduler, raw: Any) -> None:
    for _ in range(5):  # retry across a second boundary
        sched.schedule_job("a", 10)
        sched.schedule_job("b", 20)
        a, b = raw.zscore("rache:queue", "a"), raw.zscore("rache:queue", "b")
        if a + 10 == b:
            break
    assert b - a == 10
    details = sched.job_details("a")
    assert isinstance(details["schedule_at"], int)


@pytest.mark.parametrize("offset", [0.25, timedelta(seconds=1, milliseconds=500), -2.5])
def test_fractional_offsets_keep_the_millisecond(sched: Scheduler, raw: Any, offset: Any) -> None:
    seconds = offset.total_seconds() if isinstance(offset, timedelta) else offset
    start = server_now(raw)
    sched.schedule_job("a", offset)
    end = server_now(raw)
    due = sched.job_details("a")["schedule_at"]
    assert is_millisecond_time(due)
    assert start + seconds - 0.001 <= due <= end + seconds


@pytest.mark.parametrize("offset", [timedelta(days=1), 7.0, 3])
def test_whole_second_offsets_give_int_due_times(sched: Scheduler, offset: Any) -> None:
    sched.schedule_job("a", offset)
    assert isinstance(sched.job_details("a")["schedule_at"], int)
    assert isinstance(next(sched.scheduled_jobs(with_times=True))[1], int)


def test_rescheduling_moves_the_job(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", 100)
    sched.schedule_job("a", 1000)
    assert raw.zcard("rache:queue") == 1
    assert raw.zscore("rache:queue", "a") - raw.time()[0] > 900


def test_data_persists_merges_and_none_removes(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", 10, timeout=10, url="http://x")
    sched.schedule_job("a", 10, retries=3)
    assert sched.job_details("a") == {
        "id": "a",
        "schedule_at": sched.job_details("a")["schedule_at"],
        "timeout": 10,
        "url": "http://x",
        "retries": 3,
    }
    sched.schedule_job("a", 10, timeout=None)
    assert raw.hgetall("rache:job:a") == {b"url": b"http://x", b"retries": b"3"}


def test_values_round_trip_by_the_0_3_1_rules(sched: Scheduler) -> None:
    sched.schedule_job(
        "a", 10, n=42, neg=-7, big=10**30, f=1.5, s="text", sup="²", raw=b"\xff\xfe", zip="0123"
    )
    job = sched.job_details("a")
    assert job["n"] == 42 and job["neg"] == -7 and job["big"] == 10**30
    assert job["f"] == "1.5"  # text that is not an integer comes back as text, as in 0.3.1
    assert job["s"] == "text" and job["sup"] == "²"
    assert job["raw"] == b"\xff\xfe"
    assert job["zip"] == 123  # ASCII decimal digits are an integer, as in 0.3.1


def test_id_is_reserved_a_runtime_error_and_nothing_is_written(sched: Scheduler, raw: Any) -> None:
    with pytest.raises(ReservedFieldError, match="'id' is reserved") as info:
        sched.schedule_job("a", 10, id="x", other=1)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, ValueError)
    assert raw.keys("*") == []


def test_schedule_in_is_mandatory(sched: Scheduler) -> None:
    with pytest.raises(TypeError):
        sched.schedule_job("a")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"job_id": None, "schedule_in": 1}, TypeError, "job_id must be a str"),
        ({"job_id": 5, "schedule_in": 1}, TypeError, "job_id must be a str"),
        ({"job_id": b"a", "schedule_in": 1}, TypeError, "job_id must be a str"),
        ({"job_id": "", "schedule_in": 1}, ValueError, "job_id must not be empty"),
        ({"job_id": "\ud800", "schedule_in": 1}, ValueError, "job_id cannot be encoded"),
        ({"job_id": "a", "schedule_in": float("nan")}, ValueError, "schedule_in must be a finite"),
        ({"job_id": "a", "schedule_in": float("inf")}, ValueError, "schedule_in must be a finite"),
        ({"job_id": "a", "schedule_in": -float("inf")}, ValueError, "schedule_in must be a finite"),
        ({"job_id": "a", "schedule_in": True}, TypeError, "schedule_in must be a number"),
        ({"job_id": "a", "schedule_in": "10"}, TypeError, "schedule_in must be a number"),
        ({"job_id": "a", "schedule_in": None}, TypeError, "schedule_in must be a number"),
        ({"job_id": "a", "schedule_in": 10**11}, ValueError, "schedule_in must be within"),
        ({"job_id": "a", "schedule_in": 1, "x": {"a": 1}}, TypeError, "job data 'x' must be"),
        ({"job_id": "a", "schedule_in": 1, "x": [1]}, TypeError, "job data 'x' must be"),
        ({"job_id": "a", "schedule_in": 1, "x": True}, TypeError, "job data 'x' must be"),
        ({"job_id": "a", "schedule_in": 1, "x": float("nan")}, ValueError, "job data 'x'"),
        ({"job_id": "a", "schedule_in": 1, "x": "\udc80"}, ValueError, "job data 'x' cannot"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    sched: Scheduler, raw: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    sched.schedule_job("existing", 10, keep=1)
    before = snapshot(raw)
    with pytest.raises(error, match=match):
        sched.schedule_job(**kwargs)
    assert snapshot(raw) == before


def test_negative_schedule_in_is_due_at_once(sched: Scheduler) -> None:
    sched.schedule_job("late", -5)
    sched.schedule_job("later", 60)
    assert [job["id"] for job in sched.pending_jobs()] == ["late"]


def test_unicode_and_separator_ids(sched: Scheduler, raw: Any) -> None:
    ids = ["http://example.com/a?b=c", "{tag}:x", "rache:queue", "日本", "a" * 10_000]
    for job_id in ids:
        sched.schedule_job(job_id, -1, n=1)
    assert raw.zcard("rache:queue") == len(ids)  # "rache:queue" as an id is just a member
    claimed = list(sched.pending_jobs())
    assert sorted(job["id"] for job in claimed) == sorted(ids)
    assert all(job["n"] == 1 for job in claimed)


# -- schedule_job_at: one job at a time rather than in a delay ---------------------------------


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (2_000_000_000, 2_000_000_000),
        (2_000_000_000.25, 2_000_000_000.25),
        (1_500_000_000.0, 1_500_000_000),  # whole seconds: an int, as schedule_job gives
        (datetime(2033, 5, 18, 3, 33, 20, tzinfo=timezone.utc), 2_000_000_000),
        (datetime(2033, 5, 18, 5, 33, 20, 500_000, tzinfo=timezone(timedelta(hours=2))), 2e9 + 0.5),
    ],
)
def test_schedule_job_at_sets_that_due_time(sched: Scheduler, raw: Any, at: Any, due: Any) -> None:
    assert sched.schedule_job_at("a", at) == due
    assert raw.zscore("rache:queue", "a") == due
    assert due_time(at) == due and type(due_time(at)) is type(due)  # the same, without I/O
    assert sched.job_details("a")["schedule_at"] == due
    assert type(sched.job_details("a")["schedule_at"]) is type(due)


def test_schedule_job_at_merges_data_and_moves_the_job(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", 60, url="http://x", n=1)
    sched.schedule_job_at("a", 2_000_000_000, data={"n": None, "kind": "report"})
    assert sched.job_details("a") == {
        "id": "a",
        "schedule_at": 2_000_000_000,
        "url": "http://x",
        "kind": "report",
    }
    sched.schedule_job_at("a", 2_000_000_100)  # no data: the data stays
    assert raw.zrange("rache:queue", 0, -1, withscores=True) == [(b"a", 2_000_000_100.0)]
    assert sched.job_details("a")["url"] == "http://x"
    # A data key may be any name schedule_job's keywords take, "at" and "data" too.
    sched.schedule_job_at("a", 2_000_000_100, data={"at": 1, "data": "d", "job_id": "j"})
    assert sched.job_details("a")["at"] == 1 and sched.job_details("a")["job_id"] == "j"


def test_schedule_job_at_in_the_past_is_due_at_once(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job_at("old", server_now(raw) - 30, data={"n": 1})
    sched.schedule_job_at("later", server_now(raw) + 3600)
    assert list(sched.pending_jobs()) == [{"id": "old", "n": 1}]


def test_schedule_job_at_starts_a_new_run_each_time(sched: Scheduler, raw: Any) -> None:
    at = server_now(raw) - 10
    occurrences = []
    for _ in range(2):  # the same due time twice: two runs, two occurrence ids
        sched.schedule_job_at("a", at)
        (job,) = sched.pending_jobs()
        occurrences.append(job.occurrence_id)
    assert occurrences[0] != occurrences[1]
    assert all(o.startswith(f"a:{job.due_at}:") for o in occurrences)


def test_schedule_job_at_is_one_script_call(sched: Scheduler, raw: Any) -> None:
    warm_up(sched)
    sched.schedule_job_at("a", 2_000_000_000)
    assert commands_sent(raw, lambda: sched.schedule_job_at("a", 2e9, data={"x": 1})) == ["EVALSHA"]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("a", datetime(2030, 1, 1)), ValueError, "at must be an aware datetime.*naive"),
        (("a", "2030-01-01"), TypeError, "at must be a Unix timestamp or an aware datetime"),
        (("a", None), TypeError, "at must be a Unix timestamp or an aware datetime, not NoneType"),
        (("a", True), TypeError, "at must be a Unix timestamp"),
        (("a", timedelta(seconds=5)), TypeError, "at must be a Unix timestamp"),
        (("a", float("nan")), ValueError, "at must be a finite Unix timestamp"),
        (("a", float("inf")), ValueError, "at must be a finite Unix timestamp"),
        (("a", 10**11), ValueError, "within 10,000,000,000 seconds of 1970"),
        ((5, 2e9), TypeError, "job_id must be a str"),
        (("", 2e9), ValueError, "job_id must not be empty"),
    ],
)
def test_schedule_job_at_bad_input_is_a_clear_error_and_writes_nothing(
    sched: Scheduler, raw: Any, args: Any, error: type, match: str
) -> None:
    sched.schedule_job("existing", 10, keep=1)
    before = snapshot(raw)
    with pytest.raises(error, match=match):
        sched.schedule_job_at(*args)
    assert snapshot(raw) == before
    if args[0] == "a":  # due_time makes the same check, naming the argument it is told
        with pytest.raises(error, match=match.replace("at must", "when must")):
            due_time(args[1], "when")


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ([("x", 1)], TypeError, "data must be a mapping, not list"),
        ({"x": [1]}, TypeError, "job data 'x' must be"),
        ({"id": 1}, ReservedFieldError, "'id' is reserved"),
        ({"schedule_at": 1}, ReservedFieldError, "'schedule_at' is reserved"),
        ({1: "x"}, TypeError, "job data key 1 must be a str"),
    ],
)
def test_schedule_job_at_bad_data_is_a_clear_error_and_writes_nothing(
    sched: Scheduler, raw: Any, data: Any, error: type, match: str
) -> None:
    sched.schedule_job("existing", 10, keep=1)
    before = snapshot(raw)
    with pytest.raises(error, match=match):
        sched.schedule_job_at("existing", 2e9, data=data)
    assert snapshot(raw) == before


def test_schedule_job_at_takes_no_data_keywords(sched: Scheduler) -> None:
    with pytest.raises(TypeError):
        sched.schedule_job_at("a", 2e9, url="http://x")  # type: ignore[call-arg]


# -- server_time: the clock of every due time ----------------------------------------------


def test_server_time_is_the_servers_clock(sched: Scheduler, raw: Any) -> None:
    before = server_now(raw)
    now = sched.server_time()
    after = server_now(raw)
    assert isinstance(now, float) and before <= now <= after
    due = sched.schedule_job("a", 0)
    assert abs(due - sched.server_time()) < 2  # the clock schedule_job counts from
