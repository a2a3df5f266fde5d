"""The runner: rq-scheduler's ``rqscheduler`` process as a handler of rache's Dispatcher.

Each due rache job handed out is moved into its rq queue (``Queue.enqueue_job`` of the
saved rq job, ``at_front`` honoured). Any number of runners may run at once, with no lock:
rache hands each due job to one of them, and the move is a transaction that checks the rq
job first, so a job handed out again (a runner killed mid-batch, its lease over) is moved
once.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from redis import WatchError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import import_attribute

from ..constants import OCCURRENCE_META
from ..models import Job as RacheJob
from ..scheduler import Scheduler as RacheScheduler
from .conventions import QUEUE_FIELD, import_class, periodic

#: The logger of rache.rq's runners (what ``python -m rache.rq`` logs).
logger = logging.getLogger("rache.rq")


class Runner:
    """A Dispatcher handler that moves each due rache job into its rq queue, once.

    :param scheduler: the rache schedule the dispatcher claims from (jobs are deleted from
        it once moved, or when their rq job is gone).
    :param connection: rq's Redis (default: the scheduler's).
    :param job_class, queue_class: rq's classes or dotted names; a job's
        ``meta['queue_class_name']`` chooses its own queue class, as in rq-scheduler.

    The move is one transaction (WATCH on the rq job, MULTI, ``Queue.enqueue_job``, EXEC),
    done only if the rq job was not moved already: a one-off job must still be in the
    ``scheduled`` status; a periodic one must not name this occurrence in
    ``meta['rache_occurrence']``, which the move sets. A job handed out twice (its runner
    died after the move, before the rache job was deleted) is thus moved once. ``repeat``
    counts down in the same transaction; at 0 the rache job is deleted.
    """

    #: A handler that hands each run off (``rache.constants.HAND_OFF_ATTRIBUTE``): the rq
    #: worker reports the outcome of a periodic job's run (``rache.adapters.rq_succeeded``).
    rache_hand_off = True

    def __init__(
        self,
        scheduler: RacheScheduler,
        *,
        connection: Any = None,
        job_class: Any = None,
        queue_class: Any = None,
    ) -> None:
        if not isinstance(scheduler, RacheScheduler):
            raise TypeError(f"scheduler must be a rache.Scheduler, not {type(scheduler).__name__}")
        self.scheduler = scheduler
        self.connection = scheduler.connection if connection is None else connection
        self.job_class = import_class(job_class, Job, "job_class")
        self.queue_class = import_class(queue_class, Queue, "queue_class")
        self._queues: Dict[Tuple[Any, str], Any] = {}
        #: jobs moved into rq, and jobs handed out again that were moved already
        self.moved = 0
        self.skipped = 0

    def __call__(self, job: RacheJob) -> Any:
        """Move ``job`` (a rache job handed out by a claim) into rq; the rq job, or None."""
        if QUEUE_FIELD not in job:
            raise ValueError(
                f"rache job {job['id']!r} is not an rq-scheduler job (no {QUEUE_FIELD!r} in its "
                "data): is the runner claiming from the right prefix?"
            )
        return self.move(str(job["id"]), job.occurrence_id)

    def _queue(self, job: Any) -> Any:
        name = job.meta.get("queue_class_name")
        queue_class = self.queue_class if not name else import_attribute(name)
        key = (queue_class, job.origin)
        queue = self._queues.get(key)
        if queue is None:
            queue = queue_class(job.origin, connection=self.connection, job_class=self.job_class)
            self._queues[key] = queue
        return queue

    def move(self, job_id: str, occurrence: Optional[str]) -> Any:
        """Move the rq job ``job_id`` into its queue unless this occurrence was; the rq job.

        ``occurrence`` names the occurrence of a periodic job (None: move it whatever).
        Returns None when the job was moved already, or its rq job is gone.
        """
        key = self.job_class.key_for(job_id)
        moved = None
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    try:
                        job = self.job_class.fetch(job_id, connection=self.connection)
                    except NoSuchJobError:
                        logger.warning("rache.rq: rq job %s is gone; unscheduled", job_id)
                        pipe.reset()
                        self.scheduler.delete_job(job_id)
                        return None
                    meta = job.meta
                    is_periodic = periodic(meta)
                    if is_periodic:
                        # moved already for this occurrence, or its last run moved already
                        # (a repeat of 0 before any move means one run, as in rq-scheduler)
                        exhausted = meta.get("repeat") == 0 and OCCURRENCE_META in meta
                        done = exhausted or (
                            occurrence is not None and meta.get(OCCURRENCE_META) == occurrence
                        )
                    else:
                        done = occurrence is not None and (
                            job.get_status(refresh=False) != JobStatus.SCHEDULED
                        )
                    if done:
                        pipe.reset()
                        self.skipped += 1
                        break
                    repeat = meta.get("repeat")
                    if repeat:
                        meta["repeat"] = int(repeat) - 1
                    if is_periodic:
                        meta[OCCURRENCE_META] = occurrence or "moved"
                    self._queue(job).enqueue_job(
                        job, pipeline=pipe, at_front=bool(job.enqueue_at_front)
                    )
                    pipe.execute()
                    self.moved += 1
                    moved = job
                    break
                except WatchError:
                    continue
        last = meta.get("repeat") is not None and int(meta["repeat"]) == 0
        if not is_periodic or last:
            self.scheduler.delete_job(job_id)
        return moved
