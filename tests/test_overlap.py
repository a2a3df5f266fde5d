"""Overlap policies: an occurrence falling due while the job's newest run still runs.

Decided inside the script that hands occurrences out (claim-7 for every-N, advance-4 for
cron): 'skip' records it skipped, 'buffer_one' holds it until the run finishes or its
run_timeout passes. A behaviour suite module: every test taking ``make`` runs through both
shells, each client kind, and on a Redis Cluster (conftest.BEHAVIOUR_SUITE).
"""

from __future__ import annotations

import time
from typing import Any, List

import pytest

from rache import Cron, Every

Maker = Any
PERIOD = 0.2


def handed(sched: Any) -> List[Any]:
    return list(sched.pending_jobs())


def first_run(sched: Any, job_id: str, rule: Any, wait: float = 3.0) -> Any:
    """Schedule ``job_id`` on ``rule`` from now and claim until its first run is out."""
    sched.schedule_recurring(job_id, rule, start=sched.server_time())
    end = time.monotonic() + wait
    while time.monotonic() < end:
        jobs = handed(sched)
        if jobs:
            (job,) = jobs
            return job
        time.sleep(0.02)
    raise AssertionError(f"{job_id} was never handed out")


def score(sched: Any, job_id: str) -> float:
    return float(sched.job_details(job_id)["schedule_at"])


@pytest.mark.parametrize("sharded", [False, True])
def test_every_skip_records_a_skipped_run_while_the_run_runs(make: Maker, sharded: bool) -> None:
    sched = make(prefix="sharded:" if sharded else "rache:", shards=3 if sharded else 1)
    job = first_run(sched, "e", Every(PERIOD, overlap="skip", run_timeout=30))
    time.sleep(PERIOD * 1.5)
    assert handed(sched) == []  # its occurrence fell due while the run runs
    skipped, running = sched.runs("e")
    assert running.occurrence_id == job.occurrence_id and running.state == "running"
    assert skipped.state == "skipped" and skipped.error == "overlap"
    assert skipped.due > running.due and skipped.claimed_at is not None
    # The job moved on to its next occurrence as usual.
    assert score(sched, "e") > skipped.due
    assert sched.finish_run(job.occurrence_id) is True
    time.sleep(PERIOD * 1.2)
    (again,) = handed(sched)
    assert again.occurrence_id != job.occurrence_id
    assert sched.runs("e")[0].occurrence_id == again.occurrence_id


def test_every_allow_hands_out_while_the_run_runs(make: Maker) -> None:
    sched = make(prefix="rache:")
    first_run(sched, "e", Every(PERIOD, run_timeout=30))
    time.sleep(PERIOD * 1.5)
    assert len(handed(sched)) == 1
    assert [run.state for run in sched.runs("e")] == ["running", "running"]


def test_every_buffer_one_holds_until_the_run_finishes(make: Maker) -> None:
    sched = make(prefix="rache:")
    job = first_run(sched, "e", Every(PERIOD, overlap="buffer_one", run_timeout=30))
    (run,) = sched.runs("e")
    time.sleep(PERIOD * 1.5)
    assert handed(sched) == []  # held, not skipped: nothing recorded
    time.sleep(PERIOD * 2)
    assert handed(sched) == []  # later occurrences coalesce into the one held
    assert sched.runs("e") == [run]
    # It waits at the run's deadline: no claim spins on it meanwhile.
    assert score(sched, "e") == pytest.approx(run.deadline, abs=0.002)
    assert sched.finish_run(job.occurrence_id) is True
    assert score(sched, "e") <= sched.server_time()  # due again at once
    (held,) = handed(sched)
    assert held.due_at > run.due
    assert handed(sched) == []  # one occurrence came out, once
    assert [r.state for r in sched.runs("e")] == ["running", "succeeded"]


def test_every_run_timeout_makes_a_stuck_run_unknown_and_unblocks(make: Maker) -> None:
    sched = make(prefix="rache:")
    first_run(sched, "k", Every(PERIOD, overlap="skip", run_timeout=1))
    first_run(sched, "b", Every(PERIOD, overlap="buffer_one", run_timeout=1))
    time.sleep(PERIOD * 1.5)
    assert handed(sched) == []
    (_, stuck) = sched.runs("k")
    assert stuck.state == "running"
    time.sleep(max(0.0, (stuck.deadline or 0) - sched.server_time()) + 0.15)
    assert {run.state for run in sched.runs("k")[-1:]} == {"unknown"}
    assert sorted(job["id"] for job in handed(sched)) == ["b", "k"]
    assert sched.runs("b")[-1].state == "unknown"


def test_cron_skip_and_buffer_one(make: Maker) -> None:
    pytest.importorskip("croniter")
    sched = make(prefix="rache:")
    every_second = "* * * * * *"
    skip = first_run(sched, "k", Cron(every_second, overlap="skip", run_timeout=30))
    buffered = first_run(sched, "b", Cron(every_second, overlap="buffer_one", run_timeout=30))
    time.sleep(1.2)
    assert handed(sched) == []
    skipped = sched.runs("k")[0]
    assert skipped.state == "skipped" and skipped.error == "overlap"
    assert [run.state for run in sched.runs("b")] == ["running"]
    (held,) = sched.runs("b")
    assert score(sched, "b") == pytest.approx(held.deadline, abs=0.002)
    assert sched.finish_run(buffered.occurrence_id) is True
    (job,) = handed(sched)  # the held occurrence, at once
    assert job["id"] == "b" and job.due_at > held.due
    assert sched.finish_run(skip.occurrence_id) is True
    time.sleep(1.1)
    out = {job["id"] for job in handed(sched)}
    assert "k" in out and "b" not in out  # b's newest run still runs


def test_cron_run_timeout_unblocks(make: Maker) -> None:
    pytest.importorskip("croniter")
    sched = make(prefix="rache:")
    first_run(sched, "b", Cron("* * * * * *", overlap="buffer_one", run_timeout=2))
    (run,) = sched.runs("b")
    time.sleep(1.1)
    assert handed(sched) == []
    time.sleep(max(0.0, (run.deadline or 0) - sched.server_time()) + 0.1)
    (job,) = handed(sched)
    assert job["id"] == "b"
    assert [r.state for r in sched.runs("b")] == ["running", "unknown"]


def test_history_off_means_allow(make: Maker) -> None:
    sched = make(prefix="rache:", history=0)
    first_run(sched, "e", Every(PERIOD, overlap="skip", run_timeout=30))
    time.sleep(PERIOD * 1.5)
    assert len(handed(sched)) == 1  # nothing recorded, nothing to decide on
