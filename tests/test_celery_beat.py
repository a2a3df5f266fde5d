"""Celery beat on rache (``rache.celery.BeatScheduler``), with real ``celery beat`` processes.

Beats run as subprocesses on a real broker (a Redis server the session started, and the
RabbitMQ of this machine when one answers), and what reaches the broker is counted by a real
consumer (kombu, reading the queues as a worker does).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List
from zoneinfo import ZoneInfo

import pytest
import redis

pytest.importorskip("celery")

from celery import Celery
from celery.beat import BeatLazyFunc
from celery.schedules import crontab, schedule, solar

from rache import Cron, Every, JobNotFound, Scheduler
from rache.celery import BeatScheduler, cron_expression, declaration, prefix, redis_url
from tests.support import harness
from tests.support.beats import AMQP_URL, Beat, Collector, Received, amqp_answers, start_beat
from tests.support.helpers import snapshot

pytestmark = pytest.mark.slow
PREFIX = "beat-test:"


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest, solo: harness.RedisServer, solo_raw: Any) -> str:
    """The broker's URL: the session's Redis, or this machine's RabbitMQ (skip if none)."""
    if request.param == "amqp":
        reason = amqp_answers()
        if reason is not None:
            pytest.skip(reason)
        return AMQP_URL
    return solo.url


def environment(
    solo: harness.RedisServer, broker: str, schedule: Dict[str, Any], **more: str
) -> Dict[str, str]:
    """The beat app's settings (see tests/support/beatapp.py): rache's Redis is the session's."""
    env = {"BEAT_BROKER": broker, "BEAT_PREFIX": PREFIX, "BEAT_SCHEDULE": json.dumps(schedule)}
    if broker != solo.url:
        env["BEAT_RACHE_URL"] = solo.url  # else the broker URL, a Redis one, is rache's too
    env.update(more)
    return env


def dues(messages: List[Received], name: str) -> List[float]:
    """The occurrence due times that the task ids of ``name``'s messages carry.

    An id is ``<entry>:<due time>``; a recurring job moved by ``schedule_job`` hands its
    next occurrence out with a run token after it (``<entry>:<due time>:<run>``).
    """
    out = []
    for message in messages:
        assert message.id.startswith(f"{name}:"), message.id
        out.append(float(message.id[len(name) + 1 :].split(":")[0]))
    return out


@pytest.fixture
def beats() -> Iterator[List[Beat]]:
    """The beats a test starts: each one stopped at the end, whatever happened."""
    started: List[Beat] = []
    yield started
    for beat in started:
        beat.stop()


def test_three_beats_send_each_occurrence_once_through_a_kill(
    tmp_path: Path, solo: harness.RedisServer, broker: str, beats: List[Beat]
) -> None:
    run = uuid.uuid4().hex[:8]
    default, reports = f"beat-{run}", f"reports-{run}"
    schedule = {
        "tick": {"task": "beat.tick", "every": 1, "args": [1, 2], "kwargs": {"k": "v"}},
        "report": {
            "task": "beat.report",
            "every": 2,
            "options": {
                "queue": reports,
                "expires": 30,
                "priority": 5,
                "headers": {"x-origin": "rache-test"},
            },
        },
    }
    env = environment(solo, broker, schedule, BEAT_QUEUE=default)
    with Collector(broker, [default, reports]) as collector:
        beats += [start_beat(tmp_path, f"beat{n}", env) for n in range(3)]
        collector.wait_for("beat.tick", 3, timeout=30)
        # Kill the beat that sent last: the others must go on without a gap.
        victim = max(beats, key=lambda beat: beat.last_sent_at())
        victim.kill()
        killed_at = time.time()
        time.sleep(4)
        for beat in beats:
            if beat is not victim:
                assert beat.stop() == 0, beat.text()
        time.sleep(0.5)
    ticks = collector.by_task("beat.tick")
    after = [message for message in ticks if message.at > killed_at]
    assert len(after) >= 3, [m.id for m in ticks]
    # Each occurrence exactly once, its task id its occurrence id, none missed.
    ids = [message.id for message in collector.messages]
    assert len(ids) == len(set(ids))
    times = dues(ticks, "tick")
    assert times == sorted(times)
    steps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    assert steps == [1.0] * len(steps), times
    # No gap beyond one interval: each message reached the broker within 1 s of its time.
    lags = [message.at - due for message, due in zip(ticks, times)]
    assert max(lags) < 1.0, lags
    assert all(message.queue == default for message in ticks)
    assert ticks[0].body[0] == [1, 2] and ticks[0].body[1] == {"k": "v"}
    # What the beats logged is what reached the broker; the killed one had sent some.
    sent = sum(beat.sent().count("tick") for beat in beats)
    assert sent == len(ticks) and victim.sent()
    # Options: the named queue, expires, priority and headers.
    [first, *_] = collector.by_task("beat.report")
    assert first.queue == reports and first.id.startswith("report:")
    assert first.properties["priority"] == 5
    assert first.headers["x-origin"] == "rache-test"
    expires = datetime.fromisoformat(first.headers["expires"])
    assert abs((expires - datetime.now(timezone.utc)).total_seconds() - 30) < 15
    report_times = dues(collector.by_task("beat.report"), "report")
    assert len(report_times) == len(set(report_times))


