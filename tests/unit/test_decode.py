"""decode: rache 0.3.1's value rules, job details, and a schedule's figures."""

from __future__ import annotations

from typing import Any, List, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rache import decode
from rache.errors import JobNotFound
from rache.models import Job, SetAside, Stats, text

# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1", 1),
        (b"0", 0),
        (b"-5", -5),
        (b"-0", 0),  # an int: the sign is lost
        (b"007", 7),  # an int: the zeros are lost (rache 0.3.1's rule)
        (b"-007", -7),
        (b"12345678901234567890", 12345678901234567890),
        (b"", ""),
        (b"-", "-"),
        (b"--1", "--1"),
        (b"+1", "+1"),
        (b" 1", " 1"),
        (b"1 ", "1 "),
        (b"1.5", "1.5"),
        (b"1e3", "1e3"),
        (b"0x10", "0x10"),
        (b"1_000", "1_000"),
        ("\u00b2".encode(), "\u00b2"),  # '²' is a digit to str.isdigit, not to rache
        ("\u0661".encode(), "\u0661"),  # ARABIC-INDIC DIGIT ONE: text too
        ("-\u0661".encode(), "-\u0661"),
        ("\u00e9t\u00e9".encode(), "\u00e9t\u00e9"),
        (b"\xff", b"\xff"),  # not UTF-8: bytes as they are
        (b"-\xff", b"-\xff"),
        (b"\xc3", b"\xc3"),
    ],
)
def test_value(raw: bytes, expected: Any) -> None:
    result = decode.value(raw)
    assert result == expected and type(result) is type(expected)


def test_a_number_too_long_for_int_stays_text() -> None:
    digits = b"9" * 5000  # beyond int()'s default 4,300 digits
    assert decode.value(digits) == digits.decode()
    assert decode.value(b"-" + digits) == "-" + digits.decode()
    assert decode.value(b"9" * 4200) == int("9" * 4200)


@pytest.mark.parametrize(
    ("raw", "expected"), [(b"abc", "abc"), (b"12", "12"), (b"\xff\xfe", b"\xff\xfe"), (b"", "")]
)
def test_text(raw: bytes, expected: Union[str, bytes]) -> None:
    assert text(raw) == expected and type(text(raw)) is type(expected)


RAW = st.one_of(
    st.binary(max_size=12),
    st.integers().map(lambda i: str(i).encode()),
    st.from_regex(rb"\A-?[0-9]{1,6}\Z"),
    st.text(max_size=8).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.just(b"9" * 4100),
    st.just(b"-" + b"9" * 4500),
)


@settings(database=None, max_examples=400)
@given(st.lists(RAW, max_size=4))
def test_a_job_value_decodes_as_value_does(values: List[bytes]) -> None:
    # decode.jobs inlines value()'s rules on its hot path: both must agree on every input
    reply: List[Any] = [b"j", b"1", len(values)]
    for i, raw in enumerate(values):
        reply += [b"f%d" % i, raw]
    (job,) = decode.jobs(iter(reply))
    for i, raw in enumerate(values):
        got, want = job[f"f{i}"], decode.value(raw)
        assert got == want and type(got) is type(want)


@settings(database=None)
@given(st.integers())
def test_an_int_round_trips(number: int) -> None:
    assert decode.value(str(number).encode()) == number


# -- jobs ------------------------------------------------------------------------------------


def test_jobs_of_a_flat_reply() -> None:
    reply = [
        b"a", b"1", 2, b"x", b"007", b"y", b"-0",
        b"b", b"2.5", 0,
        b"\xff", b"3", 1, b"\xfe", b"\xc3\xa9",
    ]  # fmt: skip
    jobs = decode.jobs(iter(reply))
    assert jobs == [{"id": "a", "x": 7, "y": 0}, {"id": "b"}, {"id": b"\xff", b"\xfe": "\u00e9"}]
    assert [job.raw_due for job in jobs] == [b"1", b"2.5", b"3"]
    assert [job.due_at for job in jobs] == [1, 2.5, 3]
    assert [job.raw_id for job in jobs] == [b"a", b"b", b"\xff"]
    assert jobs[1].occurrence_id == "b:2.5"


def test_the_id_wins_over_data_of_that_name() -> None:
    (job,) = decode.jobs(iter([b"a", b"1", 2, b"id", b"evil", b"k", b"v"]))
    assert job == {"id": "a", "k": "v"}


def test_a_job_without_a_due_time() -> None:
    job = Job(id="a")
    assert job.due_at is None
    job.raw_due = None
    assert job.due_at is None
    assert job.raw_id == b"a"


def test_the_due_time_is_no_key() -> None:
    (job,) = decode.jobs(iter([b"a", b"1", 1, b"due_at", b"x"]))
    assert job == {"id": "a", "due_at": "x"} and job.due_at == 1


# -- details ---------------------------------------------------------------------------------


def test_details_without_a_rule() -> None:
    job = decode.details("a", [b"100.5", [b"x", b"1", b"s", b"t"], None])
    assert job == {"id": "a", "schedule_at": 100.5, "x": 1, "s": "t"}
    assert job.due_at == 100.5


def test_details_of_an_unscheduled_job_with_data() -> None:
    assert decode.details("a", [None, [b"x", b"1"], None]) == {
        "id": "a",
        "schedule_at": None,
        "x": 1,
    }


