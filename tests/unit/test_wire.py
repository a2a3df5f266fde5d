"""wire: the literals shared with Lua (rule strings, times as text); the rules' codec."""

from __future__ import annotations

from typing import Any, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rache import constants, rules, wire
from rache.constants import MISFIRE_POLICIES
from rache.rules import Cron, Every, Placed

# -- rule strings ----------------------------------------------------------------------------


def test_the_stored_literals() -> None:
    # Stored in Redis and read by the Lua scripts: a change here is a change of format.
    assert (wire.WHOLE_SECONDS, wire.MILLISECONDS, wire.AT) == (b"s", b"ms", b"at")
    assert (wire.EVERY, wire.CRON, wire.SEPARATOR) == ("e", "c", "|")
    assert (wire.PLAIN, wire.RECURRING) == (b"p", b"r")
    assert wire.MISFIRE_BY_FLAG == {"c": "coalesce", "s": "skip"}
    assert {policy[0] for policy in MISFIRE_POLICIES} == set(wire.MISFIRE_BY_FLAG)


def test_rule_tails() -> None:
    assert wire.every_rule_tail(60000, "skip", 1000) == b"60000|s|1000"
    assert wire.cron_rule_tail("coalesce", 0, 250, "Europe/Paris", "0 9 * * 1-5") == (
        b"c|0|250|Europe/Paris|0 9 * * 1-5"
    )


EVERY_RULES = st.builds(
    Placed,
    st.builds(
        Every,
        st.integers(1, 10**12).map(lambda ms: ms / 1000),
        misfire=st.sampled_from(MISFIRE_POLICIES),
        grace=st.integers(0, 10**12).map(lambda ms: ms / 1000),
    ),
    start_ms=st.integers(0, constants.MAX_MS),
)
CRON_RULES = st.builds(
    Placed,
    st.builds(
        Cron,
        st.sampled_from(["* * * * *", "0 9 * * 1-5", "*/15 0-6 1,15 * *", "@daily"]),
        timezone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Etc/GMT+5"]),
        misfire=st.sampled_from(MISFIRE_POLICIES),
        grace=st.integers(0, 10**12).map(lambda ms: ms / 1000),
    ),
    offset_ms=st.integers(0, 10**12),
)


@settings(database=None)
@given(EVERY_RULES)
def test_an_every_rule_round_trips(rule: Placed) -> None:
    # scheduleRecurring-5.lua stores 'e|<start>|' .. the tail
    stored = b"e|%d|" % rule.start_ms + rule.encode_tail()
    assert wire.split_rule(stored)[0] == "e"
    assert rules.decode(stored) == (rule, "", "")


@settings(database=None)
@given(CRON_RULES, st.sampled_from([("", ""), ("1700000000", "1700000005.0000005")]))
def test_a_cron_rule_round_trips(rule: Placed, held: Any) -> None:
    # idle: 'c|||' .. the tail; leased by a claim: 'c|<pending>|<lease>|' .. the tail
    pending, lease = held
    stored = f"c|{pending}|{lease}|".encode() + rule.encode_tail()
    assert len(wire.split_rule(stored)) == 8
    assert rules.decode(stored) == (rule, pending, lease)


def test_a_cron_expression_may_hold_the_separator_last() -> None:
    # The expression is the last field: split_rule splits 7 times, no more.
    fields = wire.split_rule(b"c|||c|0|0|UTC|a|b")
    assert fields == ["c", "", "", "c", "0", "0", "UTC", "a|b"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"x",
        b"e",
        b"c",
        b"e|1|2|c",
        b"e|1|2|c|3|4",
        b"E|1|2|c|3",
        b"p|1|2|c|3",
        b"c|1|2|c|3|4|UTC",
        b"c||",
        b" e|1|2|c|3",
        b"\xff",
        b"e|\xff|2|c|3",
    ],
)
def test_split_rule_rejects_junk(raw: bytes) -> None:
    with pytest.raises(ValueError):
        wire.split_rule(raw)
    with pytest.raises(ValueError):
        rules.decode(raw)


def test_split_rule_names_the_rule() -> None:
    with pytest.raises(ValueError, match=r"not a rache recurrence rule: b'x\|1'"):
        wire.split_rule(b"x|1")


