"""rq tasks and classes for the rq-scheduler tests: what real ``rq worker`` processes import.

Each task records its run in the Redis it runs against (``rq_tasks:ran``, a list), so a
test counts runs across worker processes.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rq import Queue, get_current_job

#: The list each run appends its tag to.
RAN = "rq_tasks:ran"


def record(tag: str) -> str:
    """Append ``tag`` to ``rq_tasks:ran``: one entry per run."""
    job = get_current_job()
    assert job is not None
    job.connection.rpush(RAN, tag)
    return tag


class SlowQueue(Queue):
    """A queue whose enqueue takes RQ_TASKS_DELAY seconds more: a runner slow enough to kill."""

    def enqueue_job(self, *args: Any, **kwargs: Any) -> Any:
        """``Queue.enqueue_job``, after a pause."""
        time.sleep(float(os.environ.get("RQ_TASKS_DELAY", "0.005")))
        return super().enqueue_job(*args, **kwargs)


def succeed(job: Any) -> str:
    """A task that returns: its run succeeds (rache.adapters.rq's job, the job a dict)."""
    return f"done {job['id']}"


def fail(job: Any) -> str:
    """A task that raises: its run fails (or, with rq's Retry, an attempt does)."""
    raise RuntimeError(f"rq task failed for {job['id']}")
