"""rq-scheduler's API over rache: the same calls, and any number of runners at once.

:class:`Scheduler` takes rq-scheduler's arguments and returns what it returns: the rq job is
created and saved in rq's Redis when it is scheduled (so ``job.id`` is known and
``get_jobs`` gives rq jobs), and a rache job of the same id, whose data holds the queue
name (``rq_queue``), stands for it in the schedule under the prefix ``rache:rq:``.
Interval and cron jobs are rache recurring jobs (``rache.Every``, ``rache.Cron``); ``repeat``
counts down in the rq job's ``meta``, as rq-scheduler keeps it.

:class:`Runner` is the other half, rq-scheduler's ``rqscheduler`` process: a handler for
:class:`rache.Dispatcher` that moves each due job into its rq queue (``Queue.enqueue_job``
of the saved job, ``at_front`` honoured). Any number of runners may run at once, with no
lock: rache hands each due job to one of them, and the move itself is a transaction that
checks the rq job first (a one-off job still ``scheduled``; a periodic one not yet moved for
this occurrence), so a job handed out again (a runner killed mid-batch, its lease over) is
moved once. ``Scheduler.run()``, ``python -m rache.rq`` and ``rache dispatch --rq-scheduler``
run one.

Naive datetimes are UTC, as in rq-scheduler. Bad input raises ``TypeError`` or
``ValueError`` naming the argument before anything is written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time as _time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import redis
from redis import WatchError

from .. import config
from ..constants import (
    MAX_MS,
    MAX_OFFSET_SECONDS,
    OCCURRENCE_META,
    RQ_DEFAULT_LEASE,
    RQ_DEFAULT_PREFIX,
)
from ..dispatch import Dispatcher
from ..errors import JobNotFound, MissingExtra
from ..models import Job as RacheJob
from ..rules import Cron, Every, zone
from ..scheduler import Scheduler as RacheScheduler
from ..scheduler import due_time

try:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus
    from rq.queue import Queue
    from rq.utils import import_attribute
except ImportError:  # pragma: no cover - the rq extra is missing
    raise MissingExtra("rache.rq", "rq", "rq") from None

logger = logging.getLogger("rache.rq")

__all__ = [
    "DEFAULT_PREFIX",
    "QUEUE_FIELD",
    "RQ_SCHEDULER_KEY",
    "Runner",
    "Scheduler",
    "local_timezone",
    "main",
]

#: The prefix of the rache schedule that stands for rq-scheduler's sorted set.
DEFAULT_PREFIX = RQ_DEFAULT_PREFIX
#: The rache job's data field naming the rq queue: it marks a job as an rq-scheduler job.
QUEUE_FIELD = "rq_queue"
#: rq-scheduler's own sorted set of scheduled job ids (what :meth:`Scheduler.adopt` reads).
RQ_SCHEDULER_KEY = "rq:scheduler:scheduled_jobs"
#: How long a claimed one-off job waits before it is handed out again if its runner died
#: before moving it (seconds): the Dispatcher's ``reschedule_in``.
DEFAULT_LEASE = RQ_DEFAULT_LEASE

#: ``until``: a datetime, a timedelta from now, Unix seconds, or None for all.
Until = Union[datetime, timedelta, int, float, None]


def _import(value: Any, default: Any, name: str) -> Any:
    """A class given as itself or as its dotted name (rq-scheduler's ``backend_class``)."""
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return import_attribute(value)
        except (ImportError, AttributeError, ValueError) as error:
            raise ValueError(f"{name} {value!r} cannot be imported: {error}") from None
    if not isinstance(value, type):
        raise TypeError(f"{name} must be a class or its dotted name, not {value!r}")
    return value


def _aware(value: object, name: str) -> datetime:
    """A datetime argument as an aware datetime: naive is UTC, as in rq-scheduler.

    Only rq-scheduler's convention lives here; the bounds of a due time are rache's
    (``rache.due_time`` checks them before anything is written).
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _utc(stamp: float) -> datetime:
    """A naive UTC datetime (what rq-scheduler's ``get_jobs(with_times=True)`` gives)."""
    return datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


def _until(until: object) -> float:
    """rq-scheduler's ``rationalize_until``: the latest due time to include."""
    if until is None:
        return float("inf")
    if isinstance(until, datetime):
        return _aware(until, "until").timestamp()
    if isinstance(until, timedelta):
        return _time.time() + until.total_seconds()
    if isinstance(until, (int, float)) and not isinstance(until, bool) and until == until:
        return float(until)
    raise TypeError(f"until must be a datetime, a timedelta, Unix seconds or None, not {until!r}")


def _whole(value: object, name: str, least: int) -> int:
    """An int argument (rq-scheduler takes ``int(value)``) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")) or int(value) < least:
        raise ValueError(f"{name} must be at least {least}, not {value!r}")
    return int(value)


def local_timezone() -> str:
    """The local IANA time zone, for ``cron(..., use_local_timezone=True)``.

    rache evaluates cron rules in a named zone (on whichever runner claims the job), so the
    local zone is resolved once, when the job is scheduled: ``TZ``, else ``/etc/localtime``
    (a link into the zoneinfo tree), else ``/etc/timezone``, else UTC if the clock is UTC.
    """
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    link = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in link:
        candidates.append(link.split("zoneinfo/", 1)[1])
    try:
        with open("/etc/timezone", encoding="utf-8") as file:
            candidates.append(file.read().strip())
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                zone(name)
            except Exception:
                continue
            return name
    if _time.timezone == 0 and not _time.daylight:
        return "UTC"
    raise ValueError(
        "use_local_timezone=True: this machine's IANA time zone is unknown; set TZ (such as "
        "TZ=Europe/Paris)"
    )


def _cron(cron_string: object, use_local_timezone: bool) -> Cron:
    """``cron()``'s rule: 5 fields (or an alias), checked as every rache.Cron is."""
    if not isinstance(cron_string, str):
        raise TypeError(f"cron_string must be a str, not {type(cron_string).__name__}")
    fields = cron_string.split()
    if len(fields) != 5 and not (len(fields) == 1 and fields[0].startswith("@")):
        raise ValueError(
            f"cron_string {cron_string!r} has {len(fields)} fields: rache.rq takes 5 (or an "
            "alias such as @daily), since rq-scheduler's crontab read a 6th field as a year "
            "and croniter reads it as seconds"
        )
    zone_name = local_timezone() if use_local_timezone else "UTC"
    try:
        return Cron(cron_string, timezone=zone_name)
    except ValueError as exc:  # named as rq-scheduler's argument
        raise ValueError(str(exc).replace("cron expression", "cron_string", 1)) from None


class Scheduler:
    """rq-scheduler's ``Scheduler``, over a rache schedule.

    :param queue_name: the rq queue of jobs scheduled without ``queue_name``.
    :param queue: an ``rq.Queue`` instead (its name is used).
    :param interval: the longest sleep of :meth:`run` between claims, seconds (a runner is
        also woken when a job is scheduled earlier, so this is not a polling period).
    :param connection: the redis-py client of rq's Redis, which holds the schedule too.
    :param job_class, queue_class: rq's classes (or dotted names), as in rq-scheduler.
    :param name: accepted for rq-scheduler's sake; rache's runners need no name or lock.
    :param prefix: the rache schedule's key prefix (rache's own argument).
    :param lease: how long a one-off job claimed by a runner that died waits to be handed
        out again, seconds (rache's own argument; see :class:`Runner`).
    """

    def __init__(
        self,
        queue_name: str = "default",
        queue: Any = None,
        interval: float = 60,
        connection: Any = None,
        job_class: Any = None,
        queue_class: Any = None,
        name: Optional[str] = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        if connection is None:
            raise ValueError("`connection` argument is required")
        if queue is not None:
            queue_name = queue.name
        if not isinstance(queue_name, str) or not queue_name:
            raise TypeError(f"queue_name must be a non-empty str, not {queue_name!r}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ValueError(f"interval must be a number of seconds above 0, not {interval!r}")
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or lease <= 0:
            raise ValueError(f"lease must be a number of seconds above 0, not {lease!r}")
        self.connection = connection
        self.queue_name = queue_name
        self.name = name
        self._interval = interval
        self.lease = lease
        self.job_class = _import(job_class, Job, "job_class")
        self.queue_class_name = queue_class if isinstance(queue_class, str) else None
        self.queue_class = _import(queue_class, Queue, "queue_class")
        #: the rache schedule standing for rq-scheduler's sorted set
        self.rache = RacheScheduler(connection, prefix)

    # Scheduling.

    def _create_job(
        self,
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
        """An rq job in the ``scheduled`` status, not saved yet (rq-scheduler's)."""
        if queue_name is not None and (not isinstance(queue_name, str) or not queue_name):
            raise TypeError(f"queue_name must be a non-empty str, not {queue_name!r}")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
        job = self.job_class.create(
            func,
            args=() if args is None else args,
            kwargs={} if kwargs is None else kwargs,
            connection=self.connection,
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
        job.origin = queue_name or self.queue_name
        if self.queue_class_name:
            job.meta["queue_class_name"] = self.queue_class_name
        return job

    def _save(self, job: Any, fresh: bool, write: Callable[[Dict[str, str]], Any]) -> Any:
        """Save the rq job, then write its rache job (undoing the save if rache refuses).

        A job id given (not ``fresh``) may name a job of another kind: its rache job goes
        first (a periodic job of that id stops being one), as a new rule is a new job.
        """
        existed = not fresh and self.connection.exists(job.key)
        job.save()
        try:
            if not fresh:
                self.rache.delete_job(job.id)
            write({QUEUE_FIELD: job.origin})
        except (TypeError, ValueError):
            if not existed:
                job.delete()
            raise
        return job

    def _plain(self, job: Any, fresh: bool, at: Optional[datetime], delay: Optional[float]) -> Any:
        """Save a one-off job due at ``at`` (an aware datetime) or in ``delay`` seconds."""

        def write(data: Dict[str, str]) -> None:
            if at is not None:
                self.rache.schedule_job_at(job.id, at, data=data)
            else:
                self.rache.schedule_job(job.id, delay or 0, **data)

        return self._save(job, fresh, write)

    def enqueue_at(self, scheduled_time: datetime, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Schedule ``func(*args, **kwargs)`` at ``scheduled_time``; the rq job.

        As in rq-scheduler, these keywords are not passed on but shape the job: timeout,
        job_id, job_ttl, job_result_ttl, job_description, depends_on, meta, queue_name,
        on_success, on_failure, at_front.
        """
        when = _aware(scheduled_time, "scheduled_time")
        due_time(when, "scheduled_time")  # before the rq job is saved
        job = self._from_kwargs(func, args, kwargs)
        return self._plain(job, kwargs.get("job_id") is None, when, None)

    def enqueue_in(self, time_delta: timedelta, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Schedule ``func(*args, **kwargs)`` ``time_delta`` from now (the Redis clock)."""
        if not isinstance(time_delta, timedelta):
            raise TypeError(f"time_delta must be a timedelta, not {type(time_delta).__name__}")
        delay = time_delta.total_seconds()
        if abs(delay) > MAX_OFFSET_SECONDS:
            raise ValueError(f"time_delta must be within {MAX_OFFSET_SECONDS:,} s, not {delay}")
        job = self._from_kwargs(func, args, kwargs)
        return self._plain(job, kwargs.get("job_id") is None, None, delay)

    def _from_kwargs(self, func: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        """enqueue_at/enqueue_in's job: the special keywords taken out of ``kwargs``."""
        kwargs = dict(kwargs)
        options = {
            name: kwargs.pop(key, None)
            for name, key in (
                ("timeout", "timeout"),
                ("id", "job_id"),
                ("ttl", "job_ttl"),
                ("result_ttl", "job_result_ttl"),
                ("description", "job_description"),
                ("depends_on", "depends_on"),
                ("meta", "meta"),
                ("queue_name", "queue_name"),
                ("on_success", "on_success"),
                ("on_failure", "on_failure"),
            )
        }
        at_front = kwargs.pop("at_front", None)
        job = self._create_job(func, args=args, kwargs=kwargs, **options)
        if at_front:
            job.enqueue_at_front = True
        return job

    def schedule(
        self,
        scheduled_time: datetime,
        func: Any,
        args: Any = None,
        kwargs: Any = None,
        interval: Optional[float] = None,
        repeat: Optional[int] = None,
        result_ttl: Optional[int] = None,
        ttl: Optional[int] = None,
        timeout: Optional[int] = None,
        id: Optional[str] = None,
        description: Optional[str] = None,
        queue_name: Optional[str] = None,
        meta: Optional[Dict[str, Any]] = None,
        depends_on: Any = None,
        on_success: Any = None,
        on_failure: Any = None,
        at_front: Optional[bool] = None,
    ) -> Any:
        """Schedule a job at ``scheduled_time``, then every ``interval`` seconds; the rq job.

        ``repeat=N`` runs it N times in all (then it stops); without ``interval`` it runs
        once, and ``repeat`` is refused. A periodic job keeps its result (``result_ttl=-1``)
        unless told otherwise.
        """
        when = _aware(scheduled_time, "scheduled_time")
        stamp = due_time(when, "scheduled_time")  # before the rq job is saved
        every = None if interval is None else Every(_whole(interval, "interval", 1))
        count = None if repeat is None else _whole(repeat, "repeat", 0)
        if repeat and interval is None:
            raise ValueError("Can't repeat a job without interval argument")
        if every is not None and not 0 <= stamp * 1000 < MAX_MS:
            raise ValueError(f"scheduled_time of a periodic job must be after 1970, not {stamp}")
        if every is not None and result_ttl is None:
            result_ttl = -1
        job = self._create_job(
            func,
            args=args,
            kwargs=kwargs,
            result_ttl=result_ttl,
            ttl=ttl,
            id=id,
            description=description,
            queue_name=queue_name,
            timeout=timeout,
            meta=meta,
            depends_on=depends_on,
            on_success=on_success,
            on_failure=on_failure,
        )
        if every is not None:
            job.meta["interval"] = every.seconds
        if count is not None:
            job.meta["repeat"] = count
        if at_front:
            job.enqueue_at_front = True
        if every is None:
            return self._plain(job, id is None, when, None)

        def write(data: Dict[str, str]) -> None:
            self.rache.schedule_recurring(job.id, every, start=stamp, data=data)

        return self._save(job, id is None, write)

    def cron(
        self,
        cron_string: str,
        func: Any,
        args: Any = None,
        kwargs: Any = None,
        repeat: Optional[int] = None,
        queue_name: Optional[str] = None,
        result_ttl: Optional[int] = -1,
        ttl: Optional[int] = None,
        id: Optional[str] = None,
        timeout: Optional[int] = None,
        description: Optional[str] = None,
        meta: Optional[Dict[str, Any]] = None,
        use_local_timezone: bool = False,
        depends_on: Any = None,
        on_success: Any = None,
        on_failure: Any = None,
        at_front: bool = False,
    ) -> Any:
        """Schedule a job on a cron rule, in UTC or (``use_local_timezone``) local time.

        The first run is the rule's next time; ``repeat=N`` stops it after N runs.
        """
        rule = _cron(cron_string, use_local_timezone)
        count = None if repeat is None else _whole(repeat, "repeat", 0)
        job = self._create_job(
            func,
            args=args,
            kwargs=kwargs,
            result_ttl=result_ttl,
            ttl=ttl,
            id=id,
            description=description,
            queue_name=queue_name,
            timeout=timeout,
            meta=meta,
            depends_on=depends_on,
            on_success=on_success,
            on_failure=on_failure,
        )
        job.meta["cron_string"] = cron_string
        job.meta["use_local_timezone"] = use_local_timezone
        if count is not None:
            job.meta["repeat"] = count
        if at_front:
            job.enqueue_at_front = True

        def write(data: Dict[str, str]) -> None:
            self.rache.schedule_recurring(job.id, rule, data=data)

        return self._save(job, id is None, write)

    # Reading and changing the schedule.

    def _id(self, job: Any, name: str = "job") -> str:
        """A job's id, from an rq job or the id itself."""
        if isinstance(job, Job):
            return str(job.id)
        if not isinstance(job, str):
            raise TypeError(f"{name} must be an rq job or a job id (a str), not {job!r}")
        return job

    def cancel(self, job: Any) -> None:
        """Take a job (or job id) off the schedule; the rq job itself stays, as rq-scheduler."""
        self.rache.delete_job(self._id(job))

    def __contains__(self, item: Any) -> bool:
        """Whether the job (or job id) is scheduled."""
        try:
            return self.rache.job_details(self._id(item, "item"))["schedule_at"] is not None
        except JobNotFound:
            return False

    def change_execution_time(self, job: Any, date_time: datetime) -> None:
        """Move a scheduled job to ``date_time``.

        An interval job then runs every ``interval`` from there; a cron job at its first
        cron time at or after it. :raises ValueError: the job is not scheduled.
        """
        when = _aware(date_time, "date_time")
        stamp = when.timestamp()
        job_id = self._id(job)
        try:
            details = self.rache.job_details(job_id)
        except JobNotFound:
            details = None
        if details is None or details["schedule_at"] is None:
            raise ValueError("Job not in scheduled jobs queue")
        rule = details.get("recurring") or {}
        data = {QUEUE_FIELD: details[QUEUE_FIELD]} if QUEUE_FIELD in details else {}
        if "every" in rule:
            if not 0 <= stamp * 1000 < MAX_MS:
                raise ValueError(f"date_time of a periodic job must be after 1970, not {stamp}")
            self.rache.delete_job(job_id)
            self.rache.schedule_recurring(job_id, Every(rule["every"]), start=stamp, data=data)
        else:
            self.rache.schedule_job_at(job_id, when, data=data)

    def _entries(self, until: Until, offset: Optional[int], length: Optional[int]) -> Any:
        """(id, due time) of the scheduled jobs due up to ``until``, earliest first."""
        last = _until(until)
        if (offset is None) != (length is None):
            raise ValueError("offset and length must be given together, or neither")
        skip = 0 if offset is None else _whole(offset, "offset", 0)
        take = None if length is None else _whole(length, "length", 0)

        def entries() -> Iterator[Tuple[str, float]]:
            taken = 0
            for index, (job_id, due) in enumerate(self.rache.scheduled_jobs(True)):
                if due > last or (take is not None and taken >= take):
                    return
                if index >= skip:
                    taken += 1
                    yield (job_id if isinstance(job_id, str) else job_id.decode()), due

        return entries()

    def get_jobs(
        self,
        until: Until = None,
        with_times: bool = False,
        offset: Optional[int] = None,
        length: Optional[int] = None,
    ) -> Iterator[Any]:
        """The rq jobs scheduled up to ``until`` (all without it), earliest first.

        With ``with_times``, ``(job, naive UTC datetime)`` pairs. ``offset`` and ``length``
        (both or neither) slice the list. A job whose rq job is gone is taken off the
        schedule, as rq-scheduler does.
        """
        entries = self._entries(until, offset, length)

        def jobs() -> Iterator[Any]:
            for job_id, due in entries:
                try:
                    job = self.job_class.fetch(job_id, connection=self.connection)
                except NoSuchJobError:
                    self.cancel(job_id)
                    continue
                yield (job, _utc(due)) if with_times else job

        return jobs()

    def get_jobs_to_queue(self, with_times: bool = False) -> Iterator[Any]:
        """The rq jobs due now (see ``get_jobs``)."""
        return self.get_jobs(_time.time(), with_times=with_times)

    def count(self, until: Until = None) -> int:
        """How many jobs are scheduled up to ``until`` (all without it)."""
        if until is None:
            return self.rache.stats(intervals=1).total
        return sum(1 for _ in self._entries(until, None, None))

    def adopt(self, key: str = RQ_SCHEDULER_KEY) -> int:
        """Take over rq-scheduler's schedule (its sorted set ``key``); how many jobs moved.

        Each job keeps its rq job, its time and its rule (``meta``'s interval or cron
        string), and leaves rq-scheduler's set once it is in rache's. Stop ``rqscheduler``
        first; a run cut short can be run again. A job whose rq job is gone is dropped, as
        rq-scheduler would.
        """
        adopted = 0
        while entries := self.connection.zrange(key, 0, 499, withscores=True):
            for raw_id, stamp in entries:
                job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                try:
                    job = self.job_class.fetch(job_id, connection=self.connection)
                except NoSuchJobError:
                    self.connection.zrem(key, raw_id)
                    continue
                data = {QUEUE_FIELD: job.origin}
                self.rache.delete_job(job_id)
                if job.meta.get("interval"):
                    start = max(0.0, float(stamp))
                    every = Every(int(job.meta["interval"]))
                    self.rache.schedule_recurring(job_id, every, start=start, data=data)
                elif job.meta.get("cron_string"):
                    zone_name = local_timezone() if job.meta.get("use_local_timezone") else "UTC"
                    cron = Cron(job.meta["cron_string"], timezone=zone_name)
                    self.rache.schedule_recurring(job_id, cron, data=data)
                else:
                    self.rache.schedule_job_at(job_id, float(stamp), data=data)
                self.connection.zrem(key, raw_id)
                adopted += 1
        return adopted

    # Moving due jobs into rq.

    def runner(self) -> Runner:
        """A :class:`Runner` over this scheduler's schedule and rq classes."""
        return Runner(
            self.rache,
            connection=self.connection,
            job_class=self.job_class,
            queue_class=self.queue_class,
        )

    def enqueue_job(self, job: Any) -> None:
        """Move one scheduled job into its rq queue now (rq-scheduler's), due or not."""
        job_id = self._id(job)
        self.runner().move(job_id, None)

    def enqueue_jobs(self) -> List[Any]:
        """Move the jobs due now into their rq queues; the rq jobs moved."""
        runner = self.runner()
        moved = []
        for job in self.rache.pending_jobs(reschedule_in=self.lease):
            rq_job = runner(job)
            if rq_job is not None:
                moved.append(rq_job)
        return moved

    def dispatcher(self, **options: Any) -> Dispatcher:
        """A :class:`rache.Dispatcher` moving due jobs into rq, sleeping ``interval`` at most."""
        options.setdefault("reschedule_in", self.lease)
        options.setdefault("max_sleep", self._interval)
        return Dispatcher(self.runner(), scheduler=self.rache, **options)

    def run(self, burst: bool = False) -> None:
        """Move due jobs into rq until SIGTERM/SIGINT, or (``burst``) until none is due.

        Any number of processes may run this at once: each due job is moved by one.
        """
        self.dispatcher().run(until_idle=burst)


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
        self.job_class = _import(job_class, Job, "job_class")
        self.queue_class = _import(queue_class, Queue, "queue_class")
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
                    periodic = bool(meta.get("interval") or meta.get("cron_string"))
                    if periodic:
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
                    if periodic:
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
        if not periodic or last:
            self.scheduler.delete_job(job_id)
        return moved


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rache.rq``: a runner process, taking ``rqscheduler``'s options.

    Any number may run at once. SIGTERM or SIGINT stops one once its batch in hand is moved.
    """
    parser = argparse.ArgumentParser(
        prog="python -m rache.rq", description="Move due rq-scheduler jobs into their rq queues."
    )
    parser.add_argument("-u", "--url", default=None, help="Redis URL (default: REDIS_URL)")
    parser.add_argument("-H", "--host", default=None, help="Redis host (without --url)")
    parser.add_argument("-p", "--port", type=int, default=6379, help="Redis port")
    parser.add_argument("-d", "--db", type=int, default=0, help="Redis database")
    parser.add_argument("-P", "--password", default=None, help="Redis password")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="rache key prefix")
    parser.add_argument("-i", "--interval", type=float, default=60, help="longest sleep, s")
    parser.add_argument("--lease", type=float, default=DEFAULT_LEASE, help="one-off job lease, s")
    parser.add_argument("-b", "--burst", action="store_true", help="stop once nothing is due")
    parser.add_argument("-j", "--job-class", default=None, help="rq job class (dotted name)")
    parser.add_argument("-q", "--queue-class", default=None, help="rq queue class (dotted name)")
    parser.add_argument("--path", default=None, help="a folder to import the classes from")
    parser.add_argument("--pid", default=None, metavar="FILE", help="write the process id there")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    options = parser.parse_args(argv)
    level = logging.DEBUG if options.verbose else logging.INFO
    logging.basicConfig(
        level=logging.WARNING if options.quiet else level,
        format="%(asctime)s %(name)s %(message)s",
    )
    if options.path:
        sys.path.insert(0, options.path)
    if options.pid:
        with open(options.pid, "w", encoding="ascii") as file:
            file.write(str(os.getpid()))
    if options.url is None and options.host is not None:
        client = redis.Redis(
            host=options.host, port=options.port, db=options.db, password=options.password
        )
    else:
        client = config.client(options.url or config.redis_url())
    try:
        scheduler = Scheduler(
            connection=client,
            interval=options.interval,
            job_class=options.job_class,
            queue_class=options.queue_class,
            prefix=options.prefix,
            lease=options.lease,
        )
    except (TypeError, ValueError, ImportError) as error:  # exits 2, one line
        parser.error(str(error))
    dispatcher = scheduler.dispatcher()
    dispatcher.run(until_idle=options.burst)
    logger.log(
        logging.WARNING if options.quiet else logging.INFO,
        "rache.rq: %d claimed, %d handled, %d failed",
        dispatcher.claimed,
        dispatcher.handled,
        dispatcher.failed,
    )


if __name__ == "__main__":
    main()
