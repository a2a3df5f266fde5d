"""Every argument's check: where bad input is caught, before any script call is built.

A setting's bounds (a dispatcher's sleeps and backoff, a batch size), each operation's
arguments (offsets and due times, job ids, data, limits, rules) and the values of a
restored job, so that ``rache.encode`` and the dispatch loop check them alike, the loop
without building any script call. ``rache.durations`` converts every argument in seconds.
One rule for the errors: a value of the wrong type is a ``TypeError``, one of the right
type but out of bounds a ``ValueError``; each names the argument.
"""

from __future__ import annotations

import math
import numbers
import os
import socket
import sys
from datetime import datetime
from typing import List, Mapping, Optional, Tuple, Union

from . import wire
from .constants import (
    MAX_BATCH_SIZE,
    MAX_CALL_RECORD_TTL,
    MAX_ERROR_BYTES,
    MAX_HISTORY,
    MAX_MS,
    MAX_OFFSET_SECONDS,
    MAX_POLLER_NAME,
    MIN_CALL_RECORD_TTL,
    RESERVED_FIELDS,
)
from .durations import digits, finite, seconds, shown
from .errors import ReservedFieldError
from .rules import Cron, Every
from .rules import checked as checked_rule

# -- a setting's bounds ----------------------------------------------------------------------


def positive_seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """A setting in seconds (a dispatcher's sleeps and backoff): finite, up to 1e9."""
    number = seconds(value, name)
    low_ok = number >= 0 if allow_zero else number > 0
    if not finite(number) or not low_ok or not number <= 1e9:
        bound = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, not {shown(value)}")
    return float(number)


def count(value: object, name: str, low: int, high: int) -> int:
    """An int setting from ``low`` to ``high`` (a batch size, a shard count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, not {shown(value)}")
    return value


# -- durations: rache.durations converts; the bounds are each argument's --------------------


def _timestamp(value: object) -> Union[int, float]:
    """A Unix timestamp as a number (an int stays exact, however large)."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)  # type: ignore[arg-type]


def offset(value: object, name: str) -> Tuple[int, bytes]:
    """``schedule_in`` / ``reschedule_in`` as (milliseconds, precision flag).

    Whole seconds count from the server's whole second, so due times are integers as in
    rache 0.3.1; a fraction keeps the millisecond.
    """
    if type(value) is int and -MAX_OFFSET_SECONDS <= value <= MAX_OFFSET_SECONDS:
        return value * 1000, wire.WHOLE_SECONDS  # the common case, before the general checks
    number = seconds(value, name)
    if not finite(number):
        raise ValueError(f"{name} must be a finite number of seconds, not {number!r}")
    if abs(number) > MAX_OFFSET_SECONDS:
        raise ValueError(
            f"{name} must be within {MAX_OFFSET_SECONDS:,} seconds of now, not {shown(value)}"
        )
    if isinstance(number, int) or number.is_integer():
        return int(number) * 1000, wire.WHOLE_SECONDS
    return round(number * 1000), wire.MILLISECONDS


def due_at(value: object) -> Tuple[int, bytes]:
    """A due time given as a Unix timestamp (seconds), kept to the millisecond."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"due time must be a Unix timestamp, not {type(value).__name__}")
    number = _timestamp(value)
    if not finite(number) or abs(number) > MAX_OFFSET_SECONDS:
        raise ValueError(f"due time must be a finite Unix timestamp, not {shown(value)}")
    return round(number * 1000), wire.AT


def moment(value: object, name: str) -> Tuple[int, bytes]:
    """An absolute due time: a Unix timestamp or an aware datetime, as (ms, the ``at`` flag).

    A naive datetime is refused (``ValueError``): it names no instant, and guessing a zone
    would move the job by hours. Kept to the millisecond, within ``MAX_OFFSET_SECONDS`` of
    1970 either way.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name} must be an aware datetime (with tzinfo) or a Unix timestamp, "
                f"not the naive {value!r}"
            )
        number: Union[int, float] = value.timestamp()
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a Unix timestamp or an aware datetime, not {type(value).__name__}"
        )
    else:
        number = _timestamp(value)
    if not finite(number) or abs(number) > MAX_OFFSET_SECONDS:
        raise ValueError(
            f"{name} must be a finite Unix timestamp within {MAX_OFFSET_SECONDS:,} seconds "
            f"of 1970, not {shown(value)}"
        )
    return round(number * 1000), wire.AT


