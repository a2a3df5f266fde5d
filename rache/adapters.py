"""Handlers that send each claimed job on to a task queue: rq, Celery, arq, or a callable.

Each builds a handler for :class:`rache.Dispatcher` (arq: :class:`rache.aio.AsyncDispatcher`)
and imports nothing of its task queue itself: it is handed the queue, app or pool, so
importing this module costs nothing (the extras ``rq``, ``celery`` and
``arq`` install the libraries). The job goes as a plain dict, ``{'id': ..., **data}``.

Idempotency: where the queue takes a job id, it is the job's occurrence
(:attr:`rache.Job.occurrence_id`, ``<id>:<due time>``), so one occurrence handed out twice
(Redis lost the write of a claim: a failover, a restore) is enqueued once.

Outcomes: each queue handler is marked as handing the run off (``HAND_OFF_ATTRIBUTE``), so
a dispatcher records no success when it returns (an enqueue that raises is a failed
attempt, retried with the dispatcher's ``retries``); the worker reports the run's outcome.
For rq, the handler sets the rq job's ``on_success`` / ``on_failure`` callbacks to
:func:`rq_succeeded` and :func:`rq_failed`, which a worker imports from here; Celery's
worker reports through ``rache.celery.report_outcomes(app)``; an arq task calls
``rache.finish_run`` itself (see the dispatcher how-to).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from . import config
from .constants import HAND_OFF_ATTRIBUTE, OCCURRENCE_META, PREFIX_META, REDIS_META, SHARDS_META
from .models import Job
from .scheduler import Scheduler

logger = logging.getLogger(__name__)

__all__ = [
    "OCCURRENCE_META",
    "arq",
    "call",
    "celery",
    "hands_off",
    "rq",
    "rq_failed",
    "rq_job_id",
    "rq_meta",
    "rq_succeeded",
]


def hands_off(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``handler`` as handing each run to a task queue whose worker reports its outcome.

    A dispatcher then records no success when it returns (only a raise, as a failed
    attempt): the worker's report (rq callbacks, Celery signals, ``finish_run`` in the
    task) is the outcome. Returns the handler itself.
    """
    setattr(handler, HAND_OFF_ATTRIBUTE, True)
    return handler


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


def rq(
    queue: Any, func: Any, *, scheduler: Optional[Scheduler] = None, **options: Any
) -> Callable[[Job], Any]:
    """A handler doing ``queue.enqueue(func, job, job_id=..., **options)`` (rq).

    :param queue: an ``rq.Queue``.
    :param func: the task: a function or its dotted name, called by the rq worker with the
        job as a dict.
    :param scheduler: the schedule the runs are of, for the worker's report of each
        outcome (default: rache's default prefix, on rq's Redis); see :func:`rq_meta`.
    :param options: more ``enqueue`` options (``job_timeout``, ``result_ttl``...).

    An occurrence already enqueued is skipped (logged at debug): by ``unique=True`` where
    rq's ``enqueue_call`` takes it (rq 3 does), else by looking its id up first.

    The rq job's ``on_success`` and ``on_failure`` are :func:`rq_succeeded` and
    :func:`rq_failed` (rq's ``Callback``), so the worker records the run's outcome; an
    ``on_success`` or ``on_failure`` of yours in ``options`` wins (call those two from it).
    """
    for name in ("job_id", "args", "kwargs"):
        if name in options:
            raise TypeError(f"rq handler sets {name!r} itself; it cannot be an option")
    unique = "unique" in inspect.signature(queue.enqueue_call).parameters
    where = rq_meta(scheduler, queue.connection)
    callbacks: Dict[str, Any] = {}
    try:
        from rq import Callback
    except ImportError:  # pragma: no cover - rq before 1.14: no callbacks
        pass
    else:
        callbacks = {
            "on_success": Callback(f"{__name__}.rq_succeeded"),
            "on_failure": Callback(f"{__name__}.rq_failed"),
        }

    @hands_off
    def handler(job: Job) -> Any:
        job_id = rq_job_id(job)
        meta = {**options.get("meta", {}), **where, OCCURRENCE_META: job.occurrence_id}
        kwargs = {**callbacks, **options, "job_id": job_id, "meta": meta}
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

    The worker reports each run's outcome once it runs ``rache.celery.report_outcomes``.

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

    @hands_off
    def handler(job: Job) -> Any:
        return app.send_task(task, args=[dict(job)], task_id=job.occurrence_id, **options)

    return handler


