"""Runs: each hand-out recorded in its job's history, outcomes by finish_run, failures.

A behaviour suite module: every test taking ``sched``/``make`` runs through both shells, each
client kind, and on a Redis Cluster (conftest.BEHAVIOUR_SUITE).
"""

from __future__ import annotations

import time
from typing import Any, List

import pytest

import rache
from rache import Cron, Every, Run
from rache.constants import FAILURES_KEPT, MAX_ERROR_BYTES

Maker = Any


def handed(sched: Any, **kwargs: Any) -> List[Any]:
    return list(sched.pending_jobs(**kwargs))


def history_key(sched: Any, job_id: str) -> bytes:
    return bytes(sched.layout.of(job_id.encode()).history(job_id.encode()))


def has_newest(sched: Any, raw: Any, job_id: str) -> bool:
    """Whether ``<prefix>lastrun`` holds a newest run of ``job_id``."""
    return bool(raw.hexists(sched.layout.of(job_id.encode()).last_runs, job_id))


def test_a_claim_records_a_running_run_per_job(make: Maker) -> None:
    sched = make(prefix="rache:", name="poller-1", run_timeout=120)
    sched.schedule_job("a", -5, n=1)
    sched.schedule_job("b", -1)
    before = sched.server_time()
    jobs = handed(sched)
    after = sched.server_time()
    for job in jobs:
        (run,) = sched.runs(job["id"])
        assert isinstance(run, Run)
        assert run.occurrence_id == job.occurrence_id
        assert run.job_id == job["id"] and run.due == job.due_at
        assert run.state == "running" and run.claimed_by == "poller-1"
        assert run.claimed_at is not None and before - 0.002 <= run.claimed_at <= after + 0.002
        assert run.deadline == pytest.approx(run.claimed_at + 120, abs=0.002)
        assert run.finished_at is None and run.error is None and run.attempts == 0


def test_the_default_name_is_host_and_pid(sched: Any) -> None:
    import os
    import socket

    assert sched.name == f"{socket.gethostname()}:{os.getpid()}"
    sched.schedule_job("a", 0)
    handed(sched)
    assert sched.runs("a")[0].claimed_by == sched.name


def test_recurring_occurrences_are_runs_named_by_their_due_time(make: Maker) -> None:
    sched = make(prefix="rache:", name="p")
    now = sched.server_time()
    sched.schedule_recurring("every", Every(30), start=now - 1)
    sched.schedule_recurring("cron", Cron("* * * * *"), start=now - 120)
    jobs = {job["id"]: job for job in handed(sched)}
    assert set(jobs) == {"every", "cron"}
    for job_id, timeout in (("every", 60), ("cron", 60)):
        (run,) = sched.runs(job_id)
        assert run.occurrence_id == jobs[job_id].occurrence_id == f"{job_id}:{run.due}"
        assert run.state == "running" and run.claimed_by == "p"
        assert run.claimed_at is not None and run.deadline is not None
        assert run.deadline - run.claimed_at == pytest.approx(timeout, abs=0.002)


def test_finish_run_records_success_once(sched: Any) -> None:
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    assert sched.finish_run(job.occurrence_id) is True
    (run,) = sched.runs("a")
    assert run.state == "succeeded" and run.error is None and run.finished_at is not None
    assert run.finished_at >= (run.claimed_at or 0)
    # The same call again, or another outcome: the first stands.
    assert sched.finish_run(job.occurrence_id) is True
    assert sched.finish_run(job.occurrence_id, "late") is True
    assert sched.runs("a") == [run]
    assert sched.failures() == []


def test_finish_run_records_a_failure_and_lists_it(sched: Any) -> None:
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        assert sched.finish_run(job.occurrence_id, exc) is True
    (run,) = sched.runs("a")
    assert run.state == "failed" and run.error == "ValueError: bad input"
    assert sched.failures() == [run]
    assert sched.finish_run(job.occurrence_id, "again") is True  # no second failure
    assert sched.failures() == [run]