@pytest.mark.parametrize("raw", [b"e|a|2|c|3", b"e|1|2|c|", b"c|||c|x|0|UTC|* * * * *"])
def test_decode_rule_rejects_fields_that_are_no_numbers(raw: bytes) -> None:
    with pytest.raises(ValueError):
        rules.decode(raw)


@pytest.mark.parametrize("raw", [b"e|1|2|x|3", b"c|||x|0|0|UTC|* * * * *"])
def test_decode_rule_rejects_an_unknown_misfire_flag(raw: bytes) -> None:
    with pytest.raises(ValueError):
        rules.decode(raw)


@pytest.mark.parametrize(
    ("rule", "described"),
    [
        (
            Placed(Every(1.5, misfire="skip", grace=0), start_ms=2000),
            {"every": 1.5, "start": 2, "misfire": "skip", "grace": 0},
        ),
        (
            Placed(Cron("0 * * * *", timezone="UTC"), offset_ms=250),
            {
                "cron": "0 * * * *",
                "timezone": "UTC",
                "offset": 0.25,
                "misfire": "coalesce",
                "grace": 60,
            },
        ),
    ],
)
def test_rule_describe(rule: Placed, described: Any) -> None:
    assert rule.describe() == described
    assert all(type(v) is type(described[k]) for k, v in rule.describe().items())


# -- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, b"0"),
        (1, b"0.001"),
        (1500, b"1.5"),
        (-1500, b"-1.5"),
        (1700000000000, b"1700000000"),
        (1700000000123, b"1700000000.1229999"),  # 17 significant digits, as Lua's %.17g
        (10**13, b"10000000000"),
    ],
)
def test_time_text(ms: int, text: bytes) -> None:
    assert wire.time_text(ms) == text
    assert wire.time_ms(text) == ms


@settings(database=None, max_examples=500)
@given(st.integers(-(10**13), 10**13))
def test_time_text_round_trips_to_the_millisecond(ms: int) -> None:
    assert wire.time_ms(wire.time_text(ms)) == ms
    assert float(wire.time_text(ms)) == ms / 1000


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (b"1700000005.0000005", 1700000005000),  # a lease's half microsecond
        (b"1.0005", 1001),  # half a millisecond rounds up
        (b"1.0004999", 1000),
        (b"100", 100000),
        (b"-1.5", -1500),
    ],
)
def test_time_ms_rounds(raw: bytes, ms: int) -> None:
    assert wire.time_ms(raw) == ms


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (b"1700000000.123456", 1700000000123),
        (b"1.0009999999999999", 1001),  # TIME's {1, 1000} as the script writes it
        (b"1.0029999999999999", 1003),
        (b"1700000000.001", 1700000000001),  # 1.0009999... in a double: not 1700000000000
        (b"1700000000.000999", 1700000000000),
        (b"1700000000.999999", 1700000000999),
        (b"1700000000", 1700000000000),
        (b"0", 0),
    ],
)
def test_now_ms_floors_to_the_millisecond(raw: bytes, ms: int) -> None:
    assert wire.now_ms(raw) == ms


@settings(database=None, max_examples=500)
@given(
    st.integers(0, 2**32 - 1),
    st.one_of(st.integers(0, 999_999), st.integers(0, 999).map(lambda ms: ms * 1000)),
)
def test_now_ms_of_a_cutoff_is_its_millisecond(seconds: int, micros: int) -> None:
    # claim-7.lua writes the cutoff as timeString(TIME's seconds + microseconds / 1e6)
    raw = b"%.17g" % (seconds + micros / 1_000_000)
    assert wire.now_ms(raw) == seconds * 1000 + micros // 1000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"100", 100),
        ("100", 100),
        (b"100.0", 100),
        (b"-0", 0),
        (b"1e3", 1000),
        (b"100.5", 100.5),
        (b"1700000005.0000005", 1700000005.0000005),
        ("-2.25", -2.25),
    ],
)
def test_decode_time(raw: Union[bytes, str], expected: Union[int, float]) -> None:
    result = wire.decode_time(raw)
    assert result == expected and type(result) is type(expected)


def test_utf8() -> None:
    assert wire.utf8("\u00e9", "prefix") == b"\xc3\xa9"
    with pytest.raises(ValueError, match="job data 'k' cannot be encoded as UTF-8"):
        wire.utf8("\ud800", "job data {key!r}", "k")
