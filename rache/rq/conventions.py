"""rq-scheduler's names and conventions, and its arguments turned into rache's values.

What rq-scheduler fixes and rache.rq keeps: the data field that marks a rache job as an
rq-scheduler job, rq-scheduler's own sorted set, naive datetimes read as UTC, ``until`` as
``rationalize_until`` reads it, ints taken with ``int()``, classes given by dotted name, 5
cron fields, the local time zone, the keywords that shape a job rather than reach its
function, and the rule a job's ``meta`` names. Each check raises ``TypeError`` or
``ValueError`` naming the argument, before anything is written; the bounds of a due time or
of a rule are rache's own (``rache.due_time``, ``rache.Every``, ``rache.Cron``).
"""

from __future__ import annotations

import os
import time as _time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from rq.utils import import_attribute

from ..constants import RQ_DEFAULT_LEASE, RQ_DEFAULT_PREFIX
from ..durations import shown
from ..rules import Cron, Every, location_zone

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

#: The keywords of ``enqueue_at`` and ``enqueue_in`` that shape the rq job instead of
#: reaching its function (rq-scheduler's names), each with its name in ``Job.create``'s
#: terms; ``at_front`` is taken out too.
JOB_KEYWORDS = (
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


def job_keywords(kwargs: Mapping[str, Any]) -> Tuple[Dict[str, Any], bool, Dict[str, Any]]:
    """Split ``enqueue_at``'s ``kwargs``: (the job's options, at_front, the function's).

    ``kwargs`` itself is left as it was.
    """
    rest = dict(kwargs)
    options = {name: rest.pop(key, None) for name, key in JOB_KEYWORDS}
    at_front = bool(rest.pop("at_front", None))
    return options, at_front, rest


def import_class(value: Any, default: Any, name: str) -> Any:
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


def aware(value: object, name: str) -> datetime:
    """A datetime argument as an aware datetime: naive is UTC, as in rq-scheduler.

    Only rq-scheduler's convention lives here; the bounds of a due time are rache's
    (``rache.due_time`` checks them before anything is written).
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def naive_utc(stamp: float) -> datetime:
    """A naive UTC datetime (what rq-scheduler's ``get_jobs(with_times=True)`` gives)."""
    return datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


def until_stamp(until: object, now: Callable[[], float]) -> float:
    """rq-scheduler's ``rationalize_until``: the latest due time to include.

    A timedelta counts from ``now()``: the Redis server's clock, the clock of due times
    (rq-scheduler reads the local one), read only for a timedelta.
    """
    if until is None:
        return float("inf")
    if isinstance(until, datetime):
        return aware(until, "until").timestamp()
    if isinstance(until, timedelta):
        return now() + until.total_seconds()
    if isinstance(until, (int, float)) and not isinstance(until, bool) and until == until:
        return float(until)
    raise TypeError(f"until must be a datetime, a timedelta, Unix seconds or None, not {until!r}")


def whole(value: object, name: str, least: int) -> int:
    """An int argument (rq-scheduler takes ``int(value)``) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")) or int(value) < least:
        raise ValueError(f"{name} must be at least {least}, not {shown(value)}")
    return int(value)


def local_timezone() -> str:
    """The local IANA time zone, for ``cron(..., use_local_timezone=True)``.

    rache evaluates cron rules in a named zone (on whichever runner claims the job), so the
    local zone is resolved once, when the job is scheduled: ``TZ``, else ``/etc/localtime``
    (a link into the zoneinfo tree), else ``/etc/timezone``, else UTC if the clock is UTC.
    Only a place's zone is taken (``rache.Cron``'s check): a ``posix/`` or ``right/`` copy
    is read as the zone it copies, and ``localtime`` (this host's own zone, whatever it
    is) is passed over.
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
        for folder in ("posix/", "right/"):
            name = name[len(folder) :] if name.startswith(folder) else name
        if name:
            try:
                location_zone(name)
            except Exception:
                continue
            return name
    if _time.timezone == 0 and not _time.daylight:
        return "UTC"
    raise ValueError(
        "use_local_timezone=True: this machine's IANA time zone is unknown; set TZ (such as "
        "TZ=Europe/Paris)"
    )


def cron_rule(cron_string: object, use_local_timezone: bool) -> Cron:
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


def meta_rule(meta: Mapping[str, Any]) -> Optional[Union[Every, Cron]]:
    """The rule an rq job's ``meta`` names, as rq-scheduler keeps it; None for a one-off.

    ``interval`` (seconds) or ``cron_string`` with ``use_local_timezone``: what
    :meth:`Scheduler.adopt` reads from a job rq-scheduler scheduled.
    """
    if meta.get("interval"):
        return Every(int(meta["interval"]))
    if meta.get("cron_string"):
        zone_name = local_timezone() if meta.get("use_local_timezone") else "UTC"
        return Cron(meta["cron_string"], timezone=zone_name)
    return None


def periodic(meta: Mapping[str, Any]) -> bool:
    """Whether an rq job's ``meta`` makes it periodic (an interval or a cron string)."""
    return bool(meta.get("interval") or meta.get("cron_string"))