def test_retrying_counts_attempts_and_keeps_the_run_running(sched: Any) -> None:
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    assert sched.finish_run(job.occurrence_id, "first", retrying=True) is True
    assert sched.finish_run(job.occurrence_id, RuntimeError("second"), retrying=True) is True
    (run,) = sched.runs("a")
    assert (run.state, run.attempts, run.error) == ("running", 2, "RuntimeError: second")
    assert sched.failures() == []
    assert sched.finish_run(job.occurrence_id) is True
    (run,) = sched.runs("a")
    assert (run.state, run.attempts, run.error) == ("succeeded", 2, None)


@pytest.mark.parametrize(
    "occurrence",
    ["a", "a:", "a:notatime", "a:1700000000:0123", "nope:1700000000", ":5", "a:5:" + "0" * 16],
)
def test_finish_run_of_an_unknown_run_is_false(sched: Any, raw: Any, occurrence: str) -> None:
    sched.schedule_job("a", 0)
    handed(sched)
    before = sched.runs("a")
    assert sched.finish_run(occurrence) is False
    assert sched.finish_run(occurrence, "x") is False
    assert sched.runs("a") == before and sched.failures() == []


def test_finish_run_refuses_bad_arguments_and_writes_nothing(sched: Any) -> None:
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    with pytest.raises(TypeError, match="occurrence_id must be a str"):
        sched.finish_run(b"a:1")
    with pytest.raises(TypeError, match="error must be None, a str or an exception"):
        sched.finish_run(job.occurrence_id, 42)
    with pytest.raises(TypeError, match="retrying must be a bool"):
        sched.finish_run(job.occurrence_id, retrying=1)
    assert sched.runs("a")[0].state == "running"


def test_a_long_error_is_stored_bounded(sched: Any) -> None:
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    assert sched.finish_run(job.occurrence_id, "é" * MAX_ERROR_BYTES)
    error = sched.runs("a")[0].error
    assert error is not None and len(error.encode()) <= MAX_ERROR_BYTES and set(error) == {"é"}


def test_a_job_id_with_colons_and_digits(sched: Any) -> None:
    for job_id in ("a:1", "x:1700000000", "t:5:" + "1" * 16):
        sched.schedule_job(job_id, 0)
    jobs = handed(sched)
    for job in jobs:
        assert sched.finish_run(job.occurrence_id, "no") is True
        assert sched.runs(job["id"])[0].state == "failed"


def test_a_put_back_leaves_no_run(sched: Any, raw: Any) -> None:
    for job_id in "abc":
        sched.schedule_job(job_id, -3 + "abc".index(job_id))
    jobs = sched.pending_jobs()
    first = next(iter(jobs))
    jobs.close()  # b and c go back, never handed out
    assert first["id"] == "a"
    assert [run.state for run in sched.runs("a")] == ["running"]
    assert sched.runs("b") == [] and sched.runs("c") == []
    assert not raw.exists(history_key(sched, "b"))
    # handed out later: one run, its own
    again = {job["id"]: job for job in handed(sched)}
    assert [run.occurrence_id for run in sched.runs("b")] == [again["b"].occurrence_id]


def test_a_put_back_of_a_recurring_occurrence_takes_its_run_back(sched: Any) -> None:
    now = sched.server_time()
    sched.schedule_job("a", -5)
    sched.schedule_recurring("e", Every(30), start=now - 1)
    jobs = sched.pending_jobs()
    first = next(iter(jobs))
    jobs.close()
    assert first["id"] == "a"
    assert sched.runs("e") == []
    (job,) = handed(sched)
    assert [run.occurrence_id for run in sched.runs("e")] == [job.occurrence_id]


def test_the_history_is_bounded_newest_first(make: Maker) -> None:
    sched = make(prefix="rache:", history=3)
    occurrences = []
    for _ in range(5):
        sched.schedule_job("a", 0)
        (job,) = handed(sched)
        occurrences.append(job.occurrence_id)
    assert [run.occurrence_id for run in sched.runs("a")] == occurrences[:1:-1]
    assert sched.finish_run(occurrences[0]) is False  # dropped from the history kept


def test_history_zero_records_nothing(make: Maker, raw: Any) -> None:
    sched = make(prefix="rache:", history=0)
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    assert sched.runs("a") == []
    assert sched.finish_run(job.occurrence_id) is False


