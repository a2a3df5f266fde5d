"""Many processes polling one schedule: every job comes out exactly once."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from benchmarks import legacy
from tests.support import harness

JOBS = 5000
POLLERS = 4


def schedule_due_jobs(raw: Any, count: int) -> list[str]:
    # Written straight into the 0.3.1 layout, fast: due a minute ago.
    now = raw.time()[0]
    ids = [f"job-{i:05}" for i in range(count)]
    raw.zadd("rache:queue", {job_id: now - 60 for job_id in ids})
    return ids


@pytest.mark.slow
@pytest.mark.parametrize(("reschedule_in", "limit"), [(None, 50), (3600, 50), (None, None)])
def test_four_pollers_claim_each_job_exactly_once(
    server: harness.RedisServer, raw: Any, reschedule_in: Any, limit: Any
) -> None:
    ids = schedule_due_jobs(raw, JOBS)
    per_poller = harness.run_pollers(server.url, POLLERS, reschedule_in=reschedule_in, limit=limit)
    counts = collections.Counter(job_id for polled in per_poller for job_id in polled.ids)
    duplicates = {job_id: n for job_id, n in counts.items() if n > 1}
    assert duplicates == {}
    assert sorted(counts) == ids
    if reschedule_in is None:
        assert raw.zcard("rache:queue") == 0
    else:
        now = raw.time()[0]
        assert raw.zcount("rache:queue", now + 3500, now + 3601) == JOBS


@pytest.mark.slow
def test_the_same_harness_catches_the_0_3_1_race(server: harness.RedisServer, raw: Any) -> None:
    # The test above can fail: rache 0.3.1's three-round-trip claim hands jobs out twice.
    schedule_due_jobs(raw, JOBS)
    per_poller = harness.run_pollers(server.url, POLLERS, claim=legacy.pending_jobs, limit=None)
    claims = sum(len(polled.ids) for polled in per_poller)
    assert len({job_id for polled in per_poller for job_id in polled.ids}) == JOBS
    assert claims > JOBS
