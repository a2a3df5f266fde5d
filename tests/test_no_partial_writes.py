"""No partial writes: a script that would fail part-way fails before its first write.

For every operation that writes and every key it writes, a foreign key of the wrong type (a
string) stands there: the call raises the script's own error, naming the key (Redis's own
WRONGTYPE names none), and every key is as it was, byte for byte (a DUMP of each). Most
run on a plain bytes ``Scheduler(raw)`` on each server; one test runs in every shell and
client kind.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Tuple

import pytest
import redis

from rache import Cron, Every, scripts
from rache.admin import reshard
from rache.keys import Layout
from rache.scheduler import Scheduler
from tests.support.helpers import run, snapshot

#: The run tokens, which every script that schedules, claims or removes plain jobs writes
#: (a call's record, a key of its own call id, is tested in tests/test_call_records.py).
RUNS = "rache:runs"
#: Each job's newest run (README.md, "Run history"), which claims, advances, put-backs and
#: deletes write.
LAST = "rache:lastrun"
JOBS = [("a", -10, {"x": "1"}), ("b", -5, {"x": "2"}), ("c", -1, {"x": "3"})]


def foreign(raw: Any, key: str) -> None:
    """A string in place of whatever ``key`` holds."""
    raw.delete(key)
    raw.set(key, b"foreign")


def refused(raw: Any, key: str, action: Callable[[], Any]) -> None:
    """``action`` fails with the scripts' error naming ``key``, and changes nothing."""
    before = snapshot(raw)
    with pytest.raises(redis.ResponseError) as info:
        action()
    assert re.match(
        rf"WRONGTYPE {re.escape(key)} holds a string, not a (hash|zset)$", str(info.value)
    )
    assert snapshot(raw) == before


def _schedule_job(sched: Scheduler) -> Callable[[], Any]:
    return lambda: sched.schedule_job("b", 0, x=2, y=None)


def _schedule_jobs(sched: Scheduler) -> Callable[[], Any]:
    return lambda: sched.schedule_jobs(
        [("a", 0, {"x": 10}), ("b", 0, {"x": 20}), ("c", 0, {"x": 30})]
    )


def _schedule_recurring(sched: Scheduler) -> Callable[[], Any]:
    return lambda: sched.schedule_recurring("b", Every(60), data={"x": 2})


def _pending(sched: Scheduler) -> Callable[[], Any]:
    return lambda: list(sched.pending_jobs())


def _pending_rescheduled(sched: Scheduler) -> Callable[[], Any]:
    return lambda: list(sched.pending_jobs(reschedule_in=60))


def _delete(sched: Scheduler) -> Callable[[], Any]:
    return lambda: sched.delete_job("b")


#: operation -> (what it does, the keys it writes: a foreign key at each in turn)
OPERATIONS: Dict[str, Tuple[Callable[[Scheduler], Callable[[], Any]], List[str]]] = {
    "schedule_job": (_schedule_job, ["rache:queue", "rache:job:b", RUNS]),
    "schedule_jobs": (_schedule_jobs, ["rache:queue", "rache:job:b", RUNS]),
    "schedule_recurring": (
        _schedule_recurring,
        ["rache:queue", "rache:job:b", "rache:recurring", RUNS],
    ),
    "pending_jobs": (_pending, ["rache:queue", "rache:recurring", "rache:job:b", RUNS, LAST]),
    "pending_jobs-reschedule_in": (
        _pending_rescheduled,
        ["rache:queue", "rache:recurring", "rache:job:b", RUNS, LAST],
    ),
    "delete_job": (_delete, ["rache:queue", "rache:job:b", "rache:recurring", RUNS, LAST]),
}
CASES = [(name, key) for name, (_, keys) in OPERATIONS.items() for key in keys]


def scheduled(raw: Any) -> Scheduler:
    """Due plain jobs with data, a due every-N job and a due cron job: one claim batch."""
    sched = Scheduler(raw, "rache:", batch_size=10)
    sched.schedule_jobs(JOBS)
    sched.schedule_recurring("r", Every(3600), start=0, data={"k": "v"})
    sched.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)
    return sched


@pytest.mark.parametrize(("operation", "key"), CASES, ids=[f"{o}-{k}" for o, k in CASES])
def test_an_operation_with_a_key_of_the_wrong_type_writes_nothing(
    raw: Any, operation: str, key: str
) -> None:
    sched = scheduled(raw)
    foreign(raw, key)
    refused(raw, key, OPERATIONS[operation][0](sched))


