"""Celery beat on rache: ``celery -A proj beat -S rache.celery:BeatScheduler``.

Every ``beat_schedule`` entry becomes a rache recurring job (``Every`` for a number of
seconds, a ``timedelta`` or a ``schedule``; ``Cron`` in the crontab's time zone, the app's,
for a ``crontab``), declared again at each beat start: the same rule is kept as it runs, a
changed one replaced, an entry gone from the config removed (only the jobs this integration
made: their names are kept in the hash ``<prefix>celery:entries``). Each occurrence is
handed out once however many beats run, so every beat is active and none is a leader; the
Celery task id is the occurrence's id (``<entry>:<due time>``), the same whichever beat
sends it. ``tick()`` sends what is due and returns the time to the next due occurrence.

What to send rides in the job's data (the field ``celery``: task, args, kwargs and options
as kombu's JSON), so a beat sends an entry as the last beat that declared it said, even one
that its own config lacks. Settings: ``rache_redis_url`` (default ``REDIS_URL``, else the
broker URL when it is a Redis one) and ``rache_prefix`` (default ``RACHE_REDIS_PREFIX``,
else ``rache:``). Needs the ``celery`` extra: ``pip install '.[celery]'`` in rache's checkout.

Outcomes: a worker records the outcome of each run it executes (a beat's occurrence, or a
task sent by ``rache.adapters.celery`` or ``rache dispatch --celery``: its task id is the
run's occurrence id) once its app module runs one line, ``report_outcomes(app)``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import timezone as dt_timezone
from typing import Any, Dict, List, Optional, Set, Union

from . import config
from .constants import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_REDIS_URL,
    POLLER_TTL,
    REDIS_URL_ENV,
)
from .dispatch import Dispatcher
from .errors import ConfigurationError, JobNotFound, MissingExtra
from .formatting import text
from .models import Job
from .rules import Cron, Every, from_details, location_zone
from .scheduler import Scheduler

try:
    from celery import beat, schedules, signals
    from kombu.utils import json as kombu_json
except ImportError:  # pragma: no cover - depends on the installed extras
    raise MissingExtra("rache.celery", "celery", "celery") from None

logger = logging.getLogger(__name__)

__all__ = [
    "BeatScheduler",
    "Declaration",
    "cron_expression",
    "declaration",
    "prefix",
    "redis_url",
    "report_outcomes",
]

#: The job data field that holds what to send: ``{"task", "args", "kwargs", "options"}``.
FIELD = "celery"

#: Each crontab field: its attribute, and the range of values that means "every" (``*``).
_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day_of_month", 1, 31),
    ("month_of_year", 1, 12),
    ("day_of_week", 0, 6),
)


def redis_url(app: Any) -> str:
    """The Redis of the beat's schedule: ``rache_redis_url``, ``REDIS_URL``, a Redis broker.

    Else rache's default, ``redis://localhost:6379/0``. A broker URL counts when it is
    ``redis://`` or ``rediss://`` (the first of a ``;``-separated list), or
    ``redis+socket://`` (read as ``unix://``).
    """
    url = app.conf.get("rache_redis_url") or os.environ.get(REDIS_URL_ENV)
    if url:
        return str(url)
    broker = app.conf.broker_url
    if isinstance(broker, str):
        first = broker.split(";")[0].strip()
        if first.startswith(("redis://", "rediss://")):
            return first
        if first.startswith("redis+socket://"):
            return "unix://" + first[len("redis+socket://") :]
    return DEFAULT_REDIS_URL


def prefix(app: Any) -> str:
    """The key prefix: ``rache_prefix``, else ``RACHE_REDIS_PREFIX``, else ``rache:``."""
    value = app.conf.get("rache_prefix")
    if value is None:
        return config.prefix()
    if not isinstance(value, str):
        raise ConfigurationError(f"rache_prefix must be a str, not {type(value).__name__}")
    return value


def _field(values: Set[int], low: int, high: int) -> str:
    """One cron field from a set of values: ``*``, or runs such as ``1-5,9``."""
    if set(range(low, high + 1)) <= values:
        return "*"
    parts: List[str] = []
    ordered = sorted(values)
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start > 1:
            parts.append(f"{start}-{previous}")
        else:
            parts.extend(str(n) for n in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def cron_expression(rule: Any) -> str:
    """The cron expression of a Celery ``crontab``: ``minute hour dom month dow``.

    Built from the crontab's expanded sets, so Celery's own parsing stands (names, ranges,
    steps). Celery runs a crontab when its day of the month *and* its day of the week both
    match, cron when either does: a crontab that restricts both is refused (ValueError).
    """
    fields = [_field(set(getattr(rule, name)), low, high) for name, low, high in _CRON_FIELDS]
    if fields[2] != "*" and fields[4] != "*":
        raise ValueError(
            "a crontab that restricts both day_of_month and day_of_week runs in Celery when "
            "both match, and in cron when either does: restrict one of them"
        )
    return " ".join(fields)


def _zone_name(zone: Any) -> str:
    """The IANA name of a time zone object (zoneinfo or pytz), or ValueError.

    A place's zone, as every ``rache.Cron`` takes: not ``localtime``, ``Factory`` and the
    like, which mean another zone on each host (``rache.rules.location_zone``).
    """
    if zone is dt_timezone.utc:
        return "UTC"
    name = getattr(zone, "key", None) or getattr(zone, "zone", None)
    if not isinstance(name, str):
        raise ValueError(
            f"its time zone {zone!r} has no IANA name: set the app's timezone setting "
            "(app.conf.timezone) to one, such as 'Europe/Paris'"
        )
    if name != "UTC":
        try:
            location_zone(name)
        except ValueError as exc:
            raise ValueError(f"the app's timezone setting (app.conf.timezone): {exc}") from None
    return name


@dataclass(frozen=True)
class Declaration:
    """One ``beat_schedule`` entry as a rache recurring job: its rule and what to send."""

    name: str
    #: an interval entry's ``Every``, a crontab entry's ``Cron`` (in the crontab's zone)
    rule: Union[Every, Cron]
    #: the job data field ``celery``: task, args, kwargs and options as kombu's JSON
    payload: str

    def describe(self) -> str:
        """The rule, options and all (its repr): what ``<prefix>celery:entries`` records."""
        return repr(self.rule)


def declaration(name: str, entry: Any) -> Declaration:
    """The declaration of one Celery ``ScheduleEntry``; ValueError naming the entry if unfit.

    Unfit: a ``solar`` or custom schedule, an interval of 0 or less, a crontab restricting
    both days, args that kombu's JSON cannot carry (a ``BeatLazyFunc``, an object).
    """
    try:
        return _declaration(name, entry)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"beat_schedule entry {name!r}: {exc}") from None


def _declaration(name: str, entry: Any) -> Declaration:
    if not isinstance(entry.task, str) or not entry.task:
        raise ValueError(f"its task must be a task name (a non-empty str), not {entry.task!r}")
    given = entry.schedule
    rule: Union[Every, Cron]
    if isinstance(given, schedules.crontab):
        rule = Cron(cron_expression(given), timezone=_zone_name(given.tz))
    elif isinstance(given, schedules.solar):
        raise ValueError(
            "solar schedules are not supported by rache.celery (a sun event's time cannot be "
            "computed where rache hands occurrences out); use a crontab"
        )
    elif type(given) is schedules.schedule:
        rule = Every(given.run_every)
    else:
        raise ValueError(
            f"its schedule {given!r} is a {type(given).__name__}; rache.celery takes a number of "
            "seconds, a timedelta, a celery.schedules.schedule or a crontab"
        )
    args, kwargs, options = list(entry.args or ()), dict(entry.kwargs or {}), entry.options
    for value in [*args, *kwargs.values()]:
        if isinstance(value, beat.BeatLazyFunc):
            raise ValueError(
                "its args hold a BeatLazyFunc, which rache.celery cannot store (every beat "
                "sends the entry as stored in Redis): compute the value in the task"
            )
    body = {"task": entry.task, "args": args, "kwargs": kwargs, "options": dict(options or {})}
    try:
        payload = kombu_json.dumps(body)  # type: ignore[no-untyped-call]
    except TypeError as exc:
        raise ValueError(f"its args, kwargs or options cannot be stored as JSON: {exc}") from None
    return Declaration(name, rule, payload)


class BeatScheduler(beat.Scheduler):  # type: ignore[misc]
    """A Celery beat scheduler whose schedule is rache's: every beat active, no leader.

    ``celery -A proj beat -S rache.celery:BeatScheduler``. At start it declares
    ``beat_schedule`` into rache (see the module's docstring); each ``tick()`` claims the
    occurrences due, sends each as a Celery task whose id is the occurrence's id, and
    returns the seconds until the next occurrence falls due (at most ``max_interval``:
    ``beat_max_loop_interval``, else 25 s).
    """

    #: The longest sleep between ticks when nothing is due (``beat_max_loop_interval`` wins).
    #: The beat announces itself on its ticks, so its entry in ``Scheduler.pollers()`` lives
    #: ``POLLER_TTL`` (60 s) after one: two ticks at most this far apart fit in it, and a
    #: beat killed without a word leaves the list within a minute.
    max_interval = 25
    #: The most occurrences one claim (one script call) hands out: small enough that a
    #: burst of occurrences due at once spreads over the beats (each claims in turn).
    batch = 100

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.redis_url = redis_url(app)
        self.prefix = prefix(app)
        #: the redis-py client and the rache schedule; no connection until first used
        self.client = config.client(self.redis_url)
        self.rache = Scheduler(self.client, self.prefix)
        self.record_key = self.rache.keys.celery_entries
        super().__init__(app, *args, **kwargs)
        #: the hand-out loop: each tick is one round of it (``Dispatcher.run_once``)
        self.dispatcher = Dispatcher(
            self.send,
            scheduler=self.rache,
            batch=self.batch,
            max_sleep=self.max_interval,
            wakeup=False,
            backoff=DEFAULT_BACKOFF,
            max_backoff=max(DEFAULT_BACKOFF, min(DEFAULT_MAX_BACKOFF, float(self.max_interval))),
            kind="celery beat",
            # Celery's loop ticks at most max_interval apart: the entry outlives two of those
            # (60 s for any max_interval up to 30 s, the default 25 s among them).
            poller_ttl=max(POLLER_TTL, 2 * float(self.max_interval)),
            hand_off=True,  # a task sent is not a run done: the worker reports outcomes
        )
        #: its core: the counts, the sleeps and the backoff
        self.loop = self.dispatcher.core

    # -- the schedule, declared at start ---------------------------------------------------

    def setup_schedule(self) -> None:
        """Build the entries as Celery does, then declare them into rache (see declare)."""
        self.merge_inplace(self.app.conf.beat_schedule)
        self.install_default_entries(self.schedule)
        self.declare()

    def declare(self) -> Dict[str, List[str]]:
        """Declare every entry as a rache recurring job; the names kept, new, replaced, removed.

        Every entry is checked, and every entry's job looked up, before anything is written:
        an unfit entry, or a job of an entry's name that this integration did not make
        (another user of the prefix), raises naming it, and nothing changes in Redis.
        """
        declarations = [declaration(name, entry) for name, entry in sorted(self.schedule.items())]
        current: Dict[str, Optional[Job]] = {}
        for item in declarations:
            try:
                current[item.name] = self.rache.job_details(item.name)
            except JobNotFound:
                current[item.name] = None
        # Read after the jobs: a beat records an entry before it schedules its job, so a job
        # found above has its record by now, even one another beat starting at the same
        # moment has just written (read before, it looked like another user's job).
        recorded = {text(name) for name in self.client.hkeys(self.record_key)}
        for item in declarations:
            if current[item.name] is not None and item.name not in recorded:
                raise ConfigurationError(
                    f"beat_schedule entry {item.name!r}: a job of that id is already scheduled "
                    f"under prefix {self.prefix!r}, and rache.celery did not make it: give the "
                    "beat a prefix of its own (the rache_prefix setting)"
                )
        report: Dict[str, List[str]] = {"kept": [], "new": [], "replaced": [], "removed": []}
        if declarations:  # recorded first: a beat starting meanwhile sees the job as ours
            self.client.hset(
                self.record_key, mapping={item.name: item.describe() for item in declarations}
            )
        now: Optional[float] = None
        for item in declarations:
            job = current[item.name]
            before = None if job is None else job.get("recurring")
            data = {FIELD: item.payload}
            if isinstance(item.rule, Cron):
                due = self.rache.schedule_recurring(item.name, item.rule, data=data)
            else:
                start = None
                if not _same_rule(before, item):  # as Celery's beat: first run in an interval
                    if now is None:
                        now = self.rache.server_time()
                    start = now + item.rule.seconds
                due = self.rache.schedule_recurring(item.name, item.rule, start=start, data=data)
            if job is None:
                report["new"].append(item.name)
            elif job.get("schedule_at") == due and _same_rule(before, item):
                report["kept"].append(item.name)
            else:
                report["replaced"].append(item.name)
        names = {item.name for item in declarations}
        for name in sorted(recorded - names):
            self.rache.delete_job(name)
            self.client.hdel(self.record_key, name)
            report["removed"].append(name)
        logger.info(
            "rache: beat_schedule declared under prefix %r at %s: %s",
            self.prefix,
            config.hide_password(self.redis_url),
            ", ".join(f"{len(names)} {what}" for what, names in report.items()),
        )
        for what in ("new", "replaced", "removed"):
            if report[what]:
                logger.info("rache: %s: %s", what, ", ".join(report[what]))
        return report

    # -- the loop --------------------------------------------------------------------------

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Send every occurrence due now; the seconds until the next one (at most max_interval).

        0 after a full claim (more may be due). A Redis outage is ridden out: the tick
        returns a backoff delay (logged once), and the next tick tries again.
        """
        return self.dispatcher.run_once()

    def send(self, job: Job) -> None:
        """Send one occurrence as Celery's beat sends an entry, its task id the occurrence's.

        Logs "Scheduler: Sending due task NAME (TASK)" as Celery does; a send that fails is
        logged (Celery's "Message Error"), and the occurrence is not sent again.
        :raises ValueError: the job holds no entry this integration wrote (the dispatcher
            logs it with the job's id and counts it failed).
        """
        try:
            body = kombu_json.loads(text(job[FIELD]))  # type: ignore[no-untyped-call]
            task, args, kwargs = body["task"], body["args"], body["kwargs"]
            options = {**body["options"], "task_id": job.occurrence_id}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"job {job['id']!r} holds no beat entry to send: {exc!r}") from exc
        entry = self.Entry(
            name=job["id"], task=task, args=args, kwargs=kwargs, options=options, app=self.app
        )
        self.apply_entry(entry, producer=self.producer)

    def close(self) -> None:
        """Withdraw from the live pollers, release the broker connection and the Redis client."""
        try:
            self.dispatcher.withdraw()
            super().close()
        finally:
            self.client.close()

    @property
    def info(self) -> str:
        """The line under beat's banner: where the schedule lives."""
        url = config.hide_password(self.redis_url)
        return f"    . rache -> {url} prefix {self.prefix!r}"


