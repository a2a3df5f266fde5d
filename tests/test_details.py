"""job_details, delete_job and scheduled_jobs."""

from __future__ import annotations

from typing import Any

import pytest

from rache import Every, JobNotFound, Scheduler
from tests.support.helpers import is_millisecond_time, snapshot


def test_details_of_a_scheduled_job(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", 30, url="http://x", timeout=10)
    due = raw.zscore("rache:queue", "a")
    assert sched.job_details("a") == {
        "id": "a",
        "schedule_at": int(due),
        "url": "http://x",
        "timeout": 10,
    }


def test_details_of_a_scheduled_job_without_data(sched: Scheduler) -> None:
    sched.schedule_job("a", 30)
    assert set(sched.job_details("a")) == {"id", "schedule_at"}


def test_unknown_job_is_job_not_found_a_key_error(sched: Scheduler) -> None:
    with pytest.raises(JobNotFound, match="no job with id 'nope'") as info:
        sched.job_details("nope")
    assert isinstance(info.value, KeyError)


def test_delete_removes_entry_and_data_and_unknown_is_fine(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", 30, n=1)
    sched.schedule_job("b", 30, n=2)
    assert sched.delete_job("a") is True
    assert sched.delete_job("a") is False
    assert sched.delete_job("never") is False
    assert raw.zrange("rache:queue", 0, -1) == [b"b"]
    assert raw.exists("rache:job:a") == 0
    with pytest.raises(JobNotFound):
        sched.job_details("a")


def test_scheduled_jobs_ids_and_times_earliest_first(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("late", 100)
    sched.schedule_job("early", -100)
    sched.schedule_job("mid", 1.5)
    assert list(sched.scheduled_jobs()) == ["early", "mid", "late"]
    timed = list(sched.scheduled_jobs(with_times=True))
    assert [job_id for job_id, _ in timed] == ["early", "mid", "late"]
    assert timed == [
        (k.decode(), sched.job_details(k.decode())["schedule_at"])
        for k in raw.zrange("rache:queue", 0, -1)
    ]
    assert isinstance(timed[0][1], int) and is_millisecond_time(timed[1][1])


def test_scheduled_jobs_pages_through_everything_once(make: Any, raw: Any) -> None:
    sched = make(batch_size=10)
    raw.zadd("rache:queue", {f"t{i:03}": 1000 for i in range(55)})  # many ties on one time
    raw.zadd("rache:queue", {f"u{i:03}": 2000 + i for i in range(45)})
    assert list(sched.scheduled_jobs()) == [f"t{i:03}" for i in range(55)] + [
        f"u{i:03}" for i in range(45)
    ]
    assert list(sched.scheduled_jobs(with_times=True))[-1] == ("u044", 2044)


def test_scheduled_jobs_survives_its_anchor_leaving(make: Any, raw: Any) -> None:
    sched = make(batch_size=5)
    raw.zadd("rache:queue", {f"t{i:02}": 1000 for i in range(20)})
    seen = []
    for job_id in sched.scheduled_jobs():
        seen.append(job_id)
        if job_id == "t04":  # the last of the first page: the next page's anchor
            raw.zrem("rache:queue", "t04", "t02")
            raw.zadd("rache:queue", {"t00a": 1000})  # added behind the cursor
    assert seen == [f"t{i:02}" for i in range(20)]


def test_scheduled_jobs_on_an_empty_schedule(sched: Scheduler) -> None:
    assert list(sched.scheduled_jobs()) == []
    assert list(sched.scheduled_jobs(with_times=True)) == []


def test_foreign_data_never_hides_the_id_or_due_time(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", -5)
    raw.hset("rache:job:a", mapping={"id": "forged", "schedule_at": "1", "n": "2"})
    due = int(raw.zscore("rache:queue", "a"))
    assert sched.job_details("a") == {"id": "a", "schedule_at": due, "n": 2}
    assert list(sched.pending_jobs()) == [{"id": "a", "schedule_at": 1, "n": 2}]


def test_scheduled_jobs_never_repeats_untouched_jobs_when_its_anchor_moves(
    make: Any, raw: Any
) -> None:
    # Found in review: when the anchor moved and a whole page was skipped, the next page
    # started behind it and handed out again jobs nobody had touched.
    sched = make(batch_size=2)
    raw.zadd("rache:queue", dict.fromkeys("abcde", 1000))
    seen = []
    for job_id in sched.scheduled_jobs():
        seen.append(job_id)
        if job_id == "d":  # the anchor of the next page, moved within its own time
            raw.zadd("rache:queue", {"d": 1000.5})
    assert seen.count("c") == 1 and seen[:4] == ["a", "b", "c", "d"]
    assert set(seen) == set("abcde")


def test_scheduled_jobs_with_thousands_of_ties_and_a_deleted_anchor(make: Any, raw: Any) -> None:
    sched = make()  # the default batch: 5,000 jobs due in the same second span 10 pages
    raw.zadd("rache:queue", {f"job-{i:05}": 2000 for i in range(5000)})
    seen = []
    for job_id in sched.scheduled_jobs():
        seen.append(job_id)
        if job_id in ("job-00499", "job-03999"):  # page anchors, deleted as seen
            raw.zrem("rache:queue", job_id)
    assert seen == [f"job-{i:05}" for i in range(5000)]


def test_scheduled_jobs_anchor_order_is_bytewise(make: Any, raw: Any) -> None:
    sched = make(batch_size=2)
    ids = ["a", "B", "é", "a\\x00", "ab", "Z", "日", "a b"]
    raw.zadd("rache:queue", dict.fromkeys(ids, 7))
    seen = []
    for job_id in sched.scheduled_jobs():
        seen.append(job_id)
        raw.zrem("rache:queue", job_id)  # every anchor leaves: the fallback path each time
    assert seen == sorted(ids, key=str.encode)


def test_stats_of_an_empty_schedule(sched: Any) -> None:
    stats = sched.stats()
    assert (stats.total, stats.due, stats.earliest, stats.next_due, stats.lag) == (
        0,
        0,
        None,
        None,
        0,
    )
    assert stats.coming == [0] * 60 and stats.interval == 60


def test_stats_in_one_snapshot(sched: Any, raw: Any) -> None:
    offsets = {
        "late": -100,
        "later": -50,
        "now": 0,
        "a": 30,
        "b": 90,
        "c": 95,
        "d": 3010,
        "e": 4000,
    }
    for job_id, offset in offsets.items():
        sched.schedule_job(job_id, offset)
    stats = sched.stats()
    assert (stats.total, stats.due) == (8, 3)
    assert stats.earliest == raw.zscore("rache:queue", "late")
    assert stats.next_due == raw.zscore("rache:queue", "a")
    assert 99 <= stats.lag <= 101.5
    expected = [0] * 60
    expected[0], expected[1], expected[50] = 1, 2, 1  # 4000 s is beyond the hour
    assert stats.coming == expected
    hours = sched.stats(intervals=2, interval=3600)
    assert hours.coming == [4, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"intervals": -1}, "intervals"), ({"interval": 0}, "interval")]
)
def test_stats_rejects_bad_intervals(sched: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sched.stats(**kwargs)


def test_schedule_jobs_at_known_times_round_trips_an_export(make: Any, raw: Any) -> None:
    source, copy = make(prefix="src:"), make(prefix="dst:")
    source.schedule_job("whole", 100, n=1)
    source.schedule_job("milli", 12.345, s="x")
    source.schedule_job("past", -7)
    exported = [
        (
            job_id,
            due,
            {k: v for k, v in source.job_details(job_id).items() if k not in ("id", "schedule_at")},
        )
        for job_id, due in source.scheduled_jobs(with_times=True)
    ]
    assert copy.schedule_jobs(exported, at=True) == 3
    assert list(copy.scheduled_jobs(with_times=True)) == list(
        source.scheduled_jobs(with_times=True)
    )
    for job_id, *_ in exported:
        assert copy.job_details(job_id) == source.job_details(job_id)
    with pytest.raises(TypeError, match=r"jobs\[0\]: due time must be a Unix timestamp"):
        copy.schedule_jobs([("x", "tomorrow")], at=True)


def test_export_jobs_and_import_copy_a_schedule(make: Any, raw: Any) -> None:
    source, copy = make(prefix="src:", batch_size=3), make(prefix="dst:")
    raw.zadd("src:queue", {f"tie-{i}": 5000 for i in range(7)})  # pages across a tie
    source.schedule_job("whole", 100, n=1, neg=-3)
    source.schedule_job("milli", 12.345, s="x", raw=b"\xff")
    exported = list(source.export_jobs())
    assert [job_id for job_id, *_ in exported] == list(source.scheduled_jobs())
    assert dict((i, (due, data)) for i, due, data, *_ in exported)["milli"][1] == {
        "s": "x",
        "raw": b"\xff",
    }
    assert copy.schedule_jobs(exported, at=True) == 9
    assert list(copy.export_jobs()) == exported


def test_delete_says_whether_anything_was_there(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("scheduled", 30)
    sched.schedule_job("data-only", 0, n=1)
    assert [job["id"] for job in sched.pending_jobs()] == ["data-only"]  # its data stays
    sched.schedule_recurring("rule", Every(60))
    for job_id in ("scheduled", "data-only", "rule"):
        assert sched.delete_job(job_id) is True
        assert sched.delete_job(job_id) is False
    assert raw.exists("rache:queue", "rache:job:data-only", "rache:recurring") == 0


@pytest.mark.parametrize(("job_id", "error"), [(5, TypeError), ("", ValueError), (None, TypeError)])
def test_delete_of_a_bad_id_is_a_clear_error_and_changes_nothing(
    sched: Scheduler, raw: Any, job_id: Any, error: type
) -> None:
    sched.schedule_job("a", 30, n=1)
    before = snapshot(raw)
    with pytest.raises(error, match="job_id must"):
        sched.delete_job(job_id)
    assert snapshot(raw) == before


def test_recurring_jobs_lists_the_recurring_ids_only(sched: Scheduler, raw: Any) -> None:
    assert list(sched.recurring_jobs()) == []
    sched.schedule_job("plain", 30)
    for job_id in ("every", "daily", "日本"):
        sched.schedule_recurring(job_id, Every(60), data={"n": 1})
    assert sorted(sched.recurring_jobs()) == sorted(["every", "daily", "日本"])
    sched.delete_job("daily")
    assert sorted(sched.recurring_jobs()) == ["every", "日本"]
    before = snapshot(raw)
    list(sched.recurring_jobs())
    assert snapshot(raw) == before  # read-only
