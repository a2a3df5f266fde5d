"""schedule_jobs: many jobs per script call, meaning what as many schedule_job calls mean."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import rache
from rache import ReservedFieldError, Scheduler
from tests.support.helpers import commands_sent, is_millisecond_time, snapshot, warm_up


def test_bulk_means_what_single_calls_mean(make: Any, raw: Any) -> None:
    jobs: list[tuple[Any, ...]] = [
        ("a", 30, {"url": "http://a", "n": 1}),
        ("b", -5),
        ("c", 1.5, {"raw": b"\xff"}),
        ("d", timedelta(minutes=1), {}),
        ("a", 60, {"n": None, "m": 2}),  # the same id again: the later wins, data merges
    ]
    bulk = make(prefix="bulk:")
    single = make(prefix="single:")
    assert bulk.schedule_jobs(jobs) == 5
    for job_id, schedule_in, *data in jobs:
        single.schedule_job(job_id, schedule_in, **(data[0] if data else {}))
    for job_id in "abcd":
        got, want = bulk.job_details(job_id), single.job_details(job_id)
        assert abs(got.pop("schedule_at") - want.pop("schedule_at")) < 1.01
        assert got == want
    assert bulk.job_details("a") == {
        "id": "a",
        "schedule_at": bulk.job_details("a")["schedule_at"],
        "url": "http://a",
        "m": 2,
    }
    assert isinstance(bulk.job_details("a")["schedule_at"], int)
    assert is_millisecond_time(bulk.job_details("c")["schedule_at"])
    assert [job["id"] for job in bulk.pending_jobs()] == ["b"]


def test_batches_of_batch_size_one_round_trip_each(make: Any, raw: Any) -> None:
    sched = make(batch_size=100)
    warm_up(sched)
    jobs = [(f"j{i:03}", -1, {"i": i}) for i in range(250)]
    assert commands_sent(raw, lambda: sched.schedule_jobs(jobs)) == ["EVALSHA"] * 3
    assert raw.zcard("rache:queue") == 250
    assert [job["i"] for job in sched.pending_jobs()] == list(range(250))


def test_nothing_to_schedule_sends_nothing(sched: Scheduler, raw: Any) -> None:
    warm_up(sched)
    assert commands_sent(raw, lambda: sched.schedule_jobs([])) == []
    assert sched.schedule_jobs(iter([])) == 0


@pytest.mark.parametrize(
    ("job", "error", "match"),
    [
        (["x", 1], TypeError, r"jobs\[1\] must be a \(job_id, schedule_in\)"),
        (("x",), TypeError, r"jobs\[1\] must be"),
        (("x", 1, {}, 4), TypeError, r"jobs\[1\] must be"),
        (("x", 1, [1]), TypeError, r"jobs\[1\]: data must be a mapping"),
        ((None, 1), TypeError, r"jobs\[1\]: job_id must be a str"),
        (("x", float("nan")), ValueError, r"jobs\[1\]: schedule_in must be a finite"),
        (("x", 1, {"v": [1]}), TypeError, r"jobs\[1\]: job data 'v' must be"),
        (("x", 1, {"id": 1}), ReservedFieldError, r"jobs\[1\]: 'id' is reserved"),
    ],
)
def test_one_bad_job_is_named_and_nothing_is_written(
    sched: Scheduler, raw: Any, job: Any, error: type, match: str
) -> None:
    sched.schedule_job("existing", 10, keep=1)
    before = snapshot(raw)
    with pytest.raises(error, match=match):
        sched.schedule_jobs([("fine", 1), job, ("also-fine", 2)])
    assert snapshot(raw) == before


def test_a_stream_is_written_batch_by_batch_as_it_is_read(make: Any, raw: Any) -> None:
    sched = make(batch_size=100)
    seen: list[int] = []

    def stream() -> Any:
        for i in range(1000):
            if i % 100 == 50:  # mid-batch: the batches before it are already in Redis
                seen.append(raw.zcard("rache:queue"))
            yield (f"j{i:04}", 60, {"i": i})

    batches: list[int] = []
    assert sched.schedule_jobs(stream(), progress=batches.append) == 1000
    assert seen == [100 * k for k in range(10)]  # never more than one batch held back
    assert batches == [100] * 10 and raw.zcard("rache:queue") == 1000


def test_a_bad_job_of_a_stream_stops_it_after_the_earlier_batches(make: Any, raw: Any) -> None:
    # A list is checked whole (test_one_bad_job_is_named_and_nothing_is_written); a stream
    # batch by batch: the batches before the bad job's are written, its own and later not.
    sched = make(batch_size=10)
    jobs: list[Any] = [(f"j{i:02}", 60) for i in range(25)] + [("bad", "soon")]
    jobs += [(f"k{i}", 60) for i in range(30)]
    with pytest.raises(TypeError, match=r"^jobs\[25\]: schedule_in must be a number"):
        sched.schedule_jobs(iter(jobs))
    assert sorted(sched.scheduled_jobs()) == [f"j{i:02}" for i in range(20)]
    raw.flushall()
    with pytest.raises(TypeError, match=r"^jobs\[25\]: schedule_in must be a number"):
        sched.schedule_jobs(jobs)
    assert raw.keys("*") == []  # the list: nothing written


def test_many_fields_in_one_job(sched: Scheduler) -> None:
    data = {f"f{i}": i for i in range(3000)}  # more than one unpack() can take
    sched.schedule_jobs([("wide", 5, data)])
    assert sched.job_details("wide")["f2999"] == 2999
    sched.schedule_job("wide2", 5, **data)
    assert len(sched.job_details("wide2")) == 3002


def test_module_function(default_env: None, raw: Any) -> None:
    assert rache.schedule_jobs([("a", 0, {"n": 1}), ("b", 0)]) == 2
    assert list(rache.pending_jobs()) == [{"id": "a", "n": 1}, {"id": "b"}]
