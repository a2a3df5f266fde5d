"""Bad input, for every public entry point: a clear error naming the argument, nothing written.

(schedule_job's and pending_jobs' own matrices are in test_schedule.py and test_pending.py,
schedule_jobs' in test_bulk.py.)
"""

from __future__ import annotations

import re
import sys
from typing import Any, Callable, Mapping

import pytest
import redis

import rache
from rache import Cron, Every, ReservedFieldError, Scheduler
from tests.support import harness
from tests.support.helpers import snapshot

BAD_IDS = [
    (None, TypeError, "job_id must be a str, not NoneType"),
    (42, TypeError, "job_id must be a str, not int"),
    (b"a", TypeError, "job_id must be a str, not bytes"),
    (["a"], TypeError, "job_id must be a str, not list"),
    ("", ValueError, "job_id must not be empty"),
    ("a\udc00", ValueError, "job_id cannot be encoded as UTF-8"),
]

OPERATIONS: dict[str, Callable[[Scheduler, Any], Any]] = {
    "schedule_job": lambda s, job_id: s.schedule_job(job_id, 10, n=1),
    "delete_job": lambda s, job_id: s.delete_job(job_id),
    "job_details": lambda s, job_id: s.job_details(job_id),
    "schedule_jobs": lambda s, job_id: s.schedule_jobs([(job_id, 10)]),
}


@pytest.fixture
def populated(sched: Scheduler, raw: Any) -> dict[bytes, Any]:
    sched.schedule_job("a", 10, n=1)
    sched.schedule_job("b", -10, s="x")
    return snapshot(raw)


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize(("job_id", "error", "match"), BAD_IDS)
def test_bad_job_ids(
    sched: Scheduler,
    raw: Any,
    populated: dict[bytes, Any],
    operation: str,
    job_id: Any,
    error: type,
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        OPERATIONS[operation](sched, job_id)
    assert snapshot(raw) == populated


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ({"a": 1}, TypeError, "job data 'v' must be str, bytes, int, float or None"),
        ([1, 2], TypeError, "job data 'v' must be str, bytes, int, float or None"),
        ((1,), TypeError, "job data 'v' must be"),
        ({"nested": {"deeper": 1}}, TypeError, "job data 'v' must be"),
        (False, TypeError, "not bool"),
        (object(), TypeError, "not object"),
        (float("inf"), ValueError, "job data 'v' must be a finite float"),
    ],
)
def test_bad_data_values(
    sched: Any, raw: Any, populated: dict[bytes, Any], value: Any, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        sched.schedule_job("c", 10, v=value)
    assert snapshot(raw) == populated


#: Every write that takes job data as a mapping (schedule_job's keywords are always str).
DATA_WRITES: dict[str, Callable[[Any, Mapping[Any, Any]], Any]] = {
    "schedule_jobs": lambda s, data: s.schedule_jobs([("fine", 1), ("c", 10, data)]),
    "schedule_recurring": lambda s, data: s.schedule_recurring("c", Every(5), data=data),
}


@pytest.mark.parametrize("operation", list(DATA_WRITES))
def test_a_data_key_that_is_not_a_str_is_a_type_error_naming_it(
    sched: Any, raw: Any, populated: dict[bytes, Any], operation: str
) -> None:
    where = r"jobs\[1\]: " if operation == "schedule_jobs" else ""
    for key in (1, b"k", None, 1.5, ("t",)):
        name = re.escape(f"job data key {key!r} must be a str, not {type(key).__name__}")
        with pytest.raises(TypeError, match=f"^{where}{name}$"):
            DATA_WRITES[operation](sched, {"ok": 1, key: "x"})
    assert snapshot(raw) == populated


#: Every write that takes job data, each way it takes it.
EVERY_DATA_WRITE: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "schedule_job": lambda s, data: s.schedule_job("c", 10, **data),
    "schedule_job_at": lambda s, data: s.schedule_job_at("c", 1700000000, data=data),
    **DATA_WRITES,
    "schedule_jobs at": lambda s, data: s.schedule_jobs([("c", 1700000000, data)], at=True),
}


@pytest.mark.parametrize("operation", list(EVERY_DATA_WRITE))
def test_an_int_python_will_not_write_as_text_is_a_value_error_naming_its_key(
    sched: Any, raw: Any, populated: dict[bytes, Any], operation: str
) -> None:
    """Python's own 'Exceeds the limit ... for integer string conversion' names no key."""
    if not getattr(sys, "get_int_max_str_digits", lambda: 0)():
        pytest.skip("this Python writes ints of any length")
    where = r"jobs\[\d\]: " if operation.startswith("schedule_jobs") else ""
    for value in (10**5000, -(10**5000)):
        with pytest.raises(ValueError, match=f"^{where}job data 'big' is an int of about 5001"):
            EVERY_DATA_WRITE[operation](sched, {"ok": 1, "big": value})
    assert snapshot(raw) == populated


HUGE = 10**5000
#: Each entry point that takes a number, given an int Python will not write as text.
HUGE_NUMBERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "schedule_job": (lambda s: s.schedule_job("c", HUGE, n=1), "schedule_in must be within"),
    "schedule_job_at": (lambda s: s.schedule_job_at("c", -HUGE), "at must be a finite Unix"),
    "schedule_jobs": (lambda s: s.schedule_jobs([("c", HUGE)]), r"jobs\[0\]: schedule_in"),
    "schedule_jobs at": (
        lambda s: s.schedule_jobs([("c", HUGE)], at=True),
        r"jobs\[0\]: due time must be",
    ),
    "schedule_recurring": (
        lambda s: s.schedule_recurring("c", Every(5), start=HUGE),
        "start must be a finite Unix timestamp",
    ),
    "stats": (lambda s: s.stats(interval=HUGE), "interval must be a positive number"),
}


