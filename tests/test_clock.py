"""'Now' is the Redis server's clock, never the client's."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from rache import Scheduler


@pytest.mark.parametrize("skew", [-86400.0, 86400.0])
def test_a_skewed_client_clock_changes_nothing(
    sched: Scheduler, raw: Any, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    real_time, real_time_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real_time() + skew)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + int(skew * 1e9))

    class SkewedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return super().now(tz) + datetime.timedelta(seconds=skew)

    monkeypatch.setattr(datetime, "datetime", SkewedDatetime)

    server_now = raw.time()[0]
    sched.schedule_job("soon", 30)
    sched.schedule_job("due", -30)
    due = sched.job_details("soon")["schedule_at"]
    assert server_now + 30 <= due <= server_now + 31  # not a day off
    assert [job["id"] for job in sched.pending_jobs(reschedule_in=60)] == ["due"]
    assert server_now + 60 <= sched.job_details("due")["schedule_at"] <= server_now + 61
