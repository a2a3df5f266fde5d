"""rache: a job scheduler backed by Redis, safe for any number of pollers.

rache keeps jobs with the time each is due and hands the due ones to whoever polls, each to
exactly one poller: every operation is one atomic Lua script on the Redis server.

The five functions of rache 0.3.1 use a default :class:`Scheduler`, built on first use from
``REDIS_URL`` and ``RACHE_REDIS_PREFIX``, or one over the ``connection`` you pass.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Generator, Iterable, List, Mapping, Optional, Tuple

from . import config
from .admin import reshard
from .errors import (
    ConfigurationError,
    JobNotFound,
    LayoutMismatch,
    MissingExtra,
    RacheError,
    ReservedFieldError,
    UntaggedPrefix,
)
from .models import (
    Error,
    Exported,
    Health,
    Job,
    Poller,
    Problem,
    RecurringRuns,
    Run,
    Seconds,
    SetAside,
    Stats,
    Time,
    Value,
)
from .rules import Cron, Every, Rule
from .scheduler import Entry, Progress, Scheduler, Start, When, due_time

if TYPE_CHECKING:
    from .dispatch import Dispatcher

__version__ = "1.0.0.dev0"

__all__ = [
    "ConfigurationError",
    "Cron",
    "Dispatcher",
    "Every",
    "Exported",
    "Health",
    "Job",
    "JobNotFound",
    "LayoutMismatch",
    "MissingExtra",
    "Poller",
    "Problem",
    "RacheError",
    "RecurringRuns",
    "ReservedFieldError",
    "Rule",
    "Run",
    "Scheduler",
    "Seconds",
    "SetAside",
    "Stats",
    "UntaggedPrefix",
    "delete_job",
    "due_time",
    "export_jobs",
    "finish_run",
    "job_details",
    "job_runs",
    "pending_jobs",
    "recurring_jobs",
    "reshard",
    "schedule_job",
    "schedule_job_at",
    "schedule_jobs",
    "schedule_recurring",
    "scheduled_jobs",
    "server_time",
    "stats",
]

_default: Optional[Scheduler] = None
_default_lock = threading.Lock()
#: The scheduler of the last ``connection=`` given, reused while the prefix is the same:
#: rache 0.3.1's users pass one client to every call, and a Scheduler costs a few us.
_last: Optional[Scheduler] = None


def _scheduler(connection: Any = None) -> Scheduler:
    """The default Scheduler, or one over ``connection`` with the default prefix."""
    global _default, _last
    if connection is not None:
        last = _last
        if last is None or last.connection is not connection or last.keys.prefix != config.prefix():
            _last = last = Scheduler(connection)
        return last
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Scheduler()
    return _default


def schedule_job(
    job_id: str, schedule_in: Seconds, connection: Any = None, **kwargs: Optional[Value]
) -> Time:
    """Schedule ``job_id`` in ``schedule_in`` seconds (or a timedelta), attaching ``kwargs``.

    Returns the due time set. See :meth:`Scheduler.schedule_job`.
    """
    return _scheduler(connection).schedule_job(job_id, schedule_in, **kwargs)


def schedule_job_at(
    job_id: str,
    at: When,
    connection: Any = None,
    *,
    data: Optional[Mapping[str, Optional[Value]]] = None,
) -> Time:
    """Schedule ``job_id`` at ``at``: a Unix timestamp or an aware datetime, with ``data``.

    Returns the due time set. See :meth:`Scheduler.schedule_job_at`.
    """
    return _scheduler(connection).schedule_job_at(job_id, at, data=data)


def schedule_recurring(
    job_id: str,
    rule: Rule,
    connection: Any = None,
    *,
    start: Start = None,
    data: Optional[Mapping[str, Optional[Value]]] = None,
) -> Time:
    """Make ``job_id`` recur on ``rule`` (an :class:`Every` or a :class:`Cron`).

    See :meth:`Scheduler.schedule_recurring`.
    """
    return _scheduler(connection).schedule_recurring(job_id, rule, start=start, data=data)


def schedule_jobs(
    jobs: Iterable[Tuple[Any, ...]],
    connection: Any = None,
    *,
    at: bool = False,
    progress: Optional[Progress] = None,
) -> int:
    """Schedule many ``(job_id, schedule_in[, data])`` jobs in batches; the job count.

    See :meth:`Scheduler.schedule_jobs`.
    """
    return _scheduler(connection).schedule_jobs(jobs, at=at, progress=progress)


def export_jobs(connection: Any = None) -> Generator[Exported, None, None]:
    """Every job as ``(job_id, due, data, run, rule)``. See :meth:`Scheduler.export_jobs`."""
    return _scheduler(connection).export_jobs()


def stats(intervals: int = 60, interval: Seconds = 60, connection: Any = None) -> Stats:
    """The schedule's figures in one snapshot. See :meth:`Scheduler.stats`."""
    return _scheduler(connection).stats(intervals, interval)


def pending_jobs(
    reschedule_in: Optional[Seconds] = None, limit: Optional[int] = None, connection: Any = None
) -> Generator[Job, None, None]:
    """Claim the due jobs, each for this caller only. See :meth:`Scheduler.pending_jobs`."""
    return _scheduler(connection).pending_jobs(reschedule_in, limit)


def delete_job(job_id: str, connection: Any = None) -> bool:
    """Remove a job and its data; whether it existed. See :meth:`Scheduler.delete_job`."""
    return _scheduler(connection).delete_job(job_id)


def job_details(job_id: str, connection: Any = None) -> Job:
    """A job's id, due time and data. See :meth:`Scheduler.job_details`."""
    return _scheduler(connection).job_details(job_id)


def finish_run(
    occurrence_id: str,
    error: Optional[Error] = None,
    connection: Any = None,
    *,
    retrying: bool = False,
) -> bool:
    """Record a run's outcome (None: succeeded; an exception or text: failed).

    False for an unknown run. See :meth:`Scheduler.finish_run`.
    """
    return _scheduler(connection).finish_run(occurrence_id, error, retrying=retrying)


def job_runs(job_id: str, connection: Any = None) -> List[Run]:
    """A job's runs, newest first. See :meth:`Scheduler.runs`."""
    return _scheduler(connection).runs(job_id)


def scheduled_jobs(
    with_times: bool = False, connection: Any = None
) -> Generator[Entry, None, None]:
    """Every scheduled job id, or (id, due time). See :meth:`Scheduler.scheduled_jobs`."""
    return _scheduler(connection).scheduled_jobs(with_times)


def recurring_jobs(connection: Any = None) -> Generator[Any, None, None]:
    """The id of every recurring job. See :meth:`Scheduler.recurring_jobs`."""
    return _scheduler(connection).recurring_jobs()


def server_time(connection: Any = None) -> float:
    """The Redis server's clock, Unix seconds. See :meth:`Scheduler.server_time`."""
    return _scheduler(connection).server_time()


def __getattr__(name: str) -> Any:
    """``Dispatcher``, loaded on first use, and rache 0.3.1's module attributes (PEP 562)."""
    if name == "Dispatcher":
        from .dispatch import Dispatcher

        return Dispatcher
    if name == "r":
        return _scheduler().connection
    if name == "REDIS":
        return config.connection_kwargs(config.redis_url())
    if name == "REDIS_PREFIX":
        return config.prefix()
    if name == "REDIS_KEY":
        from .keys import Keys

        return Keys(config.prefix()).queue.decode()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