def test_a_restart_keeps_replaces_and_removes_entries(
    tmp_path: Path, solo: harness.RedisServer, solo_raw: Any, beats: List[Beat]
) -> None:
    rache = Scheduler(solo_raw, PREFIX)
    rache.schedule_job("not-beats", 3600, owner="someone else")  # under the same prefix
    first = {
        "keep": {"task": "beat.keep", "every": 1},
        "change": {"task": "beat.change", "every": 60},
        "remove": {"task": "beat.remove", "every": 60},
    }
    second = {
        "keep": {"task": "beat.keep", "every": 1, "args": [2]},
        "change": {"task": "beat.change", "every": 1.5},
        "new": {"task": "beat.new", "crontab": {"minute": 0, "hour": 4}},
    }
    with Collector(solo.url, ["celery"]) as collector:
        beats.append(start_beat(tmp_path, "first", environment(solo, solo.url, first)))
        collector.wait_for("beat.keep", 2)
        assert beats[0].stop() == 0
        change_before = rache.job_details("change")["schedule_at"]
        beats.append(start_beat(tmp_path, "second", environment(solo, solo.url, second)))
        beats[1].wait_for("rache: removed: remove")
        collector.wait_for("beat.change", 2)
        collector.wait_for("beat.keep", 5)
        beats[1].stop()
        time.sleep(0.3)
    log = beats[1].text()
    assert "rache: new: new" in log and "rache: replaced: change" in log
    # keep: the same rule, kept as it ran: every occurrence on one cadence across the restart.
    keep = dues(collector.by_task("beat.keep"), "keep")
    assert all(abs((due - keep[0]) - round(due - keep[0])) < 0.0005 for due in keep), keep
    assert len(keep) == len(set(keep))
    assert collector.by_task("beat.keep")[-1].body[0] == [2]  # its args updated
    # change: replaced by its new rule, from the restart on.
    details = rache.job_details("change")
    assert details["recurring"]["every"] == 1.5 and details["schedule_at"] != change_before
    change = dues(collector.by_task("beat.change"), "change")
    assert [round(b - a, 3) for a, b in zip(change, change[1:])] == [1.5] * (len(change) - 1)
    # remove: gone from rache and from the record; new: a cron rule; others' job untouched.
    with pytest.raises(JobNotFound):
        rache.job_details("remove")
    assert not collector.by_task("beat.remove")
    recorded = {key.decode() for key in solo_raw.hkeys(f"{PREFIX}celery:entries")}
    assert recorded == {"keep", "change", "new", "celery.backend_cleanup"}
    assert rache.job_details("new")["recurring"]["cron"] == "0 4 * * *"
    assert rache.job_details("not-beats")["owner"] == "someone else"


