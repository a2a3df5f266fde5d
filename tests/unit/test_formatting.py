"""formatting: times and ids as the ``rache`` command and the dashboard show them."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rache import formatting
from rache.formatting import (
    UNITS,
    at,
    literal,
    parse_duration,
    printable,
    relative,
    span,
    timestamp,
)

#: 2026-12-07 17:30:00 UTC
MOMENT = datetime.datetime(2026, 12, 7, 17, 30, tzinfo=datetime.timezone.utc).timestamp()


def test_a_moment_in_utc() -> None:
    assert timestamp(MOMENT) == "2026-12-07 17:30:00 UTC"
    assert timestamp(MOMENT + 0.25) == "2026-12-07 17:30:00 UTC"  # the command's columns
    assert timestamp(MOMENT + 0.25, milliseconds=True) == "2026-12-07 17:30:00.250 UTC"
    assert timestamp(MOMENT, milliseconds=True) == "2026-12-07 17:30:00 UTC"  # none to show
    assert timestamp(0) == "1970-01-01 00:00:00 UTC"


def test_a_due_time_on_a_page() -> None:
    assert at(None) == "not scheduled"
    assert at(MOMENT) == "2026-12-07 17:30:00 UTC"
    assert at(MOMENT + 1.5) == "2026-12-07 17:30:01.500 UTC"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.25, "0.25s"),
        (1.5, "1.5s"),
        (9.999, "10s"),
        (12, "12s"),
        (12.4, "12s"),
        (90, "1m 30s"),
        (300, "5m"),
        (3600, "1h"),
        (3725, "1h 2m"),
        (7199, "2h"),  # rounded to the smaller unit shown, not cut to 1h 59m
        (10799.6, "3h"),
        (86400 + 4 * 3600 + 1799, "1d 4h"),
        (3 * 86400, "3d"),
        (-90, "1m 30s"),  # the sign is the caller's to say
    ],
)
def test_a_length_of_time_in_its_two_largest_units(seconds: float, shown: str) -> None:
    assert span(seconds) == shown


def test_a_due_time_from_now() -> None:
    assert relative(None, 100) == ""
    assert relative(100, 100.2) == "now"
    assert relative(100.4, 100) == "now"
    assert relative(112, 100) == "in 12s"
    assert relative(101.5, 100) == "in 1.5s"
    assert relative(100, 400) == "5m overdue"
    assert relative(100 + 3600 + 125, 100) == "in 1h 2m"


@given(st.floats(min_value=-1e9, max_value=1e9), st.floats(min_value=0, max_value=2e9))
def test_relative_is_the_span_with_its_direction(due: float, now: float) -> None:
    shown = relative(due, now)
    if abs(due - now) < 0.5:
        assert shown == "now"
    elif due > now:
        assert shown == f"in {span(due - now)}"
    else:
        assert shown == f"{span(now - due)} overdue"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5", 1.5), ("-30s", -30), ("10m", 600), ("1h30m", 5400), ("2d", 172800)],
)
def test_a_duration_as_people_write_it(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-", "soon", "10x", "1h 30m", "m", "--5", "inf", "1e3"])
def test_anything_else_is_no_duration(text: str) -> None:
    with pytest.raises(ValueError, match=f"not a duration: {text!r}"):
        parse_duration(text)


@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(sorted(UNITS))), min_size=1))
def test_a_duration_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    written = "".join(f"{number}{unit}" for number, unit in parts)
    assert parse_duration(written) == sum(number * UNITS[unit] for number, unit in parts)


def test_an_id_for_a_terminal() -> None:
    assert printable("feed:1") == "feed:1"
    assert printable("évé") == "évé"
    assert printable("evil\x1b[31m") == "evil\\x1b[31m"  # cannot colour the terminal
    assert printable("two\nlines") == "two\\nlines"  # cannot split a line
    assert printable(b"\xff\x00ok") == "\\xff\\x00ok"
    assert printable(b"caf\xc3\xa9") == "café"
    assert printable(42) == "42"


def test_an_id_or_value_for_a_page() -> None:
    assert literal("feed:1") == "feed:1"
    assert literal(b"\xff") == "b'\\xff'"  # bytes told from text
    assert literal(3) == "3"


def test_both_apps_use_these() -> None:
    web = pytest.importorskip("rache.web")
    cli = pytest.importorskip("rache.cli")
    assert web.at is formatting.at and web.span is formatting.span
    assert cli.relative is formatting.relative and web.relative is formatting.relative
    assert cli.timestamp is formatting.timestamp and cli.printable is formatting.printable
    assert cli.parse_duration is formatting.parse_duration


def test_text_reads_bytes_as_utf8_and_anything_else_as_str() -> None:
    assert formatting.text(b"caf\xc3\xa9") == "café"
    assert formatting.text(b"\xff") == "\ufffd"  # not UTF-8: replaced, never raised
    assert formatting.text("standalone") == "standalone"
    assert formatting.text(7) == "7"


def test_ago_is_the_past_in_words() -> None:
    assert formatting.ago(None, 100.0) == "never"
    assert formatting.ago(88.0, 100.0) == "12s ago"
    assert formatting.ago(100.2, 100.0) == "now"
    assert formatting.ago(103.0, 100.0) == "in 3s"  # another host's clock, ahead
