"""encode: each operation's script call, exactly, and the argument checks before it."""

from __future__ import annotations

import enum
import math
import re
import sys
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from rache import Cron, Every, arguments, constants, durations, encode, recurrence, wire
from rache.constants import BULK_MAX_ARGS, MAX_OFFSET_SECONDS
from rache.errors import ConfigurationError, ReservedFieldError
from rache.keys import Layout, has_hash_tag, shard_of, shard_prefixes
from rache.rules import Placed
from rache.scripts import (
    DELETE,
    DETAILS,
    LAYOUT,
    LAYOUT_CHECK,
    SCHEDULE,
    SCHEDULE_BULK,
    SCHEDULE_RECURRING,
    SCRIPTS,
    STATS,
    Call,
)

PLAIN = Layout("rache:")
#: Three shards: 'rache:{0-0}:', 'rache:{1-1}:', 'rache:{2-0}:'.
SHARDED = Layout("rache:", 3)


# -- keys and shards -------------------------------------------------------------------------


def test_shard_prefixes_are_stable() -> None:
    # Stored keys: a change here strands every sharded schedule already written.
    assert shard_prefixes("rache:", 1) == ["rache:"]
    assert shard_prefixes("rache:", 2) == ["rache:{0-0}:", "rache:{1-0}:"]
    assert shard_prefixes("rache:", 3) == ["rache:{0-0}:", "rache:{1-1}:", "rache:{2-0}:"]


@pytest.mark.parametrize("count", [2, 3, 5, 16])
def test_each_shard_tag_hashes_into_its_own_slot_range(count: int) -> None:
    for i, prefix in enumerate(shard_prefixes("app:", count)):
        tag = prefix[len("app:{") : prefix.index("}")]
        low = i * REDIS_CLUSTER_HASH_SLOTS // count
        high = (i + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        assert low <= key_slot(tag.encode()) < high


@pytest.mark.parametrize(
    ("prefix", "tagged"),
    [("rache:", False), ("{rache}:", True), ("a{}b", False), ("a{b", False), ("x{y}z{", True)],
)
def test_has_hash_tag(prefix: str, tagged: bool) -> None:
    assert has_hash_tag(prefix) is tagged


def test_a_sharded_prefix_with_a_hash_tag_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="hash tag"):
        Layout("{rache}:", 2)


@pytest.mark.parametrize("prefix", ["x{}y:", "{}:", "ra}{che:", "a{b:", "ab}:", "{"])
def test_a_sharded_prefix_with_any_brace_is_refused(prefix: str) -> None:
    assert not has_hash_tag(prefix)  # no tag of its own, yet each shard's tag would break
    with pytest.raises(ConfigurationError, match="holds a brace"):
        Layout(prefix, 2)
    assert Layout(prefix).shards[0].prefix == prefix  # unsharded, a prefix like any


@pytest.mark.parametrize("shards", [0, 257, True, 2.0, "2"])
def test_a_bad_shard_count_is_refused(shards: Any) -> None:
    with pytest.raises(ValueError, match="shards"):
        Layout("rache:", shards)


@pytest.mark.parametrize(("job_id", "shard"), [("a", 0), ("b", 2), ("f", 2), ("g", 1)])
def test_a_job_shard_is_crc32_of_its_id(job_id: str, shard: int) -> None:
    raw = job_id.encode()
    assert shard_of(raw, 3) == zlib.crc32(raw) % 3 == shard
    assert SHARDED.index_of(raw) == shard
    assert SHARDED.of(raw) is SHARDED.shards[shard]


# -- the calls -------------------------------------------------------------------------------


def test_schedule_call() -> None:
    call = encode.schedule(PLAIN, "a", 10, {"n": 1})
    assert call == Call(
        SCHEDULE,
        [b"rache:queue", b"rache:job:a", b"rache:runs", b"rache:call:"],
        [b"rache:wakeup", b"a", 10000, b"s", 1, b"n", b"1"],
    )


class Colour(enum.IntEnum):
    RED = 3


class Name(str):
    pass


@pytest.mark.parametrize(
    ("schedule_in", "fields", "args"),
    [
        (1.5, {}, [1500, b"ms", 0]),
        (-5, {}, [-5000, b"s", 0]),
        (timedelta(minutes=1), {}, [60000, b"s", 0]),
        (0.25, {"x": None}, [250, b"ms", 0, b"x"]),
        (
            2,
            {"x": None, "y": b"\xff", "z": 1.25, "w": "\u00e9", "v": -7},
            [2000, b"s", 4, b"y", b"\xff", b"z", b"1.25", b"w", b"\xc3\xa9", b"v", b"-7", b"x"],
        ),
        (
            1,
            {"c": Colour.RED, "s": Name("t"), "f": 0.1},
            [1000, b"s", 3, b"c", b"3", b"s", b"t", b"f", b"0.1"],
        ),
    ],
)
def test_schedule_call_args(schedule_in: Any, fields: Any, args: List[Any]) -> None:
    call = encode.schedule(PLAIN, "a", schedule_in, fields)
    named = [b"rache:queue", b"rache:job:a", b"rache:runs", b"rache:call:"]
    assert call == Call(SCHEDULE, named, [b"rache:wakeup", b"a", *args])


