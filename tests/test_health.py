"""Health of recurring jobs: no success in N occurrences, K failures in a row.

rache doctor's exit codes for each; the gauges of each job's last success; one poller name.

Real servers; short periods (1 s) so that occurrences pass while the test waits.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Dict, List

import pytest
from click.testing import CliRunner

from rache import Dispatcher, Every, Poller, Scheduler
from rache.cli import main
from rache.constants import HEALTH_JOBS
from tests.support import harness as testing
from tests.test_pollers import durable, poller, wait_for  # noqa: F401 (a fixture)


def rounds(sched: Any, outcomes: Dict[str, Any], count: int) -> None:
    """``count`` claims a period (1 s) apart; each job's run finished as ``outcomes`` says.

    ``outcomes[job](i)``: None (succeeded), a text (failed), or ... (left running).
    """
    for i in range(count):
        if i:
            time.sleep(1.05)
        for job in list(sched.pending_jobs()):
            outcome = outcomes[job["id"]](i)
            if outcome is not ...:
                assert sched.finish_run(job.occurrence_id, outcome)


def kinds(health: Any) -> List[Any]:
    return sorted((p.kind, p.job_id) for p in health.problems)


@pytest.mark.one_client_kind  # seconds of 1 s periods: the logic, once per topology
def test_stale_and_failing_recurring_jobs(sched: Any) -> None:
    sched.announce(poller())
    for job_id in ("failing", "stopped", "fine"):
        sched.schedule_recurring(job_id, Every(1))
    rounds(
        sched,
        {
            "failing": lambda i: f"boom {i}",
            "stopped": lambda i: None if i == 0 else ...,  # one success, then no outcome
            "fine": lambda i: None,
        },
        4,
    )
    sched.schedule_recurring("new", Every(1))  # brand new: not stale
    health = sched.health(stale_periods=3, failed_in_a_row=3)
    assert not health.ok
    assert kinds(health) == [
        ("failing", "failing"),
        ("no success", "failing"),
        ("no success", "stopped"),
    ]
    [failing] = [p for p in health.problems if p.kind == "failing"]
    assert "failed its last 4 runs in a row (the newest: boom 3)" in failing.message
    by_id = {runs.job_id: runs for runs in health.recurring}
    assert [runs.job_id for runs in health.recurring] == ["failing", "fine", "new", "stopped"]
    assert by_id["failing"].failed_in_a_row == 4 and by_id["failing"].last_success is None
    assert by_id["fine"].failed_in_a_row == 0 and by_id["fine"].missed == 0
    assert by_id["stopped"].last_success is not None and by_id["stopped"].missed == 3
    assert by_id["new"].last_run is None and by_id["new"].missed == 0
    # looser thresholds, or the checks off: healthy
    assert sched.health(stale_periods=10, failed_in_a_row=5).ok
    off = sched.health(stale_periods=0, failed_in_a_row=0)
    assert off.ok and off.recurring == ()
    # a success ends the failures in a row
    time.sleep(1.05)
    rounds(sched, {"failing": lambda i: None, "stopped": lambda i: ..., "fine": lambda i: None,
                   "new": lambda i: None}, 1)  # fmt: skip
    assert "failing" not in [p.kind for p in sched.health(stale_periods=0).problems]


@pytest.mark.one_client_kind  # seconds of 1 s periods: the logic, once per topology
def test_a_job_whose_outcomes_are_not_reported_is_judged_by_its_hand_outs(sched: Any) -> None:
    sched.announce(poller())
    sched.schedule_recurring("beat", Every(1))
    rounds(sched, {"beat": lambda i: ...}, 4)  # handed out each period, never finished
    health = sched.health(stale_periods=3, failed_in_a_row=3)
    assert health.ok, health.problems
    time.sleep(3.2)  # then its hand-outs stop: three occurrences pass
    assert kinds(sched.health(stale_periods=3)) == [("no success", "beat")]


def test_bad_thresholds_are_refused(sched: Any) -> None:
    with pytest.raises(ValueError, match="stale_periods"):
        sched.health(stale_periods=-1)
    with pytest.raises(TypeError, match="failed_in_a_row"):
        sched.health(failed_in_a_row=1.5)


def test_the_jobs_examined_are_bounded() -> None:
    from rache.health import examined

    ids, left_out = examined([f"j{i:05d}" for i in range(HEALTH_JOBS + 7)][::-1])
    assert len(ids) == HEALTH_JOBS and left_out == 7
    assert ids[0] == b"j00000" and ids[-1] == f"j{HEALTH_JOBS - 1:05d}".encode()


# -- rache doctor ------------------------------------------------------------------------------


def doctor(server: testing.RedisServer, *args: str) -> Any:
    return CliRunner().invoke(main, ["--url", server.url, "doctor", *args])


def test_doctor_exits_1_for_each_unhealthy_recurring_job(
    server: testing.RedisServer,
    raw: Any,
    durable: None,  # noqa: F811
) -> None:
    sched = Scheduler(raw)
    sched.announce(poller())
    sched.schedule_recurring("nightly", Every(1))
    healthy = doctor(server)
    assert healthy.exit_code == 0, healthy.output
    assert "1 recurring job checked" in healthy.output
    # an every-1s job claimed and failing three times in a row
    rounds(sched, {"nightly": lambda i: "ValueError: no data"}, 3)
    failing = doctor(server, "--stale-periods", "0", "--failed-in-a-row", "3")
    assert failing.exit_code == 1, failing.output
    assert "FAIL recurring job 'nightly' failed its last 3 runs in a row" in failing.output
    assert doctor(server, "--stale-periods", "0", "--failed-in-a-row", "4").exit_code == 0
    # it succeeds once, then is not handed out for three of its periods
    time.sleep(1.05)
    for job in list(sched.pending_jobs()):
        sched.finish_run(job.occurrence_id)
    time.sleep(1.05)
    assert doctor(server, "--stale-periods", "3", "--failed-in-a-row", "3").exit_code == 0
    time.sleep(3)
    stale = doctor(server, "--stale-periods", "3", "--failed-in-a-row", "0")
    assert stale.exit_code == 1, stale.output
    assert "FAIL recurring job 'nightly' has not succeeded in its last 3 occurrences" in (
        stale.output
    )
    assert doctor(server, "--stale-periods", "100", "--failed-in-a-row", "0").exit_code == 0
    assert doctor(server, "--stale-periods", "-1").exit_code == 2


# -- the gauges --------------------------------------------------------------------------------


def test_the_gauges_give_each_recurring_jobs_last_success(raw: Any) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from rache.service import ScheduleGauges

    sched = Scheduler(raw)
    registry = prometheus_client.CollectorRegistry()
    registry.register(ScheduleGauges(sched))
    sched.schedule_recurring("ok", Every(60))
    sched.schedule_recurring("bad", Every(60))
    sched.schedule_recurring("never", Every(60), start=time.time() + 600)
    before = sched.server_time()
    for job in list(sched.pending_jobs()):
        sched.finish_run(job.occurrence_id, None if job["id"] == "ok" else "boom")
    text = prometheus_client.generate_latest(registry).decode()
    found = re.search(r'^rache_job_last_success_timestamp_seconds\{job="ok"\} (\S+)$', text, re.M)
    assert found is not None and before - 1 < float(found.group(1)) < before + 5
    assert 'rache_job_last_success_timestamp_seconds{job="bad"}' not in text
    assert 'rache_job_failed_in_a_row{job="bad"} 1.0' in text
    assert 'rache_job_failed_in_a_row{job="never"} 0.0' in text


# -- one poller name ---------------------------------------------------------------------------


def run_dispatcher(dispatcher: Dispatcher, sched: Scheduler) -> List[Poller]:
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        return wait_for(  # type: ignore[no-any-return]
            lambda: [p for p in sched.pollers() if p.handed_out == 1], 10, "no announce"
        )
    finally:
        dispatcher.stop()
        thread.join(10)


@pytest.mark.parametrize("named", ["", "scheduler", "dispatcher"])
def test_a_dispatchers_runs_and_its_poller_entry_have_one_name(solo_raw: Any, named: str) -> None:
    sched = Scheduler(solo_raw, name="billing-1" if named == "scheduler" else None)
    sched.schedule_job("a", -1)
    dispatcher = Dispatcher(
        lambda job: None,
        scheduler=sched,
        max_sleep=0.2,
        poller_ttl=3,  # announces every second
        name="billing-2" if named == "dispatcher" else None,
    )
    [found] = run_dispatcher(dispatcher, sched)
    [run] = sched.runs("a")
    assert run.claimed_by == found.name
    expected = {"": sched.name, "scheduler": "billing-1", "dispatcher": "billing-2"}[named]
    assert found.name == expected