def start(value: object) -> Optional[int]:
    """A rule's ``start``: None (now, server clock), a Unix timestamp or an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("start must be an aware datetime (with tzinfo), or a Unix timestamp")
        number = value.timestamp()
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"start must be a Unix timestamp or a datetime, not {type(value).__name__}")
    else:
        number = _timestamp(value)
    if not finite(number) or not 0 <= number * 1000 < MAX_MS:
        raise ValueError(f"start must be a finite Unix timestamp after 1970, not {shown(value)}")
    return round(number * 1000)


# -- counts and settings ---------------------------------------------------------------------


def batch_size(value: object) -> int:
    """A Scheduler's batch size: an int from 1 to MAX_BATCH_SIZE."""
    return count(value, "batch_size", 1, MAX_BATCH_SIZE)


def limit(value: object) -> Optional[int]:
    """``limit``: None (no limit) or an int >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"limit must be an int or None, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"limit must be 0 or more, not {shown(value)}")
    return int(value)


# -- job ids and data ------------------------------------------------------------------------


def raw_id(value: object) -> bytes:
    """A job id (a non-empty str), encoded: the id as the scripts get it."""
    if not isinstance(value, str):
        raise TypeError(f"job_id must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError("job_id must not be empty")
    return wire.utf8(value, "job_id")


_RESERVED = frozenset(RESERVED_FIELDS)


def data(fields: Mapping[str, object]) -> Tuple[List[bytes], List[bytes]]:
    """Split job data into (field, value, ...) pairs to set and fields to delete (value None).

    A key must be a str (``TypeError`` naming it), and none of the names rache reports
    itself beside the data (``ReservedFieldError`` naming it).
    """
    if not _RESERVED.isdisjoint(fields):
        for name, holds in RESERVED_FIELDS.items():
            if name in fields:
                raise ReservedFieldError(f"{name!r} is reserved for {holds}, not data")
    sets: List[bytes] = []
    deletes: List[bytes] = []
    for key, value in fields.items():
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"job data key {key!r} must be a str, not {type(key).__name__}")
        field = wire.utf8(key, "job data key {key!r}", key)
        if value is None:
            deletes.append(field)
        else:
            sets.append(field)
            sets.append(data_value(key, value))
    return sets, deletes


def data_value(key: str, value: object) -> bytes:
    """Encode one data value: str, bytes, int or finite float; anything else names the key."""
    kind = type(value)
    if kind is str:  # the common cases by exact type, then subclasses by isinstance
        try:
            return value.encode()  # type: ignore[attr-defined,no-any-return]
        except UnicodeEncodeError:
            pass  # the error comes from the general path below
    elif kind is int:
        try:
            return b"%d" % value  # type: ignore[str-format]
        except ValueError:  # past Python's limit of digits: named below
            pass
    elif kind is bytes:
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        return wire.utf8(value, "job data {key!r}", key)
    if isinstance(value, bytes):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(int(value)).encode()
        except ValueError:  # Python refuses to write it in decimal (CVE-2020-10735)
            raise ValueError(
                f"job data {key!r} is an int of about {digits(value)} digits, more than "
                f"Python writes as text ({_digit_limit()} digits at most here: "
                "sys.set_int_max_str_digits)"
            ) from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"job data {key!r} must be a finite float, not {value!r}")
        return repr(value).encode()
    raise TypeError(
        f"job data {key!r} must be str, bytes, int, float or None (to remove it), "
        f"not {type(value).__name__}"
    )


def _digit_limit() -> int:
    """The most digits this Python writes an int with (``sys.get_int_max_str_digits``)."""
    return int(getattr(sys, "get_int_max_str_digits", lambda: 0)())


def mapping(value: object) -> Mapping[str, object]:
    """A ``data`` argument: a mapping (None: no data)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"data must be a mapping, not {type(value).__name__}")
    return value


# -- rules and restored jobs -----------------------------------------------------------------


def rule(value: object) -> Union[Every, Cron]:
    """schedule_recurring's ``rule``: a rache.Every or a rache.Cron (checked when built)."""
    if not isinstance(value, (Every, Cron)):
        raise TypeError(f"rule must be a rache.Every or a rache.Cron, not {type(value).__name__}")
    return value