@pytest.mark.parametrize("operation", list(HUGE_NUMBERS))
def test_an_int_python_will_not_write_as_text_is_an_error_naming_the_argument(
    sched: Any, raw: Any, populated: dict[bytes, Any], operation: str
) -> None:
    """Python's own 'Exceeds the limit ... for integer string conversion' named nothing."""
    if not getattr(sys, "get_int_max_str_digits", lambda: 0)():
        pytest.skip("this Python writes ints of any length")
    call, named = HUGE_NUMBERS[operation]
    with pytest.raises(ValueError, match=f"^{named}.* int of about 5001 digits$"):
        call(sched)
    assert snapshot(raw) == populated


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "posix/UTC", "right/UTC"])
def test_a_cron_zone_that_names_no_place_is_refused_naming_timezone(
    sched: Any, raw: Any, populated: dict[bytes, Any], zone: str
) -> None:
    """ZoneInfo loads each (where the host has it), but each is another clock on each host."""
    with pytest.raises(ValueError, match=f"^timezone '{zone}' is not an IANA location zone: "):
        sched.schedule_recurring("c", Cron("0 6 * * *", timezone=zone), data={"n": 1})
    assert snapshot(raw) == populated
    sched.schedule_recurring("c", Cron("0 6 * * *", timezone="Etc/UTC"), data={"n": 1})
    assert sched.job_details("c")["recurring"]["timezone"] == "Etc/UTC"


#: What job_details reports beside the data: the same error as 'id' in every write path.
RESERVED = ["id", "schedule_at", "recurring", "next_occurrences"]


@pytest.mark.parametrize("operation", ["schedule_job", "schedule_jobs", "schedule_recurring"])
def test_a_name_job_details_reports_itself_is_reserved(
    sched: Any, raw: Any, populated: dict[bytes, Any], operation: str
) -> None:
    writes: dict[str, Callable[[Any, Mapping[Any, Any]], Any]] = {
        **DATA_WRITES,
        "schedule_job": lambda s, data: s.schedule_job("c", 10, **data),
    }
    where = r"jobs\[1\]: " if operation == "schedule_jobs" else ""
    for name in RESERVED:
        for value in (5, "x", None):  # None (remove it) too: 'id' was always refused so
            with pytest.raises(ReservedFieldError, match=f"^{where}'{name}' is reserved for"):
                writes[operation](sched, {"ok": 1, name: value})
    assert snapshot(raw) == populated


@pytest.mark.parametrize("interval", [float("inf"), float("-inf"), float("nan"), 10**400, 0])
def test_stats_with_an_interval_that_is_not_finite_sends_nothing(
    sched: Any, raw: Any, populated: dict[bytes, Any], interval: Any
) -> None:
    with pytest.raises(ValueError, match="interval must be a positive number of seconds"):
        sched.stats(interval=interval)
    assert snapshot(raw) == populated


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prefix": b"rache:"}, TypeError, "prefix must be a str, not bytes"),
        ({"prefix": 1}, TypeError, "prefix must be a str, not int"),
        ({"prefix": "\udc00"}, ValueError, "prefix cannot be encoded"),
        ({"batch_size": 0}, ValueError, "batch_size must be from 1 to 10000, not 0"),
        ({"batch_size": 10_001}, ValueError, "batch_size must be from 1 to 10000"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an int, not float"),
        ({"batch_size": True}, TypeError, "batch_size must be an int, not bool"),
        ({"batch_size": 10**5000}, ValueError, "batch_size must be from 1 to 10000, not an int"),
    ],
)
def test_bad_scheduler_settings(make: Any, kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make(**kwargs)


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "localhost:6379", "redis//nohost", "mysql://u:p@h/1", ""],
)
def test_a_malformed_redis_url(
    url: str, monkeypatch: pytest.MonkeyPatch, raw: Any, populated: dict[bytes, Any]
) -> None:
    monkeypatch.setattr(rache, "_default", None)
    monkeypatch.setenv("REDIS_URL", url)
    if url == "":  # empty means unset: the default, localhost:6379, which is a valid URL
        assert rache.REDIS["port"] == 6379
        return
    for call in (lambda: rache.schedule_job("a", 1), lambda: list(rache.pending_jobs())):
        with pytest.raises(rache.ConfigurationError, match="REDIS_URL is not a Redis URL"):
            call()
    with pytest.raises(rache.ConfigurationError):
        rache.REDIS  # noqa: B018
    assert snapshot(raw) == populated


def test_a_dead_server_is_an_error_not_an_empty_result(server: harness.RedisServer) -> None:
    if server.spec.kind != "binary":
        pytest.skip("needs a redis-server binary this run starts")
    srv = harness.start(server.spec)
    client = srv.client(socket_connect_timeout=1)
    sched = Scheduler(client)
    sched.schedule_job("a", -1)
    srv.stop()
    for call in (
        lambda: list(sched.pending_jobs()),
        lambda: list(sched.scheduled_jobs()),
        lambda: sched.job_details("a"),
    ):
        with pytest.raises(redis.ConnectionError):
            call()
    client.close()
