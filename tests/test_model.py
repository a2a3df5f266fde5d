"""Model-based test: a Scheduler and a plain Python model of the spec, step by step.

Hypothesis drives random sequences of schedule / schedule_jobs / pending (with and without
reschedule_in and limit) / delete / details / scheduled through both and checks after every
step that they agree. Offsets are whole thousands of seconds, far from now, so that the
passing of real time cannot make a job due; due times are known to the second only (the
server's clock moves during a run), so the model keeps each as an interval, and orders are
checked as far as the intervals decide them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from rache import JobNotFound

IDS = st.sampled_from(["a", "b", "c", "d", "e", "f", "{x}", "日本"])
OFFSETS = st.integers(-20, 20).map(lambda k: k * 1000)  # due (<= 0) or not, never in between
VALUES = st.one_of(
    st.integers(-(10**6), 10**6), st.text(max_size=5), st.binary(max_size=5), st.none()
)
DATA = st.dictionaries(st.sampled_from(["n", "s", "t"]), VALUES, max_size=3)


@dataclass
class Job:
    """What the model knows of a job: its due time to the second (or None) and its data."""

    due: Optional[Tuple[float, float]] = None  # [earliest, latest], Unix seconds
    data: Dict[str, Any] = field(default_factory=dict)


def expected_value(value: Any) -> Any:
    """What rache gives back for a value it stored (the 0.3.1 decoding rules)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        return int(value) if digits and digits.isascii() and digits.isdigit() else value
    try:
        return expected_value(value.decode())
    except UnicodeDecodeError:
        return value


class SchedulerMachine(RuleBasedStateMachine):
    """Drives one Scheduler and the model side by side."""

    def __init__(self, make: Any, raw: Any) -> None:
        super().__init__()
        raw.flushdb()
        self.client = raw
        self.sched = make(prefix="model:", batch_size=2)
        self.jobs: Dict[str, Job] = {}

    def now(self) -> float:
        seconds, _ = self.client.time()
        return float(seconds)

    def set_due(self, job_id: str, offset: int, before: float, after: float) -> None:
        self.jobs.setdefault(job_id, Job()).due = (before + offset, after + offset)

    def merge(self, job_id: str, data: Dict[str, Any]) -> None:
        job = self.jobs.setdefault(job_id, Job())
        for key, value in data.items():
            if value is None:
                job.data.pop(key, None)
            else:
                job.data[key] = expected_value(value)

    @rule(job_id=IDS, offset=OFFSETS, data=DATA)
    def schedule(self, job_id: str, offset: int, data: Dict[str, Any]) -> None:
        before = self.now()
        self.sched.schedule_job(job_id, offset, **data)
        self.set_due(job_id, offset, before, self.now())
        self.merge(job_id, data)

    @rule(jobs=st.lists(st.tuples(IDS, OFFSETS, DATA), max_size=5))
    def schedule_many(self, jobs: List[Tuple[str, int, Dict[str, Any]]]) -> None:
        before = self.now()
        assert self.sched.schedule_jobs(jobs) == len(jobs)
        after = self.now()
        for job_id, offset, data in jobs:
            self.set_due(job_id, offset, before, after)
            self.merge(job_id, data)

    @rule(
        reschedule_in=st.one_of(st.none(), OFFSETS.filter(lambda x: x > 0)),
        limit=st.one_of(st.none(), st.integers(0, 4)),
    )
    def pending(self, reschedule_in: Optional[int], limit: Optional[int]) -> None:
        before = self.now()
        claimed = list(self.sched.pending_jobs(reschedule_in, limit))
        after = self.now()
        due = {
            job_id: job.due
            for job_id, job in self.jobs.items()
            if job.due is not None and job.due[1] <= before
        }
        ids = [job["id"] for job in claimed]
        assert len(ids) == len(set(ids)), "a job came twice in one call"
        assert set(ids) <= set(due), "a job that was not due came out"
        expected_count = len(due) if limit is None else min(limit, len(due))
        assert len(ids) == expected_count
        for earlier, later in zip(ids, ids[1:]):  # earliest first, as far as known
            assert not due[later][1] < due[earlier][0]
        for left in set(due) - set(ids):  # none left behind that was surely earlier
            assert all(not due[left][1] < due[job_id][0] for job_id in ids)
        for job in claimed:
            assert job == {"id": job["id"], **self.jobs[job["id"]].data}
            model = self.jobs[job["id"]]
            if reschedule_in is None:
                model.due = None
            else:
                model.due = (before + reschedule_in, after + reschedule_in)
        self.forget_empty()

    @rule(job_id=IDS)
    def delete(self, job_id: str) -> None:
        self.sched.delete_job(job_id)
        self.jobs.pop(job_id, None)

    @rule(job_id=IDS)
    def details(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            with pytest.raises(JobNotFound):
                self.sched.job_details(job_id)
            return
        got = self.sched.job_details(job_id)
        due = got.pop("schedule_at")
        assert got == {"id": job_id, **job.data}
        if job.due is None:
            assert due is None
        else:
            assert job.due[0] <= due <= job.due[1]

    def forget_empty(self) -> None:
        """A job neither scheduled nor with data is unknown, as rache sees it."""
        for job_id in [k for k, job in self.jobs.items() if job.due is None and not job.data]:
            del self.jobs[job_id]

    @invariant()
    def scheduled_agrees(self) -> None:
        self.forget_empty()
        timed = list(self.sched.scheduled_jobs(with_times=True))
        scheduled = {job_id: job.due for job_id, job in self.jobs.items() if job.due}
        assert sorted(job_id for job_id, _ in timed) == sorted(scheduled)
        for job_id, due in timed:
            low, high = scheduled[job_id]
            assert low <= due <= high and isinstance(due, int)
        for (a, _), (b, _) in zip(timed, timed[1:]):
            assert not scheduled[b][1] < scheduled[a][0]


@pytest.mark.slow
def test_scheduler_agrees_with_the_model(make: Any, raw: Any, conn: Any) -> None:
    protocol = conn.get_connection_kwargs().get("protocol")
    examples = 40 if (protocol, conn.get_encoder().decode_responses) == (3, False) else 10
    run_state_machine_as_test(
        lambda: SchedulerMachine(make, raw),  # type: ignore[arg-type]
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
