"""pending_jobs: claims of due jobs, removal or rescheduling, limits, batches, early stops."""

from __future__ import annotations

import gc
import re
from typing import Any, List, Optional, Tuple

import pytest

from rache import Every, Job, JobNotFound, Scheduler
from rache.claim import Claim
from tests.support.helpers import is_millisecond_time, snapshot


def ids(jobs: Any) -> list[str]:
    return [job["id"] for job in jobs]


def test_returns_due_jobs_earliest_first_with_their_data(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("b", -5, n=2)
    sched.schedule_job("a", -10, n=1, s="x")
    sched.schedule_job("future", 3600)
    jobs = list(sched.pending_jobs())
    assert jobs == [{"id": "a", "n": 1, "s": "x"}, {"id": "b", "n": 2}]
    assert list(jobs[0]) == ["id", "n", "s"]


def test_without_reschedule_jobs_leave_the_schedule_but_keep_their_data(
    sched: Scheduler, raw: Any
) -> None:
    sched.schedule_job("a", 0, n=1)
    assert ids(sched.pending_jobs()) == ["a"]
    assert list(sched.pending_jobs()) == []
    assert raw.zscore("rache:queue", "a") is None
    assert sched.job_details("a") == {"id": "a", "schedule_at": None, "n": 1}
    sched.schedule_job("a", -1)  # a worker reschedules it, data intact
    assert list(sched.pending_jobs()) == [{"id": "a", "n": 1}]


def test_reschedule_in_moves_claimed_jobs_atomically(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", -1)
    now = raw.time()[0]
    assert ids(sched.pending_jobs(reschedule_in=60)) == ["a"]
    due = raw.zscore("rache:queue", "a")
    assert now + 60 <= due <= now + 61 and due.is_integer()
    assert list(sched.pending_jobs(reschedule_in=60)) == []


def test_fractional_reschedule_keeps_the_millisecond(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", -1)
    list(sched.pending_jobs(reschedule_in=1.5))
    due = sched.job_details("a")["schedule_at"]
    assert is_millisecond_time(due)
    seconds, micros = raw.time()
    assert 0 < due - (seconds + micros / 1e6) <= 1.5


def test_limit_caps_the_count_and_the_rest_stay_due(sched: Scheduler) -> None:
    for i in range(10):
        sched.schedule_job(f"j{i}", -100 + i)
    assert ids(sched.pending_jobs(limit=3)) == ["j0", "j1", "j2"]
    assert ids(sched.pending_jobs(limit=0)) == []
    assert ids(sched.pending_jobs(limit=100)) == [f"j{i}" for i in range(3, 10)]


def test_batches_cover_every_due_job_once(make: Any) -> None:
    sched = make(batch_size=7)
    for i in range(50):
        sched.schedule_job(f"j{i:02}", -1, i=i)
    jobs = list(sched.pending_jobs())
    assert ids(jobs) == [f"j{i:02}" for i in range(50)]
    assert [job["i"] for job in jobs] == list(range(50))


@pytest.mark.parametrize("reschedule_in", [0, -5, -0.5, 0.0001])
def test_due_again_at_once_never_twice_in_one_call(make: Any, raw: Any, reschedule_in: Any) -> None:
    sched = make(batch_size=3)
    for i in range(10):
        sched.schedule_job(f"j{i}", -10)
    first = ids(sched.pending_jobs(reschedule_in=reschedule_in))
    assert sorted(first) == [f"j{i}" for i in range(10)]
    assert raw.zcard("rache:queue") == 10
    second = ids(sched.pending_jobs(reschedule_in=reschedule_in))  # due again: the next call
    assert sorted(second) == sorted(first)


def test_a_consumer_that_stops_early_claims_only_what_it_received(
    sched: Scheduler, raw: Any
) -> None:
    for i in range(10):
        sched.schedule_job(f"j{i}", -100 + i, i=i)
    before = dict(raw.zrange("rache:queue", 0, -1, withscores=True))
    jobs = sched.pending_jobs()
    assert ids([next(jobs), next(jobs)]) == ["j0", "j1"]
    jobs.close()
    after = dict(raw.zrange("rache:queue", 0, -1, withscores=True))
    assert after == {k: v for k, v in before.items() if k not in (b"j0", b"j1")}


def test_early_stop_with_reschedule_restores_the_due_times(sched: Scheduler, raw: Any) -> None:
    for i in range(5):
        sched.schedule_job(f"j{i}", -100 + i)
    before = dict(raw.zrange("rache:queue", 0, -1, withscores=True))
    for job in sched.pending_jobs(reschedule_in=3600):
        if job["id"] == "j2":
            break
    gc.collect()
    after = dict(raw.zrange("rache:queue", 0, -1, withscores=True))
    assert {k: after[k] for k in (b"j3", b"j4")} == {k: before[k] for k in (b"j3", b"j4")}
    assert all(after[k] > before[k] + 3000 for k in (b"j0", b"j1", b"j2"))


def test_early_stop_leaves_jobs_changed_meanwhile_alone(sched: Scheduler, raw: Any) -> None:
    for i in range(4):
        sched.schedule_job(f"j{i}", -100 + i, n=i)
    jobs = sched.pending_jobs()
    next(jobs)
    sched.delete_job("j1")  # deleted after the claim: must stay deleted
    sched.schedule_job("j2", 500)  # rescheduled after the claim: must keep its new time
    jobs.close()
    assert raw.zscore("rache:queue", "j1") is None
    assert raw.zscore("rache:queue", "j2") - raw.time()[0] > 400
    assert ids(sched.pending_jobs()) == ["j3"]


def test_an_exception_in_the_consumer_puts_back_the_rest(sched: Scheduler, raw: Any) -> None:
    for i in range(5):
        sched.schedule_job(f"j{i}", -1 - i)

    def consume() -> None:
        for _job in sched.pending_jobs():
            raise RuntimeError("worker crashed")

    with pytest.raises(RuntimeError):
        consume()
    assert raw.zcard("rache:queue") == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"limit": -1}, ValueError, "limit must be 0 or more"),
        ({"limit": 1.5}, TypeError, "limit must be an int"),
        ({"limit": "10"}, TypeError, "limit must be an int"),
        ({"limit": True}, TypeError, "limit must be an int"),
        ({"reschedule_in": float("nan")}, ValueError, "reschedule_in must be a finite"),
        ({"reschedule_in": "60"}, TypeError, "reschedule_in must be a number"),
        ({"reschedule_in": -(10**12)}, ValueError, "reschedule_in must be within"),
    ],
)
def test_bad_arguments_fail_at_the_call_and_claim_nothing(
    sched: Scheduler, raw: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    sched.schedule_job("a", -1)
    before = snapshot(raw)
    with pytest.raises(error, match=match):
        sched.pending_jobs(**kwargs)  # raises before iteration starts
    assert snapshot(raw) == before


def test_each_job_carries_the_due_time_it_was_claimed_for(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", -10)
    sched.schedule_job("b", -1.5, n=1)
    due = {
        job_id.decode(): score
        for job_id, score in raw.zrange("rache:queue", 0, -1, withscores=True)
    }
    jobs = list(sched.pending_jobs(reschedule_in=60))
    assert [job.due_at for job in jobs] == [due["a"], due["b"]]
    assert isinstance(jobs[0].due_at, int)  # a whole second, as 0.3.1 kept it
    # (-1.5 s keeps the millisecond, which one time in 1,000 is a whole second: then an int)
    shown = int(due["b"]) if due["b"].is_integer() else due["b"]
    assert re.fullmatch(rf"b:{re.escape(str(shown))}:[0-9a-f]{{16}}", jobs[1].occurrence_id)
    assert jobs[1] == {"id": "b", "n": 1}  # the due time is no key of the dict
    # Scheduled again to the very same due time, it is another run, with another name.
    sched.schedule_jobs([("b", jobs[1].due_at)], at=True)
    (again,) = [job for job in sched.pending_jobs() if job["id"] == "b"]
    assert again.due_at == jobs[1].due_at and again.occurrence_id != jobs[1].occurrence_id


def test_a_run_keeps_its_name_when_put_back_and_claimed_by_another_poller(raw: Any) -> None:
    first, other = Scheduler(raw, batch_size=10), Scheduler(raw, batch_size=10)
    first.schedule_jobs([("a", -2), ("b", -1, {"n": 1})])
    claims = first.pending_jobs()
    a = next(claims)
    claims.close()  # 'b' was claimed, never handed out: it goes back, the same run
    b = first.job_details("b")
    assert b["schedule_at"] is not None
    (again,) = other.pending_jobs()
    assert again["id"] == "b" and again.occurrence_id.startswith(f"b:{again.due_at}:")
    assert a.occurrence_id.split(":")[2] == again.occurrence_id.split(":")[2]  # one schedule
    assert raw.hlen("rache:runs") == 0  # handed out: its run leaves with it


def test_a_job_scheduled_before_runs_keeps_the_old_name(raw: Any) -> None:
    raw.zadd("rache:queue", {"legacy": 1700000000})  # as rache 0.3.1 wrote it
    (job,) = Scheduler(raw).pending_jobs()
    assert job.occurrence_id == "legacy:1700000000"


def test_a_recurring_job_moved_by_schedule_job_keeps_the_documented_name(raw: Any) -> None:
    sched = Scheduler(raw)
    sched.schedule_recurring("tick", Every(60))
    sched.schedule_job("tick", -1)  # an occurrence now, not in a minute
    assert raw.hexists("rache:runs", "tick")  # schedule_job draws a run: the claim drops it
    (job,) = sched.pending_jobs()
    assert job.occurrence_id == f"tick:{job.due_at}"
    assert raw.hlen("rache:runs") == 0


def test_runs_leave_with_their_jobs(raw: Any) -> None:
    sched = Scheduler(raw)
    sched.schedule_jobs([("a", -1), ("b", 60), ("c", 60)])
    sched.schedule_job("d", 60)
    assert sorted(raw.hkeys("rache:runs")) == [b"a", b"b", b"c", b"d"]
    list(sched.pending_jobs())  # 'a' handed out
    sched.delete_job("b")
    sched.schedule_recurring("c", Every(60))  # a recurring job's occurrences name themselves
    assert sorted(raw.hkeys("rache:runs")) == [b"d"]


def test_a_claim_reads_the_next_due_time_in_the_same_call(raw: Any) -> None:
    sched = Scheduler(raw)

    def claim_once(limit: int) -> Tuple[Claim, Optional[List[Job]]]:
        claim = sched.claim(None, limit)
        return claim, sched.claim_batch(claim)

    assert claim_once(10)[0].next_due is None  # an empty schedule
    sched.schedule_job("now", -1)
    sched.schedule_job("later", 30.25)
    sched.schedule_job("latest", 60)
    claim, jobs = claim_once(10)
    assert jobs is not None and [job["id"] for job in jobs] == ["now"]
    assert claim.next_due is not None
    assert float(claim.next_due) == raw.zscore("rache:queue", "later")
    # Nothing due: the call still says when the head falls due, by the server's clock.
    claim, _ = claim_once(10)
    assert claim.next_due is not None and 30 < float(claim.next_due) - float(claim.cutoff) < 31


# forget_jobs: the data of jobs handed out ---------------------------------------------------


def test_forget_jobs_deletes_the_data_of_jobs_handed_out_unless_scheduled_again(
    make: Any,
) -> None:
    sched = make(batch_size=2)  # calls of 2 ids
    sched.schedule_jobs([(f"job-{i}", -1, {"n": i}) for i in range(5)])
    jobs = list(sched.pending_jobs())  # off the schedule, their data kept (0.3.1's way)
    sched.schedule_job("job-1", 60)  # scheduled again meanwhile: keeps its data
    sched.schedule_job("later", 60, n=9)  # never claimed
    # Jobs as handed out, and ids: one never known, one in the schedule
    assert sched.forget_jobs([*jobs, "later", "unknown"]) == 4
    for job_id in ["job-0", "job-2", "job-3", "job-4"]:
        with pytest.raises(JobNotFound):
            sched.job_details(job_id)
    assert sched.job_details("job-1")["n"] == 1
    assert sched.job_details("later")["n"] == 9
    assert sched.forget_jobs(jobs) == 0  # gone already
    assert sched.forget_jobs([]) == 0


def test_forget_jobs_checks_every_id_before_it_deletes(sched: Scheduler) -> None:
    sched.schedule_job("a", -1, n=1)
    assert ids(sched.pending_jobs()) == ["a"]
    with pytest.raises(TypeError, match="job_id must be a str, not int"):
        sched.forget_jobs(["a", 5])
    with pytest.raises(ValueError, match="job_id must not be empty"):
        sched.forget_jobs(["a", ""])
    job = Job(id="a")
    for one in ("a", job):  # one id, one job: not the letters of the id, the keys of the dict
        with pytest.raises(TypeError, match=r"jobs must be an iterable .* pass \[job\]"):
            sched.forget_jobs(one)
    assert sched.job_details("a") == {"id": "a", "schedule_at": None, "n": 1}
