"""rache for asyncio: ``AsyncScheduler``, ``AsyncDispatcher`` and async module-level functions.

The same scripts and the same core as the sync API; only the calls are awaited.
``pending_jobs``, ``scheduled_jobs`` and ``export_jobs`` return async generators::

    async for job in rache.aio.pending_jobs(reschedule_in=60):
        ...

Cancellation: a task cancelled while it awaits a claim does not lose the batch. The claim
runs on (Redis has it already), and once its reply is in, its jobs are put back as they
were, in the background. If the event loop stops first, the batch is lost as a dead
worker's would be: gone without ``reschedule_in``, due again after N seconds with it.
An ``async for`` left early puts the rest of its batch back when the generator is closed:
at once with ``contextlib.aclosing`` (or ``await jobs.aclose()``), else when the event loop
finalizes it.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, AsyncGenerator, Iterable, List, Mapping, Optional, Tuple

from .config import prefix
from .dispatch import AsyncDispatcher
from .models import Error, Exported, Job, Run, Seconds, Stats, Time, Value
from .rules import Rule
from .scheduler import AsyncScheduler, Entry, Progress, Start, When

__all__ = [
    "AsyncDispatcher",
    "AsyncScheduler",
    "delete_job",
    "export_jobs",
    "finish_run",
    "job_details",
    "job_runs",
    "pending_jobs",
    "recurring_jobs",
    "schedule_job",
    "schedule_job_at",
    "schedule_jobs",
    "schedule_recurring",
    "scheduled_jobs",
    "server_time",
    "stats",
]

#: The default scheduler of each event loop (a redis.asyncio client belongs to one loop).
_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncScheduler] = (
    weakref.WeakKeyDictionary()
)


#: The scheduler of the last ``connection=`` given, reused while the prefix is the same (as
#: the sync functions do): a new one would check the schedule's layout again.
_last: Optional[AsyncScheduler] = None


def _scheduler(connection: Any = None) -> AsyncScheduler:
    """The running loop's default AsyncScheduler, or one over ``connection``."""
    global _last
    if connection is not None:
        last = _last
        if last is None or last.connection is not connection or last.keys.prefix != prefix():
            _last = last = AsyncScheduler(connection)
        return last
    loop = asyncio.get_running_loop()
    scheduler = _defaults.get(loop)
    if scheduler is None:
        scheduler = _defaults[loop] = AsyncScheduler()
    return scheduler


def default_scheduler() -> AsyncScheduler:
    """The running event loop's default AsyncScheduler (from ``REDIS_URL``), made once."""
    return _scheduler()


async def schedule_job(
    job_id: str, schedule_in: Seconds, connection: Any = None, **kwargs: Optional[Value]
) -> Time:
    """Schedule ``job_id`` in ``schedule_in`` seconds, attaching ``kwargs``; the due time."""
    return await _scheduler(connection).schedule_job(job_id, schedule_in, **kwargs)


async def schedule_job_at(
    job_id: str,
    at: When,
    connection: Any = None,
    *,
    data: Optional[Mapping[str, Optional[Value]]] = None,
) -> Time:
    """Schedule ``job_id`` at ``at`` (a Unix timestamp or an aware datetime); the due time."""
    return await _scheduler(connection).schedule_job_at(job_id, at, data=data)


async def schedule_recurring(
    job_id: str,
    rule: Rule,
    connection: Any = None,
    *,
    start: Start = None,
    data: Optional[Mapping[str, Optional[Value]]] = None,
) -> Time:
    """Make ``job_id`` recur on ``rule``, as :meth:`rache.Scheduler.schedule_recurring`."""
    return await _scheduler(connection).schedule_recurring(job_id, rule, start=start, data=data)


async def schedule_jobs(
    jobs: Iterable[Tuple[Any, ...]],
    connection: Any = None,
    *,
    at: bool = False,
    progress: Optional[Progress] = None,
) -> int:
    """Schedule many ``(job_id, schedule_in[, data])`` jobs in batches; the job count."""
    return await _scheduler(connection).schedule_jobs(jobs, at=at, progress=progress)


def export_jobs(connection: Any = None) -> AsyncGenerator[Exported, None]:
    """Every job as ``(job_id, due, data, run, rule)`` (call it inside a running loop)."""
    return _scheduler(connection).export_jobs()


async def stats(intervals: int = 60, interval: Seconds = 60, connection: Any = None) -> Stats:
    """The schedule's figures in one snapshot."""
    return await _scheduler(connection).stats(intervals, interval)


def pending_jobs(
    reschedule_in: Optional[Seconds] = None, limit: Optional[int] = None, connection: Any = None
) -> AsyncGenerator[Job, None]:
    """Claim the due jobs, each for this caller only (call it inside a running loop)."""
    return _scheduler(connection).pending_jobs(reschedule_in, limit)


async def delete_job(job_id: str, connection: Any = None) -> bool:
    """Remove a job and its data; whether there was anything to remove."""
    return await _scheduler(connection).delete_job(job_id)


async def job_details(job_id: str, connection: Any = None) -> Job:
    """A job's id, due time and data."""
    return await _scheduler(connection).job_details(job_id)


async def finish_run(
    occurrence_id: str,
    error: Optional[Error] = None,
    connection: Any = None,
    *,
    retrying: bool = False,
) -> bool:
    """Record a run's outcome, as :meth:`rache.Scheduler.finish_run`; False if unknown."""
    return await _scheduler(connection).finish_run(occurrence_id, error, retrying=retrying)


async def job_runs(job_id: str, connection: Any = None) -> List[Run]:
    """A job's runs, newest first, as :meth:`rache.Scheduler.runs`."""
    return await _scheduler(connection).runs(job_id)


def scheduled_jobs(with_times: bool = False, connection: Any = None) -> AsyncGenerator[Entry, None]:
    """Every scheduled job id, or (id, due time) (call it inside a running loop)."""
    return _scheduler(connection).scheduled_jobs(with_times)


def recurring_jobs(connection: Any = None) -> AsyncGenerator[Any, None]:
    """The id of every recurring job (call it inside a running loop)."""
    return _scheduler(connection).recurring_jobs()


async def server_time(connection: Any = None) -> float:
    """The Redis server's clock, Unix seconds."""
    return await _scheduler(connection).server_time()