def test_details_data_never_hides_the_id_or_the_due_time() -> None:
    data = [b"id", b"evil", b"schedule_at", b"3", b"k", b"v"]
    assert decode.details("a", [b"100", data, None]) == {"id": "a", "schedule_at": 100, "k": "v"}


def test_details_of_nothing_is_job_not_found() -> None:
    with pytest.raises(JobNotFound) as info:
        decode.details("gone", [None, [], None])
    assert isinstance(info.value, KeyError)


def test_details_with_an_every_rule() -> None:
    job = decode.details("a", [b"100", [], b"e|100000|60000|c|60000"])
    assert job == {
        "id": "a",
        "schedule_at": 100,
        "recurring": {"every": 60, "start": 100, "misfire": "coalesce", "grace": 60},
        "next_occurrences": [100, 160, 220, 280, 340],
    }


def test_details_of_a_rule_without_a_due_time_has_no_occurrences() -> None:
    job = decode.details("a", [None, [], b"e|100500|1500|s|0"])
    assert job == {
        "id": "a",
        "schedule_at": None,
        "recurring": {"every": 1.5, "start": 100.5, "misfire": "skip", "grace": 0},
    }


CRON = b"s|1000|250|Europe/Paris|0 * * * *"
#: 2023-11-15 00:00 in Paris (23:00 UTC) plus the 0.25 s offset, and the next hours.
HOURS = [1700002800.25 + 3600 * i for i in range(6)]


def test_details_with_a_cron_rule() -> None:
    job = decode.details("a", [b"1700000000", [b"n", b"1"], b"c|||" + CRON])
    assert job == {
        "id": "a",
        "schedule_at": 1700000000,
        "n": 1,
        "recurring": {
            "cron": "0 * * * *",
            "timezone": "Europe/Paris",
            "offset": 0.25,
            "misfire": "skip",
            "grace": 1,
        },
        "next_occurrences": HOURS[:5],
    }


@pytest.mark.parametrize(
    ("due", "lease", "first"),
    [
        (b"1700002805.0000005", b"1700002805.0000005", 0),  # leased: resumes at its pending
        (b"1700006000", b"1700002805.0000005", 1),  # moved since its lease: at its due time
    ],
)
def test_details_of_a_leased_cron_job(due: bytes, lease: bytes, first: int) -> None:
    rule = b"c|1700002800.25|" + lease + b"|" + CRON
    job = decode.details("a", [due, [], rule])
    assert job["next_occurrences"] == HOURS[first : first + 5]


# -- stats -----------------------------------------------------------------------------------


def test_stats() -> None:
    aside = [b"bad", b"1699999000", b"e|x|y"]  # a job set aside: id, due time it had, raw rule
    reply = [b"1700000000.5", 10, 3, b"1699999990", b"1700000001.25", aside, 4, 0, 2]
    stats = decode.stats(reply, 60)
    assert stats == Stats(
        now=1700000000.5,
        total=10,
        due=3,
        earliest=1699999990,
        next_due=1700000001.25,
        coming=[4, 0, 2],
        interval=60.0,
        set_aside=(SetAside("bad", "e|x|y", 1699999000),),
    )
    assert stats.lag == 10.5


def test_stats_of_an_empty_schedule() -> None:
    stats = decode.stats([b"5", 0, 0, None, None, []], 1.5)
    assert stats == Stats(5.0, 0, 0, None, None, [], 1.5)
    assert stats.lag == 0.0


def test_no_lag_when_the_earliest_job_is_to_come() -> None:
    assert Stats(100.0, 1, 0, 150, 150, [], 60.0).lag == 0.0


def test_merged_stats() -> None:
    shards = [
        Stats(100.0, 5, 2, 90, 120, [1, 2], 60.0, (SetAside("a", "zzz", 80),)),
        Stats(101.5, 3, 0, 130, 130, [0, 1], 60.0, (SetAside("b", "c|x", 70),)),
        Stats(99.0, 0, 0, None, None, [0, 0], 60.0),
    ]
    assert decode.merged_stats(shards) == Stats(
        now=101.5,
        total=8,
        due=2,
        earliest=90,
        next_due=120,
        coming=[1, 3],
        interval=60.0,
        set_aside=(SetAside("a", "zzz", 80), SetAside("b", "c|x", 70)),
    )
    assert decode.merged_stats(shards[2:]) is shards[2]
    empty = decode.merged_stats([shards[2], shards[2]])
    assert empty.earliest is None and empty.next_due is None and empty.total == 0


@pytest.mark.parametrize(
    ("recorded", "unsharded", "expected"),
    [
        (b"3", None, 3),
        (b"3", [b"1.5", 7], 3),  # a recorded count wins
        (b"1", None, None),  # nothing recorded, no unsharded queue to read (a cluster)
        (b"1", [b"1.5", 0, 0, None, None, []], None),
        (b"1", [b"1.5", 2, 0, None, None, []], 1),
    ],
)
def test_recorded_shards(recorded: bytes, unsharded: Any, expected: Any) -> None:
    assert decode.recorded_shards(recorded, unsharded) == expected


def test_clock_and_ids() -> None:
    assert decode.clock([b"1700000000.123456", 0, 0, None, None]) == 1700000000.123456
    assert decode.ids([b"a", "日本".encode(), b"\xff"]) == ["a", "日本", b"\xff"]
