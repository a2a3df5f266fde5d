"""rq-scheduler's ``Scheduler``, over a rache schedule: the same calls, the same results.

Each call takes rq-scheduler's arguments and returns what it returns (the rq job, saved at
once: see :mod:`rache.rq.jobs`); a rache job of the same id stands for it in the schedule.
Interval and cron jobs are rache recurring jobs (``rache.Every``, ``rache.Cron``);
``repeat`` counts down in the rq job's ``meta``, as rq-scheduler keeps it. Moving the due
jobs into rq is the :class:`~rache.rq.Runner`'s part, driven by a ``rache.Dispatcher``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, Iterator, List, Optional, Tuple

from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.queue import Queue

from ..constants import MAX_MS, MAX_OFFSET_SECONDS
from ..dispatch import Dispatcher
from ..errors import JobNotFound
from ..rules import Every, from_details
from ..scheduler import Scheduler as RacheScheduler
from ..scheduler import due_time
from . import jobs
from .conventions import (
    DEFAULT_LEASE,
    DEFAULT_PREFIX,
    QUEUE_FIELD,
    RQ_SCHEDULER_KEY,
    Until,
    aware,
    cron_rule,
    import_class,
    job_keywords,
    meta_rule,
    naive_utc,
    until_stamp,
    whole,
)
from .runner import Runner


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
        self.job_class = import_class(job_class, Job, "job_class")
        self.queue_class_name = queue_class if isinstance(queue_class, str) else None
        self.queue_class = import_class(queue_class, Queue, "queue_class")
        #: the rache schedule standing for rq-scheduler's sorted set
        self.rache = RacheScheduler(connection, prefix)

    # Scheduling.

    def _plain(self, job: Any, fresh: bool, at: Optional[datetime], delay: Optional[float]) -> Any:
        """Save a one-off job due at ``at`` (an aware datetime) or in ``delay`` seconds."""

        def write(data: Dict[str, str]) -> None:
            if at is not None:
                self.rache.schedule_job_at(job.id, at, data=data)
            else:
                self.rache.schedule_job(job.id, delay or 0, **data)

        return jobs.save(self, job, fresh, write)

    def enqueue_at(self, scheduled_time: datetime, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Schedule ``func(*args, **kwargs)`` at ``scheduled_time``; the rq job.

        As in rq-scheduler, these keywords are not passed on but shape the job: timeout,
        job_id, job_ttl, job_result_ttl, job_description, depends_on, meta, queue_name,
        on_success, on_failure, at_front.
        """
        when = aware(scheduled_time, "scheduled_time")
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
        options, at_front, rest = job_keywords(kwargs)
        job = jobs.create(self, func, args=args, kwargs=rest, **options)
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
        when = aware(scheduled_time, "scheduled_time")
        stamp = due_time(when, "scheduled_time")  # before the rq job is saved
        every = None if interval is None else Every(whole(interval, "interval", 1))
        count = None if repeat is None else whole(repeat, "repeat", 0)
        if repeat and interval is None:
            raise ValueError("Can't repeat a job without interval argument")
        if every is not None and not 0 <= stamp * 1000 < MAX_MS:
            raise ValueError(f"scheduled_time of a periodic job must be after 1970, not {stamp}")
        if every is not None and result_ttl is None:
            result_ttl = -1
        job = jobs.create(
            self,
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

        return jobs.save(self, job, id is None, write)

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
        rule = cron_rule(cron_string, use_local_timezone)
        count = None if repeat is None else whole(repeat, "repeat", 0)
        job = jobs.create(
            self,
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

        return jobs.save(self, job, id is None, write)

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
        """Move a scheduled job to ``date_time``, in one write: the job is never off the schedule.

        An interval job then runs every ``interval`` from there (its rule written again with
        that start, which replaces it); a cron job at its first cron time at or after it.
        :raises ValueError: the job is not scheduled.
        """
        when = aware(date_time, "date_time")
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
        if "every" in rule and round(stamp * 1000) != round(rule["start"] * 1000):
            try:  # a new start replaces the rule (its options kept) and the due time at once
                self.rache.schedule_recurring(job_id, from_details(rule), start=stamp, data=data)
            except ValueError as exc:
                raise ValueError(f"date_time of a periodic job: {exc}") from None
        else:  # one-off, cron, or an interval job moved back to its rule's own start
            self.rache.schedule_job_at(job_id, when, data=data)

    def _entries(self, until: Until, offset: Optional[int], length: Optional[int]) -> Any:
        """(id, due time) of the scheduled jobs due up to ``until``, earliest first."""
        last = until_stamp(until, self.rache.server_time)
        if (offset is None) != (length is None):
            raise ValueError("offset and length must be given together, or neither")
        skip = 0 if offset is None else whole(offset, "offset", 0)
        take = None if length is None else whole(length, "length", 0)

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

        def rq_jobs() -> Iterator[Any]:
            for job_id, due in entries:
                try:
                    job = self.job_class.fetch(job_id, connection=self.connection)
                except NoSuchJobError:
                    self.cancel(job_id)
                    continue
                yield (job, naive_utc(due)) if with_times else job

        return rq_jobs()

    def get_jobs_to_queue(self, with_times: bool = False) -> Iterator[Any]:
        """The rq jobs due now (see ``get_jobs``): now on the Redis server's clock, as due times."""
        return self.get_jobs(self.rache.server_time(), with_times=with_times)

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
                rule = meta_rule(job.meta)  # checked before the job's rache job goes
                self.rache.delete_job(job_id)
                if isinstance(rule, Every):
                    start = max(0.0, float(stamp))
                    self.rache.schedule_recurring(job_id, rule, start=start, data=data)
                elif rule is not None:  # a cron rule starts at its next time
                    self.rache.schedule_recurring(job_id, rule, data=data)
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
        options.setdefault("kind", "rq runner")
        return Dispatcher(self.runner(), scheduler=self.rache, **options)

    def run(self, burst: bool = False) -> None:
        """Move due jobs into rq until SIGTERM/SIGINT, or (``burst``) until none is due.

        Any number of processes may run this at once: each due job is moved by one.
        """
        self.dispatcher().run(until_idle=burst)