@pytest.mark.parametrize("key", ["rache:queue", "rache:recurring", LAST])
def test_an_advance_with_a_key_of_the_wrong_type_writes_nothing(raw: Any, key: str) -> None:
    claim = scheduled(raw).claim()
    while True:  # up to the batch whose cron job awaits its advance
        call = claim.next_call()
        assert call is not None
        if claim.take(run(raw, call)) is None:
            break
    call = claim.next_call()
    assert call is not None and call.script is scripts.ADVANCE
    foreign(raw, key)
    refused(raw, key, lambda: run(raw, call))


@pytest.mark.parametrize("key", ["rache:queue", "rache:recurring", RUNS, LAST])
def test_a_put_back_with_a_key_of_the_wrong_type_writes_nothing(raw: Any, key: str) -> None:
    """The batch puts back plain jobs and an every-N job: the rules are read after the former."""
    sched = Scheduler(raw, "rache:", batch_size=10)
    sched.schedule_jobs(JOBS)
    sched.schedule_recurring("r", Every(3600), start=0, data={"k": "v"})
    claim = sched.claim()
    call = claim.next_call()
    assert call is not None and len(claim.take(run(raw, call)) or []) == 4
    put_back = claim.put_back(0)
    assert put_back is not None
    foreign(raw, key)
    refused(raw, key, lambda: run(raw, put_back))


def test_a_failed_put_back_on_close_is_logged_naming_the_key(
    raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sched = Scheduler(raw, "rache:", batch_size=10)
    sched.schedule_jobs(JOBS)
    sched.schedule_recurring("r", Every(3600), start=0)
    claims = sched.pending_jobs()
    next(claims)
    foreign(raw, "rache:recurring")
    before = snapshot(raw)
    claims.close()  # a put-back that fails is logged, not raised
    assert snapshot(raw) == before
    assert "WRONGTYPE rache:recurring holds a string, not a hash" in caplog.text


@pytest.mark.parametrize("into", ["queue", "job", "runs", "recurring"])
def test_a_reshard_onto_a_key_of_the_wrong_type_writes_nothing(raw: Any, into: str) -> None:
    Scheduler(raw, "rache:").schedule_job("a", 60, x=1)
    target = Layout("rache:", 2).of(b"a")
    names = {
        "queue": target.queue,
        "job": target.job(b"a"),
        "runs": target.runs,  # restoreBulk-4 writes the job's run token there
        "recurring": target.recurring,  # and its rule (or removes one)
    }
    key = names[into].decode()
    foreign(raw, key)
    refused(raw, key, lambda: reshard(raw, "rache:", shards=2))


@pytest.mark.parametrize("key", ["rache:job:b", RUNS, "rache:recurring", LAST])
def test_a_bulk_delete_with_a_key_of_the_wrong_type_writes_nothing(raw: Any, key: str) -> None:
    """The last step of rache.reshard DELs the old hashes: DEL takes a string too, and must not."""
    Scheduler(raw, "rache:").schedule_jobs(JOBS)
    foreign(raw, key)
    keys = Layout("rache:").keys
    named = [keys.queue, keys.recurring, keys.runs, keys.last_runs, keys.call_prefix]
    args = [b"rache:job:", b"rache:history:", b"a", b"b", b"c"]
    refused(raw, key, lambda: scripts.DELETE_BULK(raw, named, args))


@pytest.mark.parametrize("key", ["rache:layout", "rache:queue"])
def test_recording_the_layout_over_a_key_of_the_wrong_type_writes_nothing(
    raw: Any, key: str
) -> None:
    """A sharded scheduler's first call records the shard count; rache:queue is the unsharded."""
    foreign(raw, key)
    refused(raw, key, lambda: Scheduler(raw, "rache:", shards=2).schedule_job("a", 0))


@pytest.mark.parametrize("key", ["rache:queue", "rache:job:b"])
def test_each_shell_and_client_gets_the_error_and_nothing_is_written(
    raw: Any, sched: Any, key: str
) -> None:
    sched.schedule_jobs(JOBS)
    foreign(raw, key)
    refused(raw, key, lambda: sched.schedule_jobs(JOBS))


def test_a_claim_with_its_clock_mark_or_aside_key_of_the_wrong_type_writes_nothing(
    raw: Any,
) -> None:
    """The clock mark is read, and the aside key checked, before the claim's first write."""
    sched = scheduled(raw)
    raw.hset("rache:clock", "a", "b")
    before = snapshot(raw)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE rache:clock holds a hash"):
        list(sched.pending_jobs())
    assert snapshot(raw) == before
    raw.delete("rache:clock")
    raw.hset("rache:recurring", "r", "e|x|y")  # a rule the claim would set aside
    foreign(raw, "rache:aside")
    refused(raw, "rache:aside", lambda: list(sched.pending_jobs()))