def test_a_crontab_runs_on_the_wall_clock_of_the_apps_timezone(
    tmp_path: Path, solo: harness.RedisServer, solo_raw: Any, beats: List[Beat]
) -> None:
    zone = ZoneInfo("Asia/Kathmandu")  # UTC+05:45: no whole-hour offset can pass for it
    hour = datetime.now(zone).hour
    hours = ",".join(map(str, sorted({hour, (hour + 1) % 24})))
    schedule = {"nepal": {"task": "beat.nepal", "crontab": {"minute": "*", "hour": hours}}}
    env = environment(solo, solo.url, schedule, BEAT_TZ="Asia/Kathmandu")
    rache = Scheduler(solo_raw, PREFIX)
    with Collector(solo.url, ["celery"]) as collector:
        beats.append(start_beat(tmp_path, "declare", env))
        beats[0].wait_for("rache: new: ")
        assert "rache: new: celery.backend_cleanup, nepal" in beats[0].text()
        assert beats[0].stop() == 0
        details = rache.job_details("nepal")
        assert details["recurring"]["timezone"] == "Asia/Kathmandu"
        assert details["recurring"]["cron"] == f"* {hours} * * *"
        # Its next occurrence: the next minute on Kathmandu's clock, not UTC's.
        upcoming = datetime.fromtimestamp(details["schedule_at"], zone)
        assert upcoming.second == 0 and upcoming.hour in (hour, (hour + 1) % 24)
        assert 0 < details["schedule_at"] - time.time() <= 61
        # Move the rule's resume time 90 s back: the last minute's occurrence is due now, and
        # a beat started anew (the same rule, kept) sends it at once.
        rache.schedule_job("nepal", -90)
        beats.append(start_beat(tmp_path, "send", env))
        collector.wait_for("beat.nepal", 1)
        beats[1].stop()
    [message] = collector.by_task("beat.nepal")
    [due] = dues([message], "nepal")
    wall = datetime.fromtimestamp(due, zone)
    assert wall.second == 0 and wall.hour in (hour, (hour + 1) % 24)
    assert time.time() - 95 < due <= time.time()


def test_a_solar_entry_stops_the_beat_at_start_naming_it_and_writes_nothing(
    tmp_path: Path, solo: harness.RedisServer, solo_raw: Any
) -> None:
    schedule = {
        "fine": {"task": "beat.fine", "every": 5},
        "sunset": {"task": "beat.sunset", "solar": ["sunset", 48.85, 2.35]},
    }
    before = snapshot(solo_raw)
    beat = start_beat(tmp_path, "solar", environment(solo, solo.url, schedule))
    assert beat.process.wait(30) != 0
    assert "beat_schedule entry 'sunset': solar schedules are not supported" in beat.text()
    assert snapshot(solo_raw) == before


# -- in-process: the settings, what each entry becomes, what is refused ---------------------


def app_with(**settings: Any) -> Celery:
    """A Celery app with these settings (no broker connection is made)."""
    app = Celery("unit", broker=settings.pop("broker", "amqp://guest@localhost//"))
    app.conf.update(settings)
    return app


def test_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RACHE_REDIS_PREFIX", raising=False)
    assert redis_url(app_with()) == "redis://localhost:6379/0"
    assert redis_url(app_with(broker="redis://broker:6380/2")) == "redis://broker:6380/2"
    assert redis_url(app_with(broker="redis+socket:///tmp/r.sock")) == "unix:///tmp/r.sock"
    monkeypatch.setenv("REDIS_URL", "redis://env:6379/1")
    assert redis_url(app_with(broker="redis://broker:6380/2")) == "redis://env:6379/1"
    setting = app_with(broker="redis://broker/2", rache_redis_url="redis://setting:1/3")
    assert redis_url(setting) == "redis://setting:1/3"
    assert prefix(app_with()) == "rache:"
    monkeypatch.setenv("RACHE_REDIS_PREFIX", "env:")
    assert prefix(app_with()) == "env:"
    assert prefix(app_with(rache_prefix="mine:")) == "mine:"
    assert prefix(app_with(rache_prefix="")) == ""


def entry_of(app: Celery, name: str, **spec: Any) -> Any:
    """The Celery ScheduleEntry that beat builds from one beat_schedule entry."""
    return BeatScheduler.Entry(name=name, app=app, **spec)