def test_a_run_past_its_deadline_reads_unknown(make: Maker) -> None:
    sched = make(prefix="rache:", run_timeout=0.05)
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    time.sleep(0.1)
    assert sched.runs("a")[0].state == "unknown"
    assert sched.finish_run(job.occurrence_id) is True  # a late outcome still counts
    assert sched.runs("a")[0].state == "succeeded"


def test_a_first_run_writes_no_list_a_second_moves_the_first_there(sched: Any, raw: Any) -> None:
    sched.schedule_job("a", 0)
    (first,) = handed(sched)
    assert has_newest(sched, raw, "a") and not raw.exists(history_key(sched, "a"))
    sched.schedule_job("a", 0)
    (second,) = handed(sched)
    assert raw.llen(history_key(sched, "a")) == 1
    runs = sched.runs("a")
    assert [run.occurrence_id for run in runs] == [second.occurrence_id, first.occurrence_id]
    assert sched.finish_run(first.occurrence_id, "old") is True  # found in the list
    assert sched.finish_run(second.occurrence_id) is True  # the newest
    assert [run.state for run in sched.runs("a")] == ["succeeded", "failed"]


@pytest.mark.parametrize("kept", [20, 2, 1])
def test_a_put_back_restores_the_run_before(make: Maker, raw: Any, kept: int) -> None:
    sched = make(prefix="rache:", history=kept)
    sched.schedule_job("a", -2)
    (first,) = handed(sched)
    assert sched.finish_run(first.occurrence_id) is True
    sched.schedule_job("b", -2)
    sched.schedule_job("a", -1)
    jobs = sched.pending_jobs()
    assert next(iter(jobs))["id"] == "b"
    assert len(sched.runs("a")) == min(kept, 2)  # a's second run, recorded
    jobs.close()  # a goes back, its run taken back: the run before is the newest again
    if kept > 1:
        (run,) = sched.runs("a")
        assert (run.occurrence_id, run.state) == (first.occurrence_id, "succeeded")
    else:  # not kept when a's second run was recorded
        assert sched.runs("a") == [] and not has_newest(sched, raw, "a")
    assert not raw.exists(history_key(sched, "a"))
    (again,) = handed(sched)
    assert sched.runs("a")[0].occurrence_id == again.occurrence_id


def test_runs_of_jobs_no_longer_scheduled_are_swept_after_history_ttl(
    make: Maker, raw: Any
) -> None:
    sched = make(prefix="rache:", history_ttl=0.5)
    sched.schedule_job("once", 0)
    sched.schedule_job("again", 0)
    handed(sched)
    sched.schedule_job("again", 0)
    handed(sched)  # a run before: "again" has a list
    sched.schedule_job("again", 3600)  # and is scheduled again: its runs stay
    sched.schedule_job("kept", 0)
    (kept,) = handed(sched, reschedule_in=3600)
    sched.schedule_job("late", 0)
    (late,) = handed(sched)
    time.sleep(0.3)
    assert sched.finish_run(late.occurrence_id) is True
    assert len(sched.runs("once")) == 1  # within history_ttl: readable
    time.sleep(0.35)  # past it for all but late, which finished 0.35 s ago
    for i in range(3):  # claims sweep
        sched.schedule_jobs([(f"new-{i}-{n}", 0) for n in range(8)])
        handed(sched)
    assert sched.runs("once") == [] and not has_newest(sched, raw, "once")
    assert sched.finish_run(kept.occurrence_id) is True  # still scheduled: kept
    assert len(sched.runs("again")) == 2 and raw.exists(history_key(sched, "again"))
    assert [run.state for run in sched.runs("late")] == ["succeeded"]
    time.sleep(0.3)
    for i in range(3):
        sched.schedule_jobs([(f"more-{i}-{n}", 0) for n in range(8)])
        handed(sched)
    assert sched.runs("late") == []
    assert len(sched.runs("kept")) == 1 and len(sched.runs("again")) == 2


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), ("1d", TypeError), (None, TypeError)],
)
def test_history_ttl_is_checked(make: Maker, value: Any, error: Any) -> None:
    with pytest.raises(error, match="history_ttl"):
        make(prefix="rache:", history_ttl=value)