def _same_rule(before: Any, item: Declaration) -> bool:
    """Whether a job's rule (job_details' ``recurring``) is the declaration's, options and all.

    Compared as rule values: the period or cron expression and zone, and misfire and grace,
    so that an entry whose rule differs only in its options is replaced, not kept.
    """
    if not isinstance(before, dict):
        return False
    try:
        return from_details(before) == item.rule
    except KeyError:
        return False


# -- outcomes: the worker's report of each run -------------------------------------------------

#: What a rache occurrence id ends with: ``:<due time>``, and for a plain job's run
#: ``:<16 hex digits>`` (a Celery task id of its own, a UUID, never does).
_OCCURRENCE_END = re.compile(r":-?[0-9]+(?:\.[0-9]+)?(?::[0-9a-f]{16})?\Z")


def is_occurrence_id(task_id: Any) -> bool:
    """Whether a task id has the form of a rache occurrence id (others are not reported)."""
    return isinstance(task_id, str) and _OCCURRENCE_END.search(task_id) is not None


class _Reporter:
    """The signal handlers of ``report_outcomes``: ``finish_run`` for one app's tasks."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._scheduler: Optional[Scheduler] = None
        self._pid = 0

    def scheduler(self) -> Scheduler:
        """The schedule (the beat's settings), made on first use in each process."""
        with self._lock:
            if self._scheduler is None or self._pid != os.getpid():
                shards = int(self.app.conf.get("rache_shards") or 1)
                client = config.client(redis_url(self.app))
                self._scheduler = Scheduler(client, prefix(self.app), shards=shards)
                self._pid = os.getpid()
            return self._scheduler

    def report(self, task: Any, task_id: Any, error: Any, retrying: bool = False) -> None:
        if not is_occurrence_id(task_id) or getattr(task, "app", self.app) is not self.app:
            return
        try:
            self.scheduler().finish_run(task_id, error, retrying=retrying)
        except Exception:
            logger.warning("rache: the outcome of task %s could not be recorded", task_id,
                           exc_info=True)  # fmt: skip

    def success(self, sender: Any = None, **kwargs: Any) -> None:
        self.report(sender, getattr(getattr(sender, "request", None), "id", None), None)

    def failure(self, sender: Any = None, task_id: Any = None, exception: Any = None,
                **kwargs: Any) -> None:  # fmt: skip
        self.report(sender, task_id, exception if exception is not None else "failed")

    def retry(self, sender: Any = None, request: Any = None, reason: Any = None,
              **kwargs: Any) -> None:  # fmt: skip
        error = reason if isinstance(reason, (BaseException, str)) else str(reason)
        self.report(sender, getattr(request, "id", None), error, retrying=True)


def report_outcomes(app: Any) -> None:
    """Have this process's Celery worker record the outcome of each rache run it executes.

    One line where the worker's app is made: ``rache.celery.report_outcomes(app)``. It
    connects Celery's task signals: ``task_success`` records the run succeeded,
    ``task_failure`` failed (with the exception), ``task_retry`` a failed attempt
    (``retrying=True``: Celery's own retries). Only tasks of this app whose id has the form
    of an occurrence id (``<id>:<due time>[:<run>]``: tasks sent by a rache beat,
    ``rache.adapters.celery`` or ``rache dispatch --celery``) are reported, each with one
    script call; others cost nothing. The schedule is the beat's: the ``rache_redis_url``
    setting (else ``REDIS_URL``, else a Redis broker), ``rache_prefix`` and ``rache_shards``
    (default 1). A report that fails is logged, never raised into the task. Calling it
    again for the same app changes nothing.
    """
    reporter = _Reporter(app)
    uid = f"rache-outcomes-{id(app)}"
    signals.task_success.connect(reporter.success, weak=False, dispatch_uid=uid + "-success")
    signals.task_failure.connect(reporter.failure, weak=False, dispatch_uid=uid + "-failure")
    signals.task_retry.connect(reporter.retry, weak=False, dispatch_uid=uid + "-retry")
