"""The recurrence rules alone: pure functions, no Redis (but the last test, Lua against them)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rache import Cron, Every, Scheduler, recurrence, rules, wire
from rache.recurrence import decide, latest_at_or_before, next_at_or_after, upcoming
from rache.rules import Placed
from tests.support import harness

PARIS, NEW_YORK = "Europe/Paris", "America/New_York"


def ms(zone: str, *fields: int, fold: int = 0) -> int:
    """The instant of a local wall time, ms."""
    return recurrence.to_ms(datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold))  # type: ignore[arg-type,misc]


def wall(zone: str, instant: int) -> str:
    """The local wall time of an instant, with its UTC offset."""
    return (
        datetime.fromtimestamp(instant / 1000, timezone.utc).astimezone(ZoneInfo(zone)).isoformat()
    )


def cron(expression: str, zone: str, offset_ms: int = 0, **options: Any) -> Placed:
    return Placed(Cron(expression, timezone=zone, **options), offset_ms=offset_ms)


# -- every-N ---------------------------------------------------------------------------------

EVERY = Placed(Every(0.2), start_ms=1_000_000)


def test_every_n_occurrences_stay_on_the_grid() -> None:
    assert next_at_or_after(EVERY, 0) == 1_000_000
    assert next_at_or_after(EVERY, 1_000_000) == 1_000_000
    assert next_at_or_after(EVERY, 1_000_001) == 1_000_200
    assert latest_at_or_before(EVERY, 999_999) is None
    assert latest_at_or_before(EVERY, 1_000_399) == 1_000_200
    assert upcoming(EVERY, 1_000_050, 3) == [1_000_200, 1_000_400, 1_000_600]


def test_every_n_hands_out_the_due_occurrence_and_moves_to_the_next() -> None:
    # A poller 37 ms late: the occurrence keeps its own time, the next stays on the grid.
    assert decide(EVERY, 1_000_200, 1_000_237) == (1_000_200, 1_000_400)


@pytest.mark.parametrize("misfire", ["coalesce", "skip"])
def test_every_n_after_a_downtime(misfire: str) -> None:
    rule = Placed(Every(0.2, misfire=misfire, grace=0.05), start_ms=1_000_000)
    # Down from 1_000_200 to 1_001_030: the occurrences 200 .. 1000 were missed; the latest,
    # 1000, is 30 ms late (within the grace): both policies run it, once.
    assert decide(rule, 1_000_200, 1_001_030) == (1_001_000, 1_001_200)
    # 1_001_000 is 150 ms late at 1_001_150: coalesce runs it, skip drops it.
    expected = 1_001_000 if misfire == "coalesce" else None
    assert decide(rule, 1_000_200, 1_001_150) == (expected, 1_001_200)


def test_every_n_resumes_from_an_off_grid_time() -> None:
    # schedule_job moved the job to 1_000_250: nothing in [250, 300]; then 400 runs.
    assert decide(EVERY, 1_000_250, 1_000_300) == (None, 1_000_400)
    assert decide(EVERY, 1_000_250, 1_000_400) == (1_000_400, 1_000_600)
    # before the start: nothing, the job waits for the start
    assert decide(EVERY, 500, 600) == (None, 1_000_000)


def test_a_lease_run_out_hands_out_each_occurrence_its_holder_never_did() -> None:
    every_second = Placed(Cron("* * * * * *"))
    t = 1_700_000_000_000  # a whole second
    # Claimed at t + 300 with a 5 s lease (until t + 5_300), never advanced; taken up at
    # t + 5_400: t (the holder's), each second the lease held, none after it yet.
    runs, following = recurrence.decide_held(every_second, t, t + 5_300, t + 5_400, 5_000)
    assert runs == [t + 1000 * k for k in range(6)]
    assert following == t + 6_000
    # Taken up late (t + 9_500): then the latest since the lease ended, the rest coalesced.
    runs, following = recurrence.decide_held(every_second, t, t + 5_300, t + 9_500, 5_000)
    assert runs == [t + 1000 * k for k in range(6)] + [t + 9_000]
    assert following == t + 10_000
    # The holder's claim came late (t + 2_300): what it coalesced stays coalesced.
    runs, _ = recurrence.decide_held(every_second, t, t + 7_300, t + 7_400, 5_000)
    assert runs == [t + 2000 + 1000 * k for k in range(6)]
    # A lease shorter than the period: the one occurrence, no more.
    hourly = Placed(Cron("0 * * * *"))
    hour = 1_699_999_200_000  # a whole hour
    assert recurrence.decide_held(hourly, hour, hour + 500, hour + 600, 200) == (
        [hour],
        hour + 3_600_000,
    )
    # skip drops what is more than grace late, as always.
    skip = Placed(Cron("* * * * * *", misfire="skip", grace=2.5))
    runs, _ = recurrence.decide_held(skip, t, t + 5_300, t + 5_400, 5_000)
    assert runs == [t + 3000, t + 4000, t + 5000]


def test_a_lease_run_out_hands_out_a_bounded_number() -> None:
    every_second = Placed(Cron("* * * * * *"))
    t = 1_700_000_000_000
    hour_lease = 3_600_000  # a lease of an hour over a job every second
    runs, following = recurrence.decide_held(
        every_second, t, t + hour_lease, t + hour_lease + 100, hour_lease
    )
    assert len(runs) == recurrence.HELD_MOST + 1  # the rest coalesced into the latest
    assert runs[-1] == t + hour_lease and following == t + hour_lease + 1000


# -- cron and daylight saving time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        # Paris springs forward on 2024-03-31 at 02:00 -> 03:00: 02:30 runs at 03:00.
        (PARIS, (2024, 3, 31), "2024-03-31T03:00:00+02:00"),
        # New York springs forward on 2024-03-10 at 02:00 -> 03:00.
        (NEW_YORK, (2024, 3, 10), "2024-03-10T03:00:00-04:00"),
    ],
)
def test_a_02_30_job_on_a_spring_forward_day_runs_at_the_end_of_the_gap(
    zone: str, day: tuple[int, int, int], expected: str
) -> None:
    rule = cron("30 2 * * *", zone)
    start = ms(zone, *day, 0, 0)
    first, second = upcoming(rule, start, 2)
    assert wall(zone, first) == expected
    assert (
        wall(zone, second)
        == f"{datetime(*day) + timedelta(days=1):%Y-%m-%d}T02:30:00" + (expected[-6:])
    )
    assert latest_at_or_before(rule, ms(zone, *day, 3, 10)) == first


@pytest.mark.parametrize(
    ("zone", "day", "time", "offset"),
    [
        # Paris falls back on 2024-10-27 at 03:00 -> 02:00: 02:30 comes twice, runs once.
        (PARIS, (2024, 10, 27), (2, 30), "+02:00"),
        # New York falls back on 2024-11-03 at 02:00 -> 01:00: 01:30 comes twice.
        (NEW_YORK, (2024, 11, 3), (1, 30), "-04:00"),
    ],
)
def test_a_repeated_wall_time_on_a_fall_back_day_runs_once_at_its_first_pass(
    zone: str, day: tuple[int, int, int], time: tuple[int, int], offset: str
) -> None:
    rule = cron(f"{time[1]} {time[0]} * * *", zone)
    occurrences = upcoming(rule, ms(zone, *day, 0, 0), 2)
    assert [wall(zone, o)[:10] for o in occurrences] == [
        f"{datetime(*day):%Y-%m-%d}",
        f"{datetime(*day) + timedelta(days=1):%Y-%m-%d}",
    ]
    assert wall(zone, occurrences[0]).endswith(f"T{time[0]:02}:{time[1]:02}:00{offset}")
    # From inside the second pass, the repeat is behind: the next is the next day's.
    second_pass = ms(zone, *day, time[0], time[1], fold=1)
    assert next_at_or_after(rule, second_pass) == occurrences[1]
    assert latest_at_or_before(rule, second_pass) == occurrences[0]


def test_frequent_cron_jobs_across_both_changes_in_new_york() -> None:
    rule = cron("*/30 * * * *", NEW_YORK)
    spring = [wall(NEW_YORK, o) for o in upcoming(rule, ms(NEW_YORK, 2024, 3, 10, 1, 10), 3)]
    # 02:00 and 02:30 do not exist: both run at 03:00, merged with 03:00's own run
    assert spring == [
        "2024-03-10T01:30:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T03:30:00-04:00",
    ]
    fall = [wall(NEW_YORK, o) for o in upcoming(rule, ms(NEW_YORK, 2024, 11, 3, 0, 40), 4)]
    # 01:00 and 01:30 run in the first pass only; the second pass (EST) has no run
    assert fall == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T02:00:00-05:00",
        "2024-11-03T02:30:00-05:00",
    ]


@pytest.mark.parametrize(("misfire", "runs"), [("coalesce", True), ("skip", False)])
def test_cron_after_a_three_day_downtime(misfire: str, runs: bool) -> None:
    rule = cron("0 9 * * *", PARIS, misfire=misfire)
    pending = ms(PARIS, 2024, 6, 1, 9, 0)  # the first missed occurrence
    now = ms(PARIS, 2024, 6, 4, 10, 0)  # back up an hour after the 4th's run
    run, following = decide(rule, pending, now)
    assert run == (ms(PARIS, 2024, 6, 4, 9, 0) if runs else None)
    assert following == ms(PARIS, 2024, 6, 5, 9, 0)


@pytest.mark.parametrize("misfire", ["coalesce", "skip"])
def test_cron_within_the_grace_runs_under_either_policy(misfire: str) -> None:
    rule = cron("0 9 * * *", NEW_YORK, misfire=misfire, grace=60)
    pending = ms(NEW_YORK, 2024, 6, 1, 9, 0)
    now = pending + 59_000
    assert decide(rule, pending, now) == (pending, ms(NEW_YORK, 2024, 6, 2, 9, 0))


def test_cron_jitter_shifts_every_occurrence() -> None:
    rule = cron("0 9 * * *", "UTC", offset_ms=1234)
    start = ms("UTC", 2024, 6, 1, 0, 0)
    assert upcoming(rule, start, 2) == [
        ms("UTC", 2024, 6, 1, 9, 0) + 1234,
        ms("UTC", 2024, 6, 2, 9, 0) + 1234,
    ]


# -- validation and encoding -----------------------------------------------------------------


def test_rules_round_trip_through_their_stored_form() -> None:
    made = Cron("*/5 * * * *", timezone=PARIS, misfire="skip", grace=30).place("a")
    stored = b"c|||" + made.encode_tail()
    assert rules.decode(stored) == (made, "", "")
    every = Every(timedelta(seconds=1.5)).place("a")
    assert isinstance(every.rule, Every) and every.rule.every_ms == 1500
    stored = b"e|7|" + every.encode_tail()
    assert rules.decode(stored)[0] == Placed(Every(1.5, grace=60), start_ms=7)


def test_jitter_is_a_fixed_offset_per_job_below_it() -> None:
    offsets = {Every(60, jitter=10).place(f"j{n}").start_ms for n in range(50)}
    assert len(offsets) > 10 and all(0 <= o < 10_000 for o in offsets)
    again = Every(60, jitter=10).place("j1").start_ms
    assert again == Every(60, jitter=10).place("j1").start_ms


def test_the_core_imports_and_every_n_rules_work_without_croniter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "croniter", None)  # as if not installed
    assert Every(5).every_ms == 5000
    with pytest.raises(ImportError, match=r"pip install '\.\[cron\]' in rache's checkout"):
        Cron("* * * * *")


# -- the claim script computes every-N rules exactly as decide() does -------------------------


@settings(max_examples=40, deadline=None)
@given(
    every=st.integers(1, 5000),
    back=st.integers(0, 20_000),
    moved=st.integers(-20_000, 0),
    misfire=st.sampled_from(["coalesce", "skip"]),
    grace=st.integers(0, 3000),
)
def test_the_claim_script_agrees_with_decide(
    server: harness.RedisServer, every: int, back: int, moved: int, misfire: str, grace: int
) -> None:
    raw = server.client()
    raw.flushdb()
    sched = Scheduler(raw, prefix="rache:")
    now = int(raw.time()[0]) * 1000
    start = now - back
    sched.schedule_recurring(
        "r",
        Every(every / 1000, misfire=misfire, grace=grace / 1000),
        start=start / 1000,
    )
    sched.schedule_job("r", moved / 1000)  # the rule resumes from an arbitrary past time
    pending = wire.time_ms(repr(raw.zscore("rache:queue", "r")).encode())
    claim = sched.claim()
    jobs = sched.claim_batch(claim)
    assert jobs is not None
    rule = Placed(Every(every / 1000, misfire=misfire, grace=grace / 1000), start_ms=start)
    run, following = decide(rule, pending, wire.now_ms(claim.cutoff))
    assert [job.due_at for job in jobs] == (
        [] if run is None else [pytest.approx(run / 1000, abs=1e-9)]
    )
    assert wire.time_ms(repr(raw.zscore("rache:queue", "r")).encode()) == following
    raw.close()
