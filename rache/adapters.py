"""Handlers that send each claimed job on to a task queue: rq, Celery, arq, or a callable.

Each builds a handler for :class:`rache.Dispatcher` (arq: :class:`rache.aio.AsyncDispatcher`)
and imports nothing of its task queue itself: it is handed the queue, app or pool, so
importing this module costs nothing (the extras ``rq``, ``celery`` and
``arq`` install the libraries). The job goes as a plain dict, ``{'id': ..., **data}``.

Idempotency: where the queue takes a job id, it is the job's occurrence
(:attr:`rache.Job.occurrence_id`, ``<id>:<due time>``), so one occurrence handed out twice
(Redis lost the write of a claim: a failover, a restore) is enqueued once.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any, Awaitable, Callable, Optional

from .constants import OCCURRENCE_META
from .models import Job

logger = logging.getLogger(__name__)

__all__ = ["OCCURRENCE_META", "arq", "call", "celery", "rq", "rq_job_id"]


def call(func: Callable[[dict[str, Any]], Any]) -> Callable[[Job], Any]:
    """A handler calling ``func(job)`` with the job as a plain dict (any callable will do).

    The dispatcher takes any callable as its handler; this one only hides the
    :class:`rache.Job` type, for code that wants exactly ``{'id': ..., **data}``.
    """
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")

    def handler(job: Job) -> Any:
        return func(dict(job))

    return handler


def rq_job_id(job: Job) -> str:
    """The rq job id of one occurrence of a job: ``rache-`` and a hash of its occurrence id.

    rq accepts only letters, digits, ``_`` and ``-`` in a job id, and job ids and due times
    hold anything else (``https://...:1700000000``): so the id is a digest, and the
    occurrence id itself rides in the rq job's ``meta['rache_occurrence']``.
    """
    digest = hashlib.sha256(job.occurrence_id.encode("utf-8", "surrogateescape")).hexdigest()
    return f"rache-{digest[:40]}"


def rq(queue: Any, func: Any, **options: Any) -> Callable[[Job], Any]:
    """A handler doing ``queue.enqueue(func, job, job_id=..., **options)`` (rq).

    :param queue: an ``rq.Queue``.
    :param func: the task: a function or its dotted name, called by the rq worker with the
        job as a dict.
    :param options: more ``enqueue`` options (``job_timeout``, ``result_ttl``...).

    An occurrence already enqueued is skipped (logged at debug): by ``unique=True`` where
    rq's ``enqueue_call`` takes it (rq 3 does), else by looking its id up first.
    """
    for name in ("job_id", "args", "kwargs"):
        if name in options:
            raise TypeError(f"rq handler sets {name!r} itself; it cannot be an option")
    unique = "unique" in inspect.signature(queue.enqueue_call).parameters

    def handler(job: Job) -> Any:
        job_id = rq_job_id(job)
        meta = {**options.get("meta", {}), OCCURRENCE_META: job.occurrence_id}
        kwargs = {**options, "job_id": job_id, "meta": meta}
        if unique:
            try:
                return queue.enqueue_call(func, args=(dict(job),), unique=True, **kwargs)
            except Exception as exc:
                if type(exc).__name__ != "DuplicateJobError":
                    raise
                logger.debug("rache: %s already enqueued in rq", job.occurrence_id)
                return None
        if queue.fetch_job(job_id) is not None:
            logger.debug("rache: %s already enqueued in rq", job.occurrence_id)
            return None
        return queue.enqueue_call(func, args=(dict(job),), **kwargs)

    return handler


def celery(app: Any, task: str, **options: Any) -> Callable[[Job], Any]:
    """A handler doing ``app.send_task(task, args=[job], task_id=occurrence id, **options)``.

    :param app: a ``celery.Celery`` app (its broker: Redis, RabbitMQ...).
    :param task: the registered task's name; the worker defines it, the dispatcher need not.
    :param options: more ``send_task`` options (``queue``, ``countdown``...).

    Celery does not refuse a task id it has seen: the occurrence id as task id lets the
    task (or a result backend) spot a repeat, it does not prevent one.
    """
    if not isinstance(task, str) or not task:
        raise TypeError(f"task must be a task name (a non-empty str), not {task!r}")
    for name in ("task_id", "args"):
        if name in options:
            raise TypeError(f"celery handler sets {name!r} itself; it cannot be an option")

    def handler(job: Job) -> Any:
        return app.send_task(task, args=[dict(job)], task_id=job.occurrence_id, **options)

    return handler


def arq(
    pool: Any, function: str, *, queue_name: Optional[str] = None, **options: Any
) -> Callable[[Job], Awaitable[Any]]:
    """An async handler doing ``await pool.enqueue_job(function, job, _job_id=occurrence id)``.

    For :class:`rache.aio.AsyncDispatcher`. arq refuses a job id it already holds (queued,
    running, or with its result kept), so an occurrence is enqueued once.

    :param pool: an ``arq.ArqRedis`` (``await arq.create_pool(...)``).
    :param function: the name of the worker's function, called with the job as a dict.
    :param queue_name: arq's ``_queue_name``; :param options: more ``_``-options
        (``_defer_by``, ``_expires``...).
    """
    if not isinstance(function, str) or not function:
        raise TypeError(f"function must be a function name (a non-empty str), not {function!r}")
    if "_job_id" in options:
        raise TypeError("arq handler sets '_job_id' itself; it cannot be an option")
    if queue_name is not None:
        options["_queue_name"] = queue_name

    async def handler(job: Job) -> Any:
        enqueued = await pool.enqueue_job(function, dict(job), _job_id=job.occurrence_id, **options)
        if enqueued is None:
            logger.debug("rache: %s already enqueued in arq", job.occurrence_id)
        return enqueued

    return handler
