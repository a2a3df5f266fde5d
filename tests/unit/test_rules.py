"""rules: Every and Cron as values (checked when built, immutable) and their one wire codec."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import zlib
import zoneinfo
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rache
import rache.aio
from rache import Cron, Every, recurrence, rules
from rache.rules import Placed, Rule, from_details

# -- built and checked -----------------------------------------------------------------------


def test_every_with_its_defaults() -> None:
    rule = Every(60)
    assert (rule.seconds, rule.misfire, rule.grace, rule.jitter) == (60, "coalesce", 60, 0)
    assert (rule.every_ms, rule.grace_ms, rule.jitter_ms) == (60_000, 60_000, 0)
    assert rule.place("a") == Placed(Every(60), start_ms=0)


def test_every_jitter_shifts_its_start_below_every() -> None:
    shift = zlib.crc32(b"a") % 10000  # 5907
    rule = Every(5, misfire="skip", grace=1.5, jitter=10)
    assert rule.place("a") == Placed(rule, start_ms=shift % 5000)
    assert rule.place("a").encode_tail() == b"5000|s|1500"


@pytest.mark.parametrize("expression", ["* * * * *", "*/5  0 * * 1-5", "0 0 * * * 30", "@daily"])
def test_cron_takes_5_or_6_fields_or_an_alias(expression: str) -> None:
    assert Cron(expression).expression == expression


def test_cron() -> None:
    rule = Cron(
        "*/5 * * * *",
        timezone="Europe/Paris",
        misfire="skip",
        grace=0,
        jitter=timedelta(seconds=10),
    )
    assert (rule.expression, rule.timezone, rule.misfire, rule.grace, rule.jitter) == (
        "*/5 * * * *",
        "Europe/Paris",
        "skip",
        0,
        10,
    )
    placed = rule.place("a")
    assert placed == Placed(rule, offset_ms=zlib.crc32(b"a") % 10000)
    assert placed.encode_tail() == b"s|0|5907|Europe/Paris|*/5 * * * *"


#: Each case: how the rule is built, the error, and what its message holds.
#: The constructors, untyped: the cases below pass what their signatures refuse.
AnyEvery: Any = Every
AnyCron: Any = Cron
AnyRule: Any = Rule

BAD: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: AnyEvery(5, misfire="late"), ValueError, "misfire must be one of coalesce, skip"),
    (lambda: AnyEvery(5, misfire=5), TypeError, "^misfire must be a str, not int$"),
    (lambda: AnyEvery(0), ValueError, "every must be more than 0"),
    (lambda: AnyEvery("60"), TypeError, "every must be a number"),
    (lambda: AnyEvery(None), TypeError, "every must be a number"),
    (lambda: AnyEvery(60, grace=-1), ValueError, "grace must be 0 or more"),
    (lambda: AnyEvery(60, grace=None), TypeError, "grace must be a number"),
    (lambda: AnyEvery(60, jitter="1"), TypeError, "jitter must be a number"),
    (lambda: AnyEvery(60, jitter=-1), ValueError, "jitter must be 0 or more"),
    (lambda: AnyEvery(60, timezone="UTC"), TypeError, "unexpected keyword argument 'timezone'"),
    (lambda: AnyEvery(60, 5), TypeError, "positional argument"),
    (lambda: AnyCron("not a cron"), ValueError, "cron expression 'not a cron'"),
    (lambda: AnyCron("61 * * * *"), ValueError, "is not valid"),
    (lambda: AnyCron("* * * * * | x"), ValueError, "is not valid"),
    (lambda: AnyCron("* * * *\n*"), ValueError, "is not valid"),
    (lambda: AnyCron(""), ValueError, "is not valid"),
    (lambda: AnyCron(5), TypeError, "^cron must be a str, not int$"),
    (lambda: AnyCron("* * * * *", timezone=5), TypeError, "timezone must be a str, not int"),
    (
        lambda: AnyCron("* * * * *", timezone=None),
        TypeError,
        "timezone must be a str, not NoneType",
    ),
    (lambda: AnyCron("* * * * *", timezone="Mars/Base"), ValueError, "'Mars/Base' is not a known"),
    (lambda: AnyCron("* * * * *", timezone=""), ValueError, "'' is not a known"),
    (lambda: AnyCron("0 0 1 1 * 0 2030"), ValueError, "it has 7 fields"),
    (lambda: AnyCron("* * * *"), ValueError, "it has 4 fields"),
    (lambda: AnyCron("@daily 5"), ValueError, "it has 2 fields"),
    (lambda: AnyCron("* * * * *", misfire="late"), ValueError, "misfire must be one of"),
    (lambda: AnyCron("* * * * *", grace=-1), ValueError, "grace must be 0 or more"),
    (lambda: AnyCron("* * * * *", jitter=-1), ValueError, "jitter must be 0 or more"),
    (lambda: AnyCron("* * * * *", "UTC"), TypeError, "positional argument"),
    (lambda: AnyRule(), TypeError, "a rule is a rache.Every or a rache.Cron"),
]


@pytest.mark.parametrize(("build", "error", "match"), BAD)
def test_a_bad_rule_is_refused_when_built(
    build: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        build()


#: Names ZoneInfo loads on a usual host that name no place, and what the error says of each.
NOT_PLACES = {
    "localtime": "it is the zone of the host that reads it",
    "posixrules": "template for POSIX TZ strings",
    "Factory": "placeholder for a host whose zone is not set",
    "posix/Europe/Paris": "'posix/' zones are a copy .*; name 'Europe/Paris'$",
    "right/Europe/Paris": "'right/' zones count leap seconds.*; name 'Europe/Paris'$",
}


@pytest.mark.parametrize("name", list(NOT_PLACES))
def test_a_zone_name_that_means_another_clock_on_each_host_is_refused(name: str) -> None:
    """Each loads as a ZoneInfo where the host has it, yet names no place (or another clock)."""
    with pytest.raises(ValueError, match=f"^timezone '{name}' is not an IANA location zone: "):
        Cron("0 6 * * *", timezone=name)
    with pytest.raises(ValueError, match=NOT_PLACES[name]):
        Cron("0 6 * * *", timezone=name)


@pytest.mark.parametrize(
    "name", ["UTC", "Etc/UTC", "Etc/GMT+5", "GMT", "US/Eastern", "EST5EDT", "Europe/Paris"]
)
def test_utc_fixed_offsets_and_places_are_zones(name: str) -> None:
    assert Cron("0 6 * * *", timezone=name).timezone == name
    assert name in zoneinfo.available_timezones() or name == "UTC"


def test_a_stored_rule_in_a_zone_now_refused_is_still_evaluated() -> None:
    """Rules written before the check keep running as they did: only new rules are checked."""
    decoded, _, _ = rules.decode(b"c|||c|0|0|Factory|0 6 * * *")
    assert isinstance(decoded.rule, Cron) and decoded.rule.timezone == "Factory"
    start = recurrence.to_ms(datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert recurrence.next_at_or_after(decoded, start) == start + 6 * 3600 * 1000  # '-00' is UTC


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2 * 0"])
def test_a_cron_rule_without_any_occurrence_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="has no occurrence"):
        Cron(expression)


@pytest.mark.parametrize("every", [1, 7, 3600])
@settings(database=None, max_examples=50)
@given(
    job_id=st.text(st.characters(codec="utf-8"), min_size=1),
    jitter=st.integers(1, 10**5),
)
def test_every_jitter_is_below_jitter_and_every(every: int, job_id: str, jitter: int) -> None:
    placed = Every(every, jitter=jitter / 1000).place(job_id)
    assert 0 <= placed.start_ms < min(jitter, every * 1000)
    assert placed.start_ms == zlib.crc32(job_id.encode()) % jitter % (every * 1000)


# -- values: immutable, equal by meaning, hashable, readable ---------------------------------


@pytest.mark.parametrize(
    ("rule", "field"),
    [(Every(60), "every_ms"), (Every(60), "misfire"), (Cron("* * * * *"), "timezone")],
)
def test_a_rule_is_immutable(rule: Rule, field: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(rule, field, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(rule, field)
    with pytest.raises(AttributeError):
        Every(60).seconds = 5  # type: ignore[misc]


def test_rules_are_equal_by_what_they_mean_and_hashable() -> None:
    assert Every(60) == Every(60.0) == Every(timedelta(minutes=1)) == Every(60, grace=60)
    assert Every(1.5) == Every(timedelta(milliseconds=1500))
    assert Every(60) != Every(61)
    assert Every(60) != Every(60, misfire="skip")
    assert Every(60) != Every(60, jitter=1)
    assert Cron("0 6 * * *") == Cron("0 6 * * *", timezone="UTC")
    assert Cron("0 6 * * *") != Cron("0 6 * * *", timezone="Europe/Paris")
    others: list[object] = [Cron("* * * * *"), 60, 60_000, "every 60 s"]
    assert all(Every(60) != other for other in others)
    assert len({Every(60), Every(60.0), Cron("0 6 * * *"), Cron("0 6 * * *")}) == 2
    assert {Every(timedelta(minutes=1)): "a"}[Every(60)] == "a"


@pytest.mark.parametrize(
    ("rule", "text", "described"),
    [
        (Every(60), "Every(60)", "every 60 s"),
        (Every(1.5), "Every(1.5)", "every 1.5 s"),
        (
            Every(timedelta(hours=1), misfire="skip", grace=0, jitter=30),
            "Every(3600, misfire='skip', grace=0, jitter=30)",
            "every 3600 s",
        ),
        (Cron("0 6 * * *"), "Cron('0 6 * * *')", "cron 0 6 * * * (UTC)"),
        (
            Cron("30 2 * * *", timezone="Europe/Paris", grace=2.5),
            "Cron('30 2 * * *', timezone='Europe/Paris', grace=2.5)",
            "cron 30 2 * * * (Europe/Paris)",
        ),
    ],
)
def test_a_rule_reads_as_it_was_written(rule: Rule, text: str, described: str) -> None:
    assert repr(rule) == text
    assert eval(text, {"Every": Every, "Cron": Cron}) == rule
    assert str(rule) == described


@pytest.mark.parametrize("rule", [Every(1.5, misfire="skip"), Cron("0 6 * * *", jitter=5)])
def test_a_rule_copies_and_pickles_as_itself(rule: Rule) -> None:
    # A rule crosses processes as it is (a Celery declaration, a multiprocessing pool).
    assert pickle.loads(pickle.dumps(rule)) == rule
    assert copy.copy(rule) == rule == copy.deepcopy(rule)
    assert repr(pickle.loads(pickle.dumps(rule))) == repr(rule)


def test_the_rules_are_exported() -> None:
    assert rache.Every is Every and rache.Cron is Cron and rache.Rule is Rule
    assert {"Every", "Cron", "Rule"} <= set(rache.__all__)
    assert isinstance(Every(1), Rule) and isinstance(Cron("* * * * *"), Rule)


# -- the wire: one encoder, one decoder ------------------------------------------------------

EVERY_VALUES = st.builds(
    Every,
    st.integers(1, 10**12).map(lambda ms: timedelta(milliseconds=ms)),
    misfire=st.sampled_from(["coalesce", "skip"]),
    grace=st.integers(0, 10**9),
    jitter=st.integers(0, 10**6),
)
CRON_VALUES = st.builds(
    Cron,
    st.sampled_from(["* * * * *", "0 9 * * 1-5", "*/15 0-6 1,15 * *", "@daily"]),
    timezone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Etc/GMT+5"]),
    misfire=st.sampled_from(["coalesce", "skip"]),
    grace=st.integers(0, 10**9),
    jitter=st.integers(0, 10**6),
)


def _without_jitter(rule: Rule) -> Union[Every, Cron]:
    """The rule as read back from Redis: its jitter is in its placement, not stored."""
    if isinstance(rule, Every):
        return Every(rule.seconds, misfire=rule.misfire, grace=rule.grace)
    assert isinstance(rule, Cron)
    return Cron(rule.expression, timezone=rule.timezone, misfire=rule.misfire, grace=rule.grace)


@settings(database=None, max_examples=50)
@given(EVERY_VALUES, st.text(min_size=1), st.integers(0, 10**13))
def test_an_every_rule_round_trips_through_the_wire(rule: Every, job_id: str, start: int) -> None:
    placed = rule.place(job_id)
    # scheduleRecurring-5.lua stores 'e|<start>|' .. the tail, the start holding the shift
    stored = b"e|%d|" % (start + placed.start_ms) + placed.encode_tail()
    decoded, pending, lease = rules.decode(stored)
    assert decoded == Placed(_without_jitter(rule), start_ms=start + placed.start_ms)
    assert (pending, lease) == ("", "")
    assert from_details(decoded.describe()) == decoded.rule


@settings(database=None, max_examples=50)
@given(CRON_VALUES, st.text(min_size=1))
def test_a_cron_rule_round_trips_through_the_wire(rule: Cron, job_id: str) -> None:
    placed = rule.place(job_id)
    decoded, _, _ = rules.decode(b"c|||" + placed.encode_tail())
    assert decoded == Placed(_without_jitter(rule), offset_ms=placed.offset_ms)
    assert from_details(decoded.describe()) == decoded.rule
    assert str(from_details(decoded.describe())) == str(rule)


def test_a_stored_rule_reads_back_without_checks() -> None:
    # Written where the zone was known: a host without it still reads the rule.
    decoded, _, _ = rules.decode(b"c|||c|0|0|Mars/Base|* * * * *")
    assert isinstance(decoded.rule, Cron) and decoded.rule.timezone == "Mars/Base"
    assert str(decoded.rule) == "cron * * * * * (Mars/Base)"


# -- schedule_recurring takes a rule value, in all four places -------------------------------


@pytest.mark.parametrize(
    "function",
    [
        rache.Scheduler.schedule_recurring,
        rache.aio.AsyncScheduler.schedule_recurring,
        rache.schedule_recurring,
        rache.aio.schedule_recurring,
    ],
)
def test_schedule_recurring_takes_a_rule_then_start_and_data(function: Any) -> None:
    parameters = inspect.signature(function).parameters
    shown = [name for name in parameters if name not in ("self", "connection")]
    assert shown == ["job_id", "rule", "start", "data"]
    assert parameters["rule"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for name in ("start", "data"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default is None