@pytest.mark.parametrize(
    ("job_id", "prefix"), [("a", "rache:{0-0}:"), ("b", "rache:{2-0}:"), ("g", "rache:{1-1}:")]
)
def test_schedule_call_on_a_sharded_layout_names_the_job_shard(job_id: str, prefix: str) -> None:
    raw, p = job_id.encode(), prefix.encode()
    call = encode.schedule(SHARDED, job_id, 1, {})
    named = [p + b"queue", p + b"job:" + raw, p + b"runs", p + b"call:"]
    assert call == Call(SCHEDULE, named, [p + b"wakeup", raw, 1000, b"s", 0])


@pytest.mark.parametrize(
    ("job_id", "fields", "error", "match"),
    [
        (5, {}, TypeError, "job_id must be a str, not int"),
        (b"a", {}, TypeError, "job_id must be a str, not bytes"),
        ("", {}, ValueError, "job_id must not be empty"),
        ("a\ud800", {}, ValueError, "job_id cannot be encoded as UTF-8"),
        ("a", {"id": 1}, ReservedFieldError, "'id' is reserved"),
        ("a", {"schedule_at": 5}, ReservedFieldError, "^'schedule_at' is reserved for the due"),
        ("a", {"recurring": None}, ReservedFieldError, "^'recurring' is reserved for the rule"),
        ("a", {"next_occurrences": "x"}, ReservedFieldError, "^'next_occurrences' is reserved"),
        ("a", {1: "x"}, TypeError, "^job data key 1 must be a str, not int$"),
        ("a", {b"k": "x"}, TypeError, "^job data key b'k' must be a str, not bytes$"),
        ("a", {None: "x"}, TypeError, "^job data key None must be a str, not NoneType$"),
        ("a", {"k": True}, TypeError, "job data 'k' must be str, bytes, int, float"),
        ("a", {"k": [1]}, TypeError, "job data 'k'"),
        ("a", {"k": math.nan}, ValueError, "job data 'k' must be a finite float"),
        ("a", {"k": "\ud800"}, ValueError, "job data 'k' cannot be encoded"),
        ("a", {"\ud800": 1}, ValueError, "job data key"),
    ],
)
def test_schedule_refuses_bad_ids_and_data(
    job_id: Any, fields: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        encode.schedule(PLAIN, job_id, 1, fields)


class BigInt(int):
    """An int subclass: data_value's isinstance path, beside the exact-type one."""


@pytest.mark.skipif(
    not getattr(sys, "get_int_max_str_digits", lambda: 0)(),
    reason="this Python writes ints of any length",
)
@pytest.mark.parametrize(
    "value", [10**5000, -(10**5000), BigInt(10**5000)], ids=["int", "negative", "subclass"]
)
def test_an_int_too_long_for_python_to_write_is_a_value_error_naming_its_key(value: int) -> None:
    """Python refuses str() of an int past its digit limit; the error names the data key."""
    limit = re.escape(f"{sys.get_int_max_str_digits()} digits at most")
    named = (
        f"^job data 'k' is an int of about 5001 digits, more than Python writes as text \\({limit}"
    )
    builds: List[Callable[[], Any]] = [
        lambda: encode.schedule(PLAIN, "a", 1, {"k": value}),
        lambda: encode.schedule_at(PLAIN, "a", 1700000000, {"k": value}),
        lambda: encode.schedule_recurring(PLAIN, "a", Every(60), None, {"k": value}),
    ]
    for build in builds:
        with pytest.raises(ValueError, match=named):
            build()
    with pytest.raises(ValueError, match=r"^jobs\[1\]: job data 'k' is an int of about 5001"):
        list(encode.schedule_bulk(PLAIN, [("a", 1), ("b", 1, {"k": value})], False, 10))
    with pytest.raises(ValueError, match=r"^jobs\[0\]: job data 'k' is an int of about 5001"):
        encode.restored_job(0, ("a", 1700000000, {"k": value}, None, None))
    # The largest int Python writes is written as it is.
    most = 10 ** (sys.get_int_max_str_digits() - 1)
    assert encode.schedule(PLAIN, "a", 1, {"k": most}).args[-1] == str(most).encode()


HUGE = 10**5000
#: Each argument that takes a number, given an int Python will not write as text: the error
#: names the argument and says how long the int is (it once raised Python's own error).
HUGE_ARGUMENTS: List[Tuple[Callable[[], Any], str]] = [
    (lambda: encode.schedule(PLAIN, "a", HUGE, {}), "^schedule_in must be within"),
    (lambda: encode.schedule(PLAIN, "a", -HUGE, {}), "^schedule_in must be within .*a negative"),
    (lambda: encode.schedule_at(PLAIN, "a", HUGE, {}), "^at must be a finite Unix timestamp"),
    (lambda: encode.schedule_recurring(PLAIN, "a", Every(1), HUGE, {}), "^start must be"),
    (lambda: Every(HUGE), "^every must be more than 0 seconds"),
    (lambda: Every(1, grace=HUGE), "^grace must be 0 or more seconds"),
    (lambda: Cron("* * * * *", jitter=-HUGE), "^jitter must be 0 or more seconds"),
    (lambda: list(encode.schedule_bulk(PLAIN, [("a", HUGE)], False, 9)), r"^jobs\[0\]: sched"),
    (lambda: list(encode.schedule_bulk(PLAIN, [("a", HUGE)], True, 9)), r"^jobs\[0\]: due t"),
    (lambda: encode.restored_job(0, ("a", HUGE, {}, None, None)), r"^jobs\[0\]: due time"),
    (lambda: encode.stats(PLAIN, 1, HUGE), "^interval must be a positive number"),
    (lambda: encode.stats(PLAIN, HUGE, 60), "^intervals must be from 0 to 1440"),
    (lambda: arguments.batch_size(HUGE), "^batch_size must be from 1 to"),
    (lambda: arguments.limit(-HUGE), "^limit must be 0 or more"),
    (lambda: arguments.positive_seconds(HUGE, "poll"), "^poll must be a finite number"),
]


@pytest.mark.skipif(
    not getattr(sys, "get_int_max_str_digits", lambda: 0)(),
    reason="this Python writes ints of any length",
)
@pytest.mark.parametrize(("build", "match"), HUGE_ARGUMENTS)
def test_an_int_too_long_to_write_names_the_argument(build: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as refused:
        build()
    assert str(refused.value).endswith("int of about 5001 digits")


def test_shown_is_repr_but_for_ints_too_long_to_write() -> None:
    assert durations.shown(1.5) == "1.5" and durations.shown("x") == "'x'"
    assert durations.shown(-(10**40)) == repr(-(10**40))
    if getattr(sys, "get_int_max_str_digits", lambda: 0)():
        assert durations.shown(-(10**5000)) == "a negative int of about 5001 digits"


def test_schedule_recurring_every_call() -> None:
    declaration = encode.schedule_recurring(
        PLAIN, "a", Every(60, jitter=10), 1700000000, {"k": "v", "d": None}
    )
    shift = zlib.crc32(b"a") % 10000
    assert declaration.clock is None  # an every-N rule stands at its start
    assert declaration.call() == Call(
        SCHEDULE_RECURRING,
        [b"rache:queue", b"rache:job:a", b"rache:recurring", b"rache:runs", b"rache:call:"],
        [b"rache:wakeup", b"a", b"e", 1700000000000, b"60000|c|60000", shift, 1, b"k", b"v", b"d"],
    )
    # Without a start, the script reads its clock: no round trip before.
    declaration = encode.schedule_recurring(PLAIN, "a", Every(60), None, {})
    assert declaration.clock is None and declaration.call().args[3] == b""


def test_schedule_recurring_cron_call_stands_at_the_first_occurrence_from_its_start() -> None:
    start = datetime(2024, 1, 1, 0, 20, tzinfo=timezone.utc)
    rule = Cron("0 * * * *", timezone="Europe/Paris", misfire="skip", grace=1.5)
    declaration = encode.schedule_recurring(SHARDED, "b", rule, start, None)
    p = b"rache:{2-0}:"
    assert declaration.clock is None  # from the start given: nothing to read first
    first = 1704070800000  # 01:00 UTC, the first whole hour at or after 00:20
    assert declaration.call() == Call(
        SCHEDULE_RECURRING,
        [p + b"queue", p + b"job:b", p + b"recurring", p + b"runs", p + b"call:"],
        [p + b"wakeup", b"b", b"c", 1704068400000, b"s|1500|0|Europe/Paris|0 * * * *", first, 0],
    )


def test_schedule_recurring_cron_call_without_a_start_reads_the_server_clock_first() -> None:
    rule = Cron("30 2 * * *", timezone="Europe/Paris")
    declaration = encode.schedule_recurring(PLAIN, "r", rule, None, {"n": 1})
    # stats-3.lua without intervals: read-only, on the job's shard (its master's clock).
    assert declaration.clock == Call(
        STATS, [b"rache:queue", b"rache:aside", b"rache:recurring"], [0, b"60.0"]
    )
    now = datetime(2024, 7, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)  # 14:00 in Paris
    call = declaration.call([repr(now.timestamp()).encode(), 0, 0, None, None])
    # '' still says "no start": the script keeps the rule as it runs if it is the same.
    assert call.args[3] == b""
    assert call.args[5] == recurrence.to_ms(datetime(2024, 7, 2, 0, 30, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="needs the reply of the clock call"):
        declaration.call()


@pytest.mark.parametrize("rule", [None, 60, "* * * * *", {"every": 60}, Placed(Every(60))])
def test_schedule_recurring_refuses_a_rule_that_is_no_rule_value(rule: Any) -> None:
    with pytest.raises(TypeError, match=r"^rule must be a rache\.Every or a rache\.Cron, not "):
        encode.schedule_recurring(PLAIN, "a", rule, None, None)


@pytest.mark.parametrize(
    ("start", "error", "match"),
    [
        (datetime(2024, 1, 1), ValueError, "aware datetime"),
        ("now", TypeError, "start must be a Unix timestamp or a datetime, not str"),
        (True, TypeError, "not bool"),
        (-1, ValueError, "after 1970"),
        (math.inf, ValueError, "finite"),
        (constants.MAX_MS / 1000, ValueError, "start"),
    ],
)
def test_schedule_recurring_refuses_a_bad_start(
    start: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        encode.schedule_recurring(PLAIN, "a", Every(60), start, None)


def test_schedule_recurring_refuses_data_that_is_no_mapping() -> None:
    with pytest.raises(TypeError, match="data must be a mapping, not list"):
        encode.schedule_recurring(PLAIN, "a", Every(60), None, [])


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({1: "x"}, TypeError, "^job data key 1 must be a str, not int$"),
        ({b"k": 1}, TypeError, "^job data key b'k' must be a str, not bytes$"),
        ({"schedule_at": 1}, ReservedFieldError, "^'schedule_at' is reserved"),
        ({"next_occurrences": None}, ReservedFieldError, "^'next_occurrences' is reserved"),
    ],
)
def test_schedule_recurring_refuses_bad_data_keys(
    fields: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        encode.schedule_recurring(PLAIN, "a", Every(60), None, fields)


@pytest.mark.parametrize(
    ("script", "name", "more"),
    [(DELETE, "delete", [b"runs", b"lastrun", b"history:a", b"call:"]), (DETAILS, "details", [])],
)
def test_one_job_calls(script: Any, name: str, more: List[bytes]) -> None:
    assert SCRIPTS[name] is script
    build = getattr(encode, name)  # encode.delete, encode.details
    assert build(PLAIN, "a") == Call(
        script,
        [b"rache:queue", b"rache:job:a", b"rache:recurring", *(b"rache:" + k for k in more)],
        [b"a"],
    )
    p = b"rache:{1-1}:"
    more = [k.replace(b"history:a", b"history:g") for k in more]
    assert build(SHARDED, "g") == Call(
        script, [p + b"queue", p + b"job:g", p + b"recurring", *(p + k for k in more)], [b"g"]
    )


def test_stats_calls_one_per_shard() -> None:
    assert encode.stats(PLAIN, 60, 60) == [
        Call(STATS, [b"rache:queue", b"rache:aside", b"rache:recurring"], [60, b"60.0"])
    ]
    assert encode.stats(SHARDED, 0, timedelta(milliseconds=1500)) == [
        Call(
            STATS,
            [p.encode() + b"queue", p.encode() + b"aside", p.encode() + b"recurring"],
            [0, b"1.5"],
        )
        for p in ("rache:{0-0}:", "rache:{1-1}:", "rache:{2-0}:")
    ]


@pytest.mark.parametrize(
    ("intervals", "error"),
    [(-1, ValueError), (1441, ValueError), (True, TypeError), (1.0, TypeError)],
)
def test_stats_refuses_bad_interval_counts(intervals: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="intervals"):
        encode.stats(PLAIN, intervals, 60)


@pytest.mark.parametrize(
    ("cluster", "unsharded"), [(False, b"rache:queue"), (True, b"rache:layout")]
)
def test_layout_check_call(cluster: bool, unsharded: bytes) -> None:
    # On a cluster the unsharded queue lives in another slot: the layout key stands in for it.
    assert encode.layout_check(SHARDED, cluster) == Call(LAYOUT, [b"rache:layout", unsharded], [3])


def test_an_unsharded_layout_check_reads_only() -> None:
    # On one server: read the count recorded, write nothing. On a cluster the prefix has a
    # hash tag, and no prefix with a brace can be sharded: nothing to check.
    assert encode.layout_check(PLAIN, False) == Call(LAYOUT_CHECK, [b"rache:layout"], [])
    assert "HSET" not in LAYOUT_CHECK.source and "HMGET" in LAYOUT_CHECK.source
    assert encode.layout_check(PLAIN, True) is None


# -- bulk ------------------------------------------------------------------------------------


def _bulk(raw_id: bytes, *rest: Any) -> List[Any]:
    return [raw_id, *(rest or (10000, b"s", 0, 0))]


@pytest.mark.parametrize(
    ("job", "at", "args"),
    [
        (("a", 10), False, [b"a", 10000, b"s", 0, 0]),
        (("a", 1.5, {"k": "v", "d": None}), False, [b"a", 1500, b"ms", 1, 1, b"k", b"v", b"d"]),
        (("a", 1, None), False, [b"a", 1000, b"s", 0, 0]),
        (("a", 1700000000.5), True, [b"a", 1700000000500, b"at", 0, 0]),
        (("a", 1700000000, {"n": 2}), True, [b"a", 1700000000000, b"at", 1, 0, b"n", b"2"]),
    ],
)
def test_bulk_job_args(job: Tuple[Any, ...], at: bool, args: List[Any]) -> None:
    assert encode.bulk_job(0, job, at) == args


def test_bulk_calls_of_batch_size_on_one_shard() -> None:
    jobs = [(name, 10) for name in "abcde"]
    bulk = encode.schedule_bulk(PLAIN, iter(jobs), False, 2)
    head = [b"rache:job:", b"rache:wakeup"]
    named = [b"rache:queue", b"rache:runs", b"rache:call:"]
    assert list(bulk) == [
        Call(SCHEDULE_BULK, named, [*head, *_bulk(b"a"), *_bulk(b"b")]),
        Call(SCHEDULE_BULK, named, [*head, *_bulk(b"c"), *_bulk(b"d")]),
        Call(SCHEDULE_BULK, named, [*head, *_bulk(b"e")]),
    ]
    assert bulk.count == 5


def test_a_bulk_call_is_cut_short_by_its_arguments() -> None:
    """Jobs with much data make shorter calls: no call holds Redis for its data's sake."""
    fields = {f"f{i}": "v" for i in range(20)}  # 5 + 40 arguments a job
    jobs = [(f"job-{i}", 10, fields) for i in range(200)]
    sizes = [(len(call.args) - 2) // 45 for call in encode.schedule_bulk(PLAIN, jobs, False, 500)]
    per_call = -(-BULK_MAX_ARGS // 45)  # the job that reaches the bound ends its call
    assert sizes == [per_call] * (200 // per_call) + ([200 % per_call] if 200 % per_call else [])
    without_data = [(f"job-{i}", 10) for i in range(500)]
    assert len(list(encode.schedule_bulk(PLAIN, without_data, False, 500))) == 2  # 5 a job


def test_bulk_calls_per_shard_each_made_once_full() -> None:
    # shard 0: a c d e h; shard 1: g; shard 2: b f (CRC-32 of the id, modulo 3). A shard's
    # call is made once it holds 2 jobs, the rest at the end: a shard's jobs in order.
    bulk = encode.schedule_bulk(SHARDED, [(name, 10) for name in "abcdefgh"], False, 2)

    def call(prefix: str, ids: str) -> Call:
        p = prefix.encode()
        args: List[Any] = [p + b"job:", p + b"wakeup"]
        for name in ids:
            args += _bulk(name.encode())
        return Call(SCHEDULE_BULK, [p + b"queue", p + b"runs", p + b"call:"], args)

    assert list(bulk) == [
        call("rache:{0-0}:", "ac"),
        call("rache:{0-0}:", "de"),
        call("rache:{2-0}:", "bf"),
        call("rache:{0-0}:", "h"),
        call("rache:{1-1}:", "g"),
    ]
    assert bulk.count == 8


def test_bulk_of_nothing_makes_no_call() -> None:
    bulk = encode.schedule_bulk(SHARDED, [], False, 10)
    assert list(bulk) == [] and bulk.count == 0
    assert list(encode.schedule_bulk(PLAIN, iter([]), False, 10)) == []


BAD_BULK_JOBS = [
    (["z", 1], False, TypeError, r"jobs\[3\] must be a \(job_id, schedule_in\) or .* not list"),
    (("z",), False, TypeError, r"jobs\[3\] must be a \(job_id, schedule_in\)"),
    (("z", 1, {}, 4), False, TypeError, r"jobs\[3\] must be"),
    (("z", 1), True, None, ""),
    (("z", "soon"), False, TypeError, r"jobs\[3\]: schedule_in must be a number"),
    (("z", "soon"), True, TypeError, r"jobs\[3\]: due time must be a Unix timestamp"),
    (("z", math.nan), False, ValueError, r"jobs\[3\]: schedule_in must be a finite"),
    (("", 1), False, ValueError, r"jobs\[3\]: job_id must not be empty"),
    ((5, 1), False, TypeError, r"jobs\[3\]: job_id must be a str"),
    (("z", 1, 5), False, TypeError, r"jobs\[3\]: data must be a mapping"),
    (("z", 1, {"id": 1}), False, ReservedFieldError, r"jobs\[3\]: 'id' is reserved"),
    (("z", 1, {"recurring": 1}), True, ReservedFieldError, r"jobs\[3\]: 'recurring' is"),
    (("z", 1, {3: 1}), False, TypeError, r"jobs\[3\]: job data key 3 must be a str"),
    (("z", 1, {None: 1}), True, TypeError, r"jobs\[3\]: job data key None must be"),
    (("z", 1, {"k": object()}), False, TypeError, r"jobs\[3\]: job data 'k'"),
]


@pytest.mark.parametrize(("bad", "at", "error", "match"), BAD_BULK_JOBS)
@pytest.mark.parametrize("kind", [list, tuple])
def test_one_bad_job_of_a_list_raises_before_any_call(
    bad: Any, at: bool, error: Any, match: str, kind: Any
) -> None:
    # 2,000 good jobs around it, over three shards and batches of 10: no call comes back,
    # for a list is checked whole when the calls are asked for.
    jobs = kind([(f"j{i}", 1) for i in range(3)] + [bad] + [(f"k{i}", 1) for i in range(2000)])
    if error is None:  # the control: without the bad job the same input makes calls
        bulk = encode.schedule_bulk(SHARDED, jobs, at, 10)
        assert sum((len(c.args) - 2) // 5 for c in bulk) == 2004 and bulk.count == 2004
        return
    with pytest.raises(error, match=match):
        encode.schedule_bulk(SHARDED, jobs, at, 10)


@pytest.mark.parametrize(("bad", "at", "error", "match"), BAD_BULK_JOBS)
def test_one_bad_job_of_a_stream_raises_after_the_calls_before_it(
    bad: Any, at: bool, error: Any, match: str
) -> None:
    # A stream is checked as it goes: the calls of the full batches before the bad job
    # come out (the caller has made them), then its error, before its own batch.
    jobs = [(f"j{i}", 1) for i in range(3)] + [bad] + [(f"k{i}", 1) for i in range(20)]
    bulk = encode.schedule_bulk(PLAIN, iter(jobs), at, 2)  # nothing is read yet
    calls = iter(bulk)
    if error is None:
        assert len(list(calls)) == 12 and bulk.count == 24
        return
    assert [call.args[2] for call in [next(calls)]] == [b"j0"]  # jobs 0 and 1
    with pytest.raises(error, match=match):
        next(calls)  # job 2 waits in the batch that job 3 would have completed
    assert bulk.count == 3


def test_a_stream_holds_one_batch_per_shard_at_a_time() -> None:
    taken = 0

    def stream() -> Iterator[Tuple[str, int]]:
        nonlocal taken
        for i in range(10_000):
            taken += 1
            yield (f"j{i}", 1)

    bulk = encode.schedule_bulk(SHARDED, stream(), False, 100)
    made = 0
    for call in bulk:
        made += (len(call.args) - 2) // 5
        # Each call is made as soon as its shard's batch is full: what was read and is in
        # no call yet is less than a batch per shard.
        assert 0 <= taken - made < 3 * 100
    assert taken == made == bulk.count == 10_000


# -- durations: TypeError for a wrong type, ValueError out of bounds, each naming it ---------

Converter = Callable[[Any], Any]


def _stats_interval(value: Any) -> Any:
    return encode.stats(PLAIN, 1, value)[0].args[1]


#: name in the message -> the converter, and values of the right type out of its bounds.
DURATIONS: List[Tuple[str, Converter, List[Any]]] = [
    (
        "schedule_in",
        lambda v: arguments.offset(v, "schedule_in"),
        [
            math.nan,
            math.inf,
            -math.inf,
            MAX_OFFSET_SECONDS + 1,
            -MAX_OFFSET_SECONDS - 0.5,
            timedelta(seconds=MAX_OFFSET_SECONDS + 1),
        ],
    ),
    (
        "every",
        lambda v: Every(v).every_ms,
        [math.nan, math.inf, -1, 0, 0.0004, 10**9 + 1, timedelta(0)],
    ),
    (
        "grace",
        lambda v: Every(1, grace=v).grace_ms,
        [math.nan, math.inf, -1, -0.001, 10**9 + 0.01, timedelta(seconds=-1)],
    ),
    (
        "jitter",
        lambda v: Cron("* * * * *", jitter=v).jitter_ms,
        [math.nan, math.inf, -1, -0.001, 10**9 + 0.01, timedelta(seconds=-1)],
    ),
    (
        "max_sleep",
        lambda v: arguments.positive_seconds(v, "max_sleep"),
        [math.nan, math.inf, -1, 0, -0.0, 1e9 + 1, timedelta(0)],
    ),
    (
        "backoff",
        lambda v: arguments.positive_seconds(v, "backoff", allow_zero=True),
        [math.nan, math.inf, -1, -1e-9, 1e9 + 1],
    ),
    ("interval", _stats_interval, [math.nan, math.inf, -1, 0, timedelta(0)]),
]
BAD_TYPES = ["10", b"10", True, False, None, Decimal("1"), [1], 1j]


@pytest.mark.parametrize(
    ("name", "convert", "value"),
    [(name, f, v) for name, f, _ in DURATIONS for v in BAD_TYPES],
    ids=lambda v: "" if callable(v) else str(v),
)
def test_a_duration_of_the_wrong_type_is_a_type_error(
    name: str, convert: Converter, value: Any
) -> None:
    with pytest.raises(TypeError) as info:
        convert(value)
    message = str(info.value)
    assert message.startswith(f"{name} must be a number of seconds or a datetime.timedelta")
    assert message.endswith(f"not {type(value).__name__}")


@pytest.mark.parametrize(
    ("name", "convert", "value"),
    [(name, f, v) for name, f, values in DURATIONS for v in values],
    ids=lambda v: "" if callable(v) else str(v),
)
def test_a_duration_out_of_bounds_is_a_value_error(
    name: str, convert: Converter, value: Any
) -> None:
    with pytest.raises(ValueError) as info:
        convert(value)
    assert not isinstance(info.value, TypeError)
    assert str(info.value).startswith(f"{name} must be")


@pytest.mark.parametrize(
    ("name", "convert"),
    [
        *[(name, f) for name, f, _ in DURATIONS],
        ("due time", arguments.due_at),
        ("start", arguments.start),
    ],
)
def test_a_huge_int_duration_is_a_value_error(name: str, convert: Converter) -> None:
    # 10**400 is a numbers.Real of the right type, out of bounds: float() overflows first.
    with pytest.raises(ValueError, match=name):
        convert(10**400)


@pytest.mark.parametrize(
    ("name", "convert"), [(name, f) for name, f, _ in DURATIONS], ids=[d[0] for d in DURATIONS]
)
@pytest.mark.parametrize(
    ("delta", "number"),
    [
        (timedelta(seconds=90), 90),
        (timedelta(seconds=90), 90.0),
        (timedelta(milliseconds=1500), 1.5),
        (timedelta(days=2, microseconds=250000), 172800.25),
        (timedelta(microseconds=1000), 0.001),
    ],
)
def test_a_timedelta_is_the_same_seconds_as_a_number(
    name: str, convert: Converter, delta: timedelta, number: float
) -> None:
    assert convert(delta) == convert(number)
    assert type(convert(delta)) is type(convert(number))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10, (10000, b"s")),
        (10.0, (10000, b"s")),
        (-0.0, (0, b"s")),
        (timedelta(seconds=-1.5), (-1500, b"ms")),
        (0.0015, (2, b"ms")),
        (MAX_OFFSET_SECONDS, (MAX_OFFSET_SECONDS * 1000, b"s")),
        (-MAX_OFFSET_SECONDS, (-MAX_OFFSET_SECONDS * 1000, b"s")),
    ],
)
def test_offset(value: Any, expected: Tuple[int, bytes]) -> None:
    assert arguments.offset(value, "schedule_in") == expected


@settings(database=None, max_examples=300)
@given(st.integers(-(10**13), 10**13))
def test_offset_of_a_timedelta_is_that_of_its_seconds(ms: int) -> None:
    whole = ms % 1000 == 0
    expected = (ms, wire.WHOLE_SECONDS if whole else wire.MILLISECONDS)
    assert arguments.offset(timedelta(milliseconds=ms), "schedule_in") == expected
    assert arguments.offset(ms / 1000, "schedule_in") == expected
    if whole:
        assert arguments.offset(ms // 1000, "schedule_in") == expected


@pytest.mark.parametrize(
    ("value", "allow_zero", "ms"),
    [
        (0, True, 0),
        (0.001, False, 1),
        (60, False, 60000),
        (1.0005, True, 1000),
        (10**9, False, 10**12),
    ],
)
def test_millis(value: Any, allow_zero: bool, ms: int) -> None:
    assert durations.millis(value, "x", allow_zero=allow_zero) == ms


@pytest.mark.parametrize(
    ("value", "expected"), [(1e9, 1e9), (0.5, 0.5), (timedelta(seconds=3), 3.0), (2, 2.0)]
)
def test_positive_seconds(value: Any, expected: float) -> None:
    result = arguments.positive_seconds(value, "x")
    assert result == expected and type(result) is float
    assert arguments.positive_seconds(0, "x", allow_zero=True) == 0.0


@pytest.mark.parametrize(
    ("value", "expected", "error"),
    [
        (None, None, None),
        (0, 0, None),
        (7, 7, None),
        (-1, None, ValueError),
        (True, None, TypeError),
        (1.0, None, TypeError),
        ("1", None, TypeError),
    ],
)
def test_limit(value: Any, expected: Any, error: Any) -> None:
    if error is None:
        assert arguments.limit(value) == expected
    else:
        with pytest.raises(error, match="limit"):
            arguments.limit(value)


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (10_001, ValueError), (True, TypeError), ("5", TypeError)]
)
def test_batch_size(value: Any, error: type[Exception]) -> None:
    assert arguments.batch_size(1) == 1 and arguments.batch_size(10_000) == 10_000
    with pytest.raises(error, match="batch_size"):
        arguments.batch_size(value)


# -- schedule_job_at, the clock, recurring ids, the layout probe -----------------------------


@pytest.mark.parametrize(
    ("at", "ms"),
    [
        (2_000_000_000, 2_000_000_000_000),
        (2_000_000_000.0015, 2_000_000_000_002),  # kept to the millisecond, rounded
        (-1.5, -1500),
        (MAX_OFFSET_SECONDS, MAX_OFFSET_SECONDS * 1000),
        (datetime(2033, 5, 18, 3, 33, 20, tzinfo=timezone.utc), 2_000_000_000_000),
        (datetime(2033, 5, 18, 4, 33, 20, tzinfo=timezone(timedelta(hours=1))), 2 * 10**12),
    ],
)
def test_moment(at: Any, ms: int) -> None:
    assert arguments.moment(at, "at") == (ms, wire.AT)


@pytest.mark.parametrize(
    ("at", "error", "match"),
    [
        (datetime(2030, 1, 1), ValueError, "when must be an aware datetime.*naive"),
        ("2030", TypeError, "when must be a Unix timestamp or an aware datetime, not str"),
        (True, TypeError, "not bool"),
        (timedelta(1), TypeError, "not timedelta"),
        (math.nan, ValueError, "when must be a finite Unix timestamp"),
        (-math.inf, ValueError, "when must be a finite Unix timestamp"),
        (MAX_OFFSET_SECONDS + 1, ValueError, "within 10,000,000,000 seconds of 1970"),
        (10**400, ValueError, "within"),
    ],
)
def test_moment_refuses(at: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        arguments.moment(at, "when")


def test_schedule_at_call() -> None:
    call = encode.schedule_at(PLAIN, "a", 2e9, {"n": 1, "gone": None})
    assert call.script is SCHEDULE
    assert call.keys == [b"rache:queue", b"rache:job:a", b"rache:runs", b"rache:call:"]
    assert call.args == [b"rache:wakeup", b"a", 2 * 10**12, wire.AT, 1, b"n", b"1", b"gone"]
    assert encode.schedule_at(PLAIN, "a", 2e9, None).args[-1] == 0  # no data
    sharded = encode.schedule_at(SHARDED, "job-1", 2e9, {})
    assert sharded.keys[0] == SHARDED.of(b"job-1").queue


@pytest.mark.parametrize(
    ("job_id", "data", "error", "match"),
    [
        (5, None, TypeError, "job_id must be a str"),
        ("a", [("n", 1)], TypeError, "data must be a mapping"),
        ("a", {"id": 1}, ReservedFieldError, "'id' is reserved"),
        ("a", {"n": object()}, TypeError, "job data 'n' must be"),
    ],
)
def test_schedule_at_refuses_bad_ids_and_data(
    job_id: Any, data: Any, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        encode.schedule_at(PLAIN, job_id, 2e9, data)


def test_clock_and_recurring_ids_calls() -> None:
    assert encode.clock(PLAIN) == Call(
        STATS, [b"rache:queue", b"rache:aside", b"rache:recurring"], [0, b"60.0"]
    )
    first = SHARDED.shards[0]
    assert encode.clock(SHARDED).keys == [first.queue, first.aside, first.recurring]
    calls = encode.recurring_jobs(SHARDED)
    assert [call.script for call in calls] == [SCRIPTS["recurringJobs"]] * 3
    assert [call.keys for call in calls] == [[keys.recurring] for keys in SHARDED.shards]
    assert not SCRIPTS["recurringJobs"].recorded  # it writes nothing


@pytest.mark.parametrize(
    ("prefix", "shards", "cluster", "unsharded"),
    [
        ("rache:", 1, False, b"rache:queue"),
        ("rache:", 3, False, b"rache:queue"),
        ("rache:", 3, True, None),  # no unsharded schedule can live under it on a cluster
        ("{rache}:", 1, True, b"{rache}:queue"),
    ],
)
def test_layout_probe_calls_read_only(
    prefix: str, shards: int, cluster: bool, unsharded: Any
) -> None:
    probe = encode.layout_probe(Layout(prefix, shards), cluster)
    layout_key = prefix.encode() + b"layout"
    assert probe.recorded == Call(LAYOUT_CHECK, [layout_key], [])
    if unsharded is None:
        assert probe.unsharded is None
    else:
        group = unsharded[: -len(b"queue")]
        named = [unsharded, group + b"aside", group + b"recurring"]
        assert probe.unsharded == Call(STATS, named, [0, b"60.0"])