def arq(
    pool: Any, function: str, *, queue_name: Optional[str] = None, **options: Any
) -> Callable[[Job], Awaitable[Any]]:
    """An async handler doing ``await pool.enqueue_job(function, job, _job_id=occurrence id)``.

    For :class:`rache.aio.AsyncDispatcher`. arq refuses a job id it already holds (queued,
    running, or with its result kept), so an occurrence is enqueued once. The job id is the
    occurrence id: the task reports its outcome with ``rache.finish_run(ctx["job_id"])``
    (or ``rache.aio.finish_run``), arq having no callback a worker runs for every job.

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

    @hands_off
    async def handler(job: Job) -> Any:
        enqueued = await pool.enqueue_job(function, dict(job), _job_id=job.occurrence_id, **options)
        if enqueued is None:
            logger.debug("rache: %s already enqueued in arq", job.occurrence_id)
        return enqueued

    return handler


# -- rq: the worker's report of each run's outcome ---------------------------------------------


def rq_meta(scheduler: Optional[Scheduler], queue_connection: Any = None) -> Dict[str, Any]:
    """What an rq job's ``meta`` carries for :func:`rq_succeeded` and :func:`rq_failed`.

    The schedule's prefix and shard count, and its Redis: ``"queue"`` when it is rq's own
    (no scheduler given, or the scheduler's client is ``queue_connection`` or reaches the
    same server and database), else ``"env"``: the worker then reaches the schedule
    through its own ``REDIS_URL``, so that no password is written in rq's Redis.
    """
    if scheduler is None:
        return {PREFIX_META: config.prefix(), SHARDS_META: 1, REDIS_META: "queue"}
    same = queue_connection is None or _same_server(scheduler.connection, queue_connection)
    return {
        PREFIX_META: scheduler.keys.prefix,
        SHARDS_META: len(scheduler.shards),
        REDIS_META: "queue" if same else "env",
    }


def _same_server(one: Any, other: Any) -> bool:
    """Whether two redis-py clients reach the same server and database."""
    if one is other:
        return True

    def where(client: Any) -> Optional[Tuple[Any, ...]]:
        pool = getattr(client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None)
        if not isinstance(kwargs, dict):
            return None
        return (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))

    mine = where(one)
    return mine is not None and mine == where(other)


#: The schedulers the callbacks report to, by connection (or URL), prefix and shard count.
_schedulers: Dict[Tuple[Any, ...], Tuple[Any, Scheduler]] = {}
_schedulers_lock = threading.Lock()


def _report_scheduler(connection: Any, meta: Dict[str, Any]) -> Scheduler:
    """The Scheduler of the run an rq job stands for, from its meta (made once, then kept)."""
    prefix = str(meta.get(PREFIX_META) or config.prefix())
    shards = int(meta.get(SHARDS_META) or 1)
    use_env = meta.get(REDIS_META) == "env" or connection is None
    key: Tuple[Any, ...] = (config.redis_url(),) if use_env else (id(connection),)
    key += (prefix, shards)
    with _schedulers_lock:
        found = _schedulers.get(key)
        if found is not None and (use_env or found[0] is connection):
            return found[1]
        client = config.client(config.redis_url()) if use_env else connection
        scheduler = Scheduler(client, prefix, shards=shards)
        if len(_schedulers) >= 16:
            _schedulers.clear()
        _schedulers[key] = (client, scheduler)
        return scheduler


def _rq_report(job: Any, connection: Any, error: Any, retrying: bool = False) -> None:
    """``finish_run`` for the run an rq job stands for; logged, never raised.

    A raise would make rq count the job failed (a success callback's) or record the
    callback's error instead of the job's: the report is a side matter.
    """
    try:
        meta = job.meta or {}
        occurrence = meta.get(OCCURRENCE_META)
        if not isinstance(occurrence, str) or not occurrence:
            return
        scheduler = _report_scheduler(connection, meta)
        if not scheduler.finish_run(occurrence, error, retrying=retrying):
            logger.debug("rache: run %s is not recorded (expired, or history=0)", occurrence)
    except Exception:
        logger.warning(
            "rache: the outcome of rq job %s could not be recorded",
            getattr(job, "id", "?"),
            exc_info=True,
        )


def rq_succeeded(job: Any, connection: Any, result: Any, *args: Any, **kwargs: Any) -> None:
    """Rq's ``on_success`` callback: the run the job stands for succeeded.

    Set by :func:`rq` and ``rache.rq``; the job's ``meta`` names the run
    (``rache_occurrence``) and its schedule (:func:`rq_meta`). A job without them is left
    alone, so that it may be any job's callback.
    """
    _rq_report(job, connection, None)


def rq_failed(
    job: Any, connection: Any, exc_type: Any, exc_value: Any, traceback: Any, *args: Any, **kw: Any
) -> None:
    """Rq's ``on_failure`` callback: the run failed, or (rq retries left) an attempt did.

    With rq's ``Retry`` retries left (``job.retries_left``), the failure is recorded as a
    failed attempt (``retrying=True``) and the run stays running; the last one fails it.
    """
    error = exc_value if isinstance(exc_value, BaseException) else (exc_type or "failed")
    if not isinstance(error, (BaseException, str)):
        error = getattr(error, "__name__", str(error))
    retries_left = getattr(job, "retries_left", None)
    _rq_report(job, connection, error, bool(retries_left and retries_left > 0))