def test_each_kind_of_entry_and_the_refused_ones() -> None:
    app = app_with(timezone="Europe/Paris")
    assert declaration("n", entry_of(app, "n", task="t", schedule=30)).rule == Every(30)
    interval = entry_of(app, "d", task="t", schedule=timedelta(minutes=2))
    assert declaration("d", interval).describe() == "Every(120)"  # the rule's repr
    weekday = entry_of(app, "c", task="t", schedule=crontab(minute="*/15", day_of_week="mon-fri"))
    made = declaration("c", weekday)
    assert made.rule == Cron("0,15,30,45 * * * 1-5", timezone="Europe/Paris")
    assert made.describe() == "Cron('0,15,30,45 * * * 1-5', timezone='Europe/Paris')"
    assert cron_expression(crontab(minute=0, hour=4)) == "0 4 * * *"
    refused = {
        "solar": dict(task="t", schedule=solar("sunrise", 0, 0)),
        "both days": dict(task="t", schedule=crontab(day_of_month=1, day_of_week="mon")),
        "zero": dict(task="t", schedule=schedule(timedelta(0))),
        "lazy": dict(task="t", schedule=5, args=[BeatLazyFunc(time.time)]),
        "object": dict(task="t", schedule=5, kwargs={"x": object()}),
        "no task": dict(task="", schedule=5),
    }
    for name, spec in refused.items():
        with pytest.raises(ValueError, match=f"beat_schedule entry {name!r}: "):
            declaration(name, entry_of(app, name, **spec))


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/Europe/Paris"])
def test_a_crontab_in_a_zone_that_is_no_place_is_refused_naming_the_setting(zone: str) -> None:
    """Such a zone means another clock on each beat's host: refused, as rache.Cron does."""
    app = app_with(timezone=zone)
    try:
        app.timezone  # noqa: B018 (Celery loads the zone here)
    except Exception:
        pytest.skip(f"this host has no zone {zone!r} for Celery to load")
    entry = entry_of(app, "c", task="t", schedule=crontab(minute=0))
    setting = re.escape(
        "beat_schedule entry 'c': the app's timezone setting (app.conf.timezone): "
        f"timezone {zone!r} is not an IANA location zone"
    )
    with pytest.raises(ValueError, match=f"^{setting}"):
        declaration("c", entry)
    # An interval entry has no zone; 'UTC' and a place's zone are taken.
    assert declaration("n", entry_of(app, "n", task="t", schedule=30)).rule == Every(30)
    for fine in ("UTC", "Etc/GMT+5", "Europe/Paris"):
        made = declaration(
            "c", entry_of(app_with(timezone=fine), "c", task="t", schedule=crontab(minute=0))
        )
        assert made.rule == Cron("0 * * * *", timezone=fine)


