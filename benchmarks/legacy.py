"""rache 0.3.1's algorithm, rewritten from its description, as the baseline to beat.

Three round trips per claim: ZRANGEBYSCORE, a pipeline of ZREM/ZADD, a pipeline of
HGETALL. Nothing stops two pollers from reading the same ids between the first and the
second, which is the race rache now closes.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, Optional


def schedule_job(
    client: Any, job_id: str, schedule_in: int, prefix: str = "rache:", **kwargs: Any
) -> None:
    """ZADD int(time.time()) + schedule_in, HSET of str() values, HDEL of None ones."""
    with client.pipeline() as pipe:
        pipe.zadd(prefix + "queue", {job_id: int(time.time()) + schedule_in})
        values = {key: value for key, value in kwargs.items() if value is not None}
        if values:
            pipe.hset(prefix + "job:" + job_id, mapping=values)
        deletes = [key for key, value in kwargs.items() if value is None]
        if deletes:
            pipe.hdel(prefix + "job:" + job_id, *deletes)
        pipe.execute()


def pending_jobs(
    client: Any,
    reschedule_in: Optional[int] = None,
    limit: Optional[int] = None,
    prefix: str = "rache:",
) -> Iterator[Dict[str, Any]]:
    """ZRANGEBYSCORE the due ids, then reschedule or remove them, then read their data."""
    queue = prefix + "queue"
    start = None if limit is None else 0
    job_ids = client.zrangebyscore(queue, 0, int(time.time()), start=start, num=limit)
    with client.pipeline() as pipe:
        if reschedule_in is None:
            for job_id in job_ids:
                pipe.zrem(queue, job_id)
        else:
            schedule_at = int(time.time()) + reschedule_in
            for job_id in job_ids:
                pipe.zadd(queue, {job_id: schedule_at})
        pipe.execute()
    with client.pipeline() as pipe:
        for job_id in job_ids:
            pipe.hgetall(prefix + "job:" + job_id.decode())
        jobs = pipe.execute()
    for job_id, data in zip(job_ids, jobs):
        job: Dict[str, Any] = {"id": job_id.decode()}
        for key, value in data.items():
            text = value.decode()
            job[key.decode()] = int(text) if text.isdigit() else text
        yield job