def exact_due(value: object) -> bytes:
    """A due time as the very double it is (an export's), as the score's text."""
    due_at(value)  # the checks and errors of any due time
    return b"%d" % value if isinstance(value, int) else b"%.17g" % float(value)  # type: ignore[arg-type]


def run_token(value: object) -> bytes:
    """A run token as exported (16 hex digits) as the 8 bytes stored."""
    if not isinstance(value, str):
        raise TypeError(f"run must be a str of 16 hex digits or None, not {type(value).__name__}")
    try:
        token = bytes.fromhex(value)
    except ValueError:
        token = b""
    if len(token) != 8:
        raise ValueError(f"run must be 16 hex digits (as export_jobs gives it), not {value!r}")
    return token


def stored_rule(value: object) -> bytes:
    """A rule as exported (as stored), checked as a new rule is (``rules.checked``)."""
    if not isinstance(value, str):
        raise TypeError(
            f"rule must be a str (as export_jobs gives it) or None, not {type(value).__name__}"
        )
    raw = wire.utf8(value, "rule")
    try:
        checked_rule(raw)
    except UnicodeDecodeError:
        raise ValueError(f"rule {value!r} is not a rule as export_jobs gives it") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rule {value!r} is not a rule as export_jobs gives it: {exc}") from None
    return raw


def history(value: object) -> int:
    """``Scheduler(history=...)``: runs kept per job, an int from 0 (none) to MAX_HISTORY."""
    return count(value, "history", 0, MAX_HISTORY)


def run_timeout(value: object) -> int:
    """``Scheduler(run_timeout=...)``: a plain job's run timeout (Seconds), as milliseconds."""
    timeout = positive_seconds(value, "run_timeout")
    return max(1, round(timeout * 1000))


def call_record_ttl(value: object) -> int:
    """``Scheduler(call_record_ttl=...)``: how long a call record lives (Seconds), as ms.

    From ``MIN_CALL_RECORD_TTL`` to ``MAX_CALL_RECORD_TTL`` seconds.
    """
    number = seconds(value, "call_record_ttl")
    if not finite(number) or not MIN_CALL_RECORD_TTL <= number <= MAX_CALL_RECORD_TTL:
        raise ValueError(
            f"call_record_ttl must be from {MIN_CALL_RECORD_TTL} to {MAX_CALL_RECORD_TTL} "
            f"seconds, not {shown(value)}"
        )
    return round(number * 1000)


def history_ttl(value: object) -> int:
    """``Scheduler(history_ttl=...)``: how long runs of jobs gone stay (Seconds), in ms."""
    ttl = positive_seconds(value, "history_ttl")
    return max(1, round(ttl * 1000))


def poller_name(value: object) -> bytes:
    """``Scheduler(name=...)``: a poller's name as stored in its runs (UTF-8, no ``|``)."""
    if not isinstance(value, str):
        raise TypeError(f"name must be a str, not {type(value).__name__}")
    raw = wire.utf8(value, "name")
    if not raw or len(raw) > MAX_POLLER_NAME or wire.RUN_SEPARATOR in raw:
        raise ValueError(
            f"name must be 1 to {MAX_POLLER_NAME} bytes of UTF-8 without '|' (it is stored "
            f"in each run's record), not {value!r}"
        )
    return raw


_host: Optional[bytes] = None


def default_poller_name() -> bytes:
    """``host:pid``, the pid read now (a forked process has its own), the host cut to fit."""
    global _host
    if _host is None:
        name = socket.gethostname().encode("utf-8", "replace")
        _host = name.replace(wire.RUN_SEPARATOR, b"_") or b"localhost"
    pid = f":{os.getpid()}".encode()
    return _host[: MAX_POLLER_NAME - len(pid)] + pid


def error_text(value: object) -> bytes:
    """``finish_run``'s ``error``: None (b""), text, or an exception as ``TypeName: message``.

    Cut to MAX_ERROR_BYTES of UTF-8, on a character boundary.
    """
    if value is None:
        return b""
    if isinstance(value, BaseException):
        value = f"{type(value).__name__}: {value}"
    if not isinstance(value, str):
        raise TypeError(f"error must be None, a str or an exception, not {type(value).__name__}")
    raw = value.encode("utf-8", "replace")
    if len(raw) > MAX_ERROR_BYTES:
        raw = raw[:MAX_ERROR_BYTES].decode("utf-8", "ignore").encode()
    return raw