def test_a_job_of_the_prefix_that_beat_did_not_make_is_refused_and_nothing_changes(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    Scheduler(solo_raw, PREFIX).schedule_job("report", 3600, owner="someone else")
    before = snapshot(solo_raw)
    app = app_with(rache_redis_url=solo.url, rache_prefix=PREFIX, result_expires=None)
    app.conf.beat_schedule = {
        "other": {"task": "t", "schedule": 10},
        "report": {"task": "t", "schedule": 10},
    }
    with pytest.raises(ValueError, match="entry 'report': a job of that id is already sched"):
        BeatScheduler(app)
    assert snapshot(solo_raw) == before


def test_a_stored_rule_that_differs_only_in_its_options_is_replaced(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    """Misfire and grace are part of the rule: a job whose rule differs only there is redone.

    As an entry's rule changed: the every-N job starts anew one interval from the
    declaration (Celery's beat), the cron job takes the entry's options, and both are
    reported replaced.
    """
    app = app_with(rache_redis_url=solo.url, rache_prefix=PREFIX, result_expires=None)
    app.conf.beat_schedule = {
        "every": {"task": "t", "schedule": 600},
        "cron": {"task": "t", "schedule": crontab(minute=0)},
    }
    scheduler = BeatScheduler(app)
    try:
        rache = scheduler.rache
        assert solo_raw.hget(f"{PREFIX}celery:entries", "every") == b"Every(600)"
        # The same rules with other options, as an older declaration may have stored them.
        rache.schedule_recurring("every", Every(600, misfire="skip", grace=5), start=0)
        rache.schedule_recurring("cron", Cron("0 * * * *", misfire="skip", grace=5))
        report = scheduler.declare()
        assert sorted(report["replaced"]) == ["cron", "every"]
        for name in ("every", "cron"):
            rule = rache.job_details(name)["recurring"]
            assert (rule["misfire"], rule["grace"]) == ("coalesce", 60), name
        now = rache.server_time()
        assert now + 599 <= rache.job_details("every")["schedule_at"] <= now + 600
        assert sorted(scheduler.declare()["kept"]) == ["cron", "every"]  # now the same
    finally:
        scheduler.close()


def test_an_idle_beat_tick_sleeps_until_the_next_occurrence(
    solo: harness.RedisServer, solo_raw: Any
) -> None:
    app = app_with(rache_redis_url=solo.url, rache_prefix=PREFIX, result_expires=None)
    app.conf.beat_schedule = {
        "slow": {"task": "t", "schedule": 7},
        "slower": {"task": "t", "schedule": 600},
    }
    scheduler = BeatScheduler(app)
    try:
        wait = scheduler.tick()  # nothing due: the first occurrence is 7 s after the start
        assert 6 < wait <= 7.01
        scheduler.max_interval = scheduler.loop.max_sleep = 3
        assert scheduler.tick() == 3
    finally:
        scheduler.close()
    assert isinstance(solo_raw, redis.Redis)


def test_crontab_occurrences_are_celerys_own(solo: harness.RedisServer, solo_raw: Any) -> None:
    zone = ZoneInfo("Europe/Paris")
    specs: Dict[str, Dict[str, Any]] = {
        "office": {"minute": "*/15", "hour": "9-17", "day_of_week": "mon-fri"},
        "fortnight": {"minute": 0, "hour": 0, "day_of_month": "1,15"},
        "quarterly": {"minute": 0, "hour": 12, "day_of_month": 1, "month_of_year": "*/3"},
        "sunday": {"minute": 59, "hour": 23, "day_of_week": "sun"},
    }
    app = app_with(rache_redis_url=solo.url, rache_prefix=PREFIX, timezone="Europe/Paris")
    app.conf.beat_schedule = {
        name: {"task": "t", "schedule": crontab(**spec)} for name, spec in specs.items()
    }
    BeatScheduler(app).close()
    rache = Scheduler(solo_raw, PREFIX)
    for name, spec in specs.items():
        ours = rache.job_details(name)["next_occurrences"]
        # Celery's own: from now, each next run after the one before (DST crossed too).
        at = datetime.now(zone)
        theirs = []
        for _ in ours:
            fixed = at
            rule = crontab(**spec, nowfun=lambda fixed=fixed: fixed, app=app)
            # remaining_estimate is elapsed time (Celery corrects it across DST changes)
            elapsed = rule.remaining_estimate(at).total_seconds()
            at = datetime.fromtimestamp(at.timestamp() + elapsed, zone)
            theirs.append(at.timestamp())
        assert ours == [int(t) for t in theirs], name


def test_a_redis_outage_is_ridden_out_with_backoff(
    tmp_path: Path, solo: harness.RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = harness.start(solo.spec, tmp_path)
    app = app_with(rache_redis_url=server.url, rache_prefix=PREFIX, result_expires=None)
    app.conf.beat_schedule = {"soon": {"task": "t", "schedule": 0.2}}
    scheduler = BeatScheduler(app)
    try:
        server.crash()
        waits = [scheduler.tick() for _ in range(3)]  # no exception: backoff delays
        assert all(0 < wait <= 30 for wait in waits), waits
        assert scheduler.loop.errors == 3
        outages = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(outages) == 1  # logged once, when it began
    finally:
        scheduler.close()
        server.stop()


def test_a_job_that_holds_no_beat_entry_is_logged_counted_and_skipped(
    solo: harness.RedisServer, solo_raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The tick is one round of the Dispatcher's hand-out loop: its errors, its counts.
    app = app_with(rache_redis_url=solo.url, rache_prefix=PREFIX, result_expires=None)
    app.conf.beat_schedule = {}
    scheduler = BeatScheduler(app)
    try:
        Scheduler(solo_raw, PREFIX).schedule_job("stray", -1, x=1)  # not the beat's own
        assert scheduler.tick() == 25  # nothing more to come: max_interval
        assert (scheduler.loop.claimed, scheduler.loop.handled, scheduler.loop.failed) == (1, 0, 1)
        [record] = [r for r in caplog.records if r.name == "rache.dispatch"]
        assert "'stray'" in record.getMessage() and record.exc_info is not None
        assert "holds no beat entry" in str(record.exc_info[1])
    finally:
        scheduler.close()