def test_delete_job_removes_its_history(sched: Any, raw: Any) -> None:
    for _ in range(2):
        sched.schedule_job("a", 0, n=1)
        handed(sched, reschedule_in=60)
        raw.zadd(sched.layout.of(b"a").queue, {"a": 0})  # due again
    assert raw.exists(history_key(sched, "a")) and has_newest(sched, raw, "a")
    assert sched.delete_job("a") is True
    assert not raw.exists(history_key(sched, "a")) and not has_newest(sched, raw, "a")
    assert sched.runs("a") == []


def test_forget_jobs_forgets_the_data_and_keeps_the_run(sched: Any, raw: Any) -> None:
    sched.schedule_job("a", 0, n=1)
    (job,) = handed(sched)
    assert sched.forget_jobs([job]) == 1
    assert not raw.exists(sched.layout.of(b"a").job(b"a"))
    assert [run.state for run in sched.runs("a")] == ["running"]
    assert sched.finish_run(job.occurrence_id) is True  # its outcome still arrives


def test_failures_are_bounded_and_newest_first(sched: Any) -> None:
    total = FAILURES_KEPT + 5
    sched.schedule_jobs([(f"j{i}", -total + i) for i in range(total)])
    jobs = handed(sched)
    for job in jobs:
        assert sched.finish_run(job.occurrence_id, f"err {job['id']}")
    failures = sched.failures()
    shards = len(sched.shards)
    assert FAILURES_KEPT <= len(failures) <= FAILURES_KEPT * shards
    assert failures[0].error == f"err j{total - 1}"
    finished = [run.finished_at or 0 for run in failures]
    assert finished == sorted(finished, reverse=True)
    assert [run.state for run in sched.failures(limit=3)] == ["failed"] * 3
    assert sched.failures(limit=0) == []


def test_sharded_runs_and_failures(make: Maker) -> None:
    sched = make(prefix="sharded:", shards=3)
    ids = sorted(f"s{i}" for i in range(12))
    sched.schedule_jobs([(job_id, -1) for job_id in ids])
    jobs = handed(sched)
    assert sorted(job["id"] for job in jobs) == ids
    for job in jobs:
        assert [run.occurrence_id for run in sched.runs(job["id"])] == [job.occurrence_id]
        assert sched.finish_run(job.occurrence_id, "boom") is True
    assert sorted(run.job_id for run in sched.failures()) == ids


def test_the_module_functions(sched: Any, conn: Any, shell: str, monkeypatch: Any) -> None:
    if shell != "sync" or sched.keys.prefix != "rache:":
        pytest.skip("the sync module functions, on the default prefix")
    monkeypatch.delenv("RACHE_REDIS_PREFIX", raising=False)
    sched.schedule_job("a", 0)
    (job,) = handed(sched)
    assert rache.finish_run(job.occurrence_id, "x", connection=conn) is True
    assert [run.state for run in rache.job_runs("a", connection=conn)] == ["failed"]


def test_a_put_back_of_a_run_before_the_newest_takes_it_off_the_list(sched: Any, raw: Any) -> None:
    """release-5.lua finds a put-back run on the list (an advance's older occurrence)."""
    from rache import scripts, wire

    now = sched.server_time()
    sched.schedule_recurring("e", Every(60), start=now - 600)
    (older,) = handed(sched)
    keys = sched.layout.of(b"e")
    raw.zadd(keys.queue, {"e": now - 300})  # due again: a later occurrence
    (newer,) = handed(sched)
    assert [run.occurrence_id for run in sched.runs("e")] == [
        newer.occurrence_id,
        older.occurrence_id,
    ]
    moved = raw.zscore(keys.queue, "e")
    args = [keys.job_prefix, keys.wakeup, keys.history_prefix, b"", 0]
    args += [b"e", wire.time_text(round(older.due_at * 1000)), repr(moved).encode()]
    named = [keys.queue, keys.recurring, keys.runs, keys.last_runs, keys.call_prefix]
    assert scripts.RELEASE(raw, named, args) == 1
    assert [run.occurrence_id for run in sched.runs("e")] == [newer.occurrence_id]
    assert not raw.exists(keys.history(b"e"))
