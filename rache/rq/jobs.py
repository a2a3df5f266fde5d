"""The rq side of a scheduled job: the rq job built as rq-scheduler builds it, and saved.

Scheduling creates the rq job and saves it in rq's Redis at once (so ``job.id`` is known and
``get_jobs`` gives rq jobs), then writes the rache job of the same id that stands for it in
the schedule, its data naming the queue; if rache refuses, the save is undone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from rq import Callback
from rq.job import JobStatus

from .. import adapters
from .conventions import QUEUE_FIELD

if TYPE_CHECKING:
    from .scheduler import Scheduler


def create(
    scheduler: Scheduler,
    func: Any,
    args: Any = None,
    kwargs: Any = None,
    result_ttl: Optional[int] = None,
    ttl: Optional[int] = None,
    id: Optional[str] = None,
    description: Optional[str] = None,
    queue_name: Optional[str] = None,
    timeout: Optional[int] = None,
    meta: Optional[Dict[str, Any]] = None,
    depends_on: Any = None,
    on_success: Any = None,
    on_failure: Any = None,
) -> Any:
    """An rq job in the ``scheduled`` status, not saved yet (rq-scheduler's ``_create_job``).

    Its queue is ``queue_name``, else the scheduler's; the scheduler's queue class, when
    given by name, goes in ``meta['queue_class_name']`` for the runner, as in rq-scheduler.
    Its ``on_success`` / ``on_failure``, unless given, are rache's
    (``rache.adapters.rq_succeeded`` / ``rq_failed``): the worker records the outcome of
    each run of a periodic job, which the runner names in its meta when it moves it into
    its queue.
    """
    if queue_name is not None and (not isinstance(queue_name, str) or not queue_name):
        raise TypeError(f"queue_name must be a non-empty str, not {queue_name!r}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
    if on_success is None:
        on_success = Callback(f"{adapters.__name__}.rq_succeeded")
    if on_failure is None:
        on_failure = Callback(f"{adapters.__name__}.rq_failed")
    job = scheduler.job_class.create(
        func,
        args=() if args is None else args,
        kwargs={} if kwargs is None else kwargs,
        connection=scheduler.connection,
        result_ttl=result_ttl,
        ttl=ttl,
        id=id,
        description=description,
        timeout=timeout,
        meta=None if meta is None else dict(meta),
        depends_on=depends_on,
        on_success=on_success,
        on_failure=on_failure,
        status=JobStatus.SCHEDULED,
    )
    job.meta.update(adapters.rq_meta(scheduler.rache, scheduler.connection))
    job.origin = queue_name or scheduler.queue_name
    if scheduler.queue_class_name:
        job.meta["queue_class_name"] = scheduler.queue_class_name
    return job


def save(
    scheduler: Scheduler, job: Any, fresh: bool, write: Callable[[Dict[str, str]], Any]
) -> Any:
    """Save the rq job, then its rache job (``write`` of its data); undo the save if refused.

    A job id given (not ``fresh``) may name a job of another kind: its rache job goes
    first (a periodic job of that id stops being one), as a new rule is a new job.
    """
    existed = not fresh and scheduler.connection.exists(job.key)
    job.save()
    try:
        if not fresh:
            scheduler.rache.delete_job(job.id)
        write({QUEUE_FIELD: job.origin})
    except (TypeError, ValueError):
        if not existed:
            job.delete()
        raise
    return job
