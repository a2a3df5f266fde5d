"""Call records: a script call sent again with its call id answers as before, changes nothing.

Each test sends one state-changing script call by hand with a fixed call id (as redis-py's
retry of a call whose reply was lost does), lets another client change the schedule in
between where that would make a second run do harm, sends the call again, and checks the
reply is the first one and the second send wrote nothing. ``tests/test_lost_replies.py``
drops real replies on the wire; this is the script's side, exactly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, List

import pytest
import redis

from rache import Cron, constants, encode, scripts
from rache.keys import Layout
from rache.scheduler import Scheduler
from rache.scripts import Call
from tests.support.helpers import run, snapshot

LAYOUT = Layout("rache:")


def send(raw: Any, call: Call, call_id: bytes) -> Any:
    """One EVALSHA of ``call`` with ``call_id`` last, as Script.__call__ sends (the life before).

    Its last key, the record prefix, completed with the id: the record's key.
    """
    script = call.script
    assert script.recorded
    raw.script_load(script.source)
    keys = [*call.keys[:-1], call.keys[-1] + call_id]
    life = constants.CALL_RECORD_TTL * 1000
    command = ("EVALSHA", script.sha, script.numkeys, *keys, *call.args, life, call_id)
    return raw.execute_command(*command, NEVER_DECODE=True)


def again_changes_nothing(raw: Any, call: Call, first: Any, call_id: bytes) -> None:
    before = snapshot(raw)
    assert send(raw, call, call_id) == first
    assert snapshot(raw) == before


def test_every_script_that_writes_is_recorded_and_no_other() -> None:
    writers = {"schedule", "scheduleBulk", "scheduleRecurring", "claim", "advance", "release"}
    writers |= {"delete", "deleteBulk", "restoreBulk", "forget", "finishRun"}
    assert {name for name, script in scripts.SCRIPTS.items() if script.recorded} == writers


def test_the_lifetime_is_an_argument_not_a_lua_literal() -> None:
    source = (Path(scripts.__file__).parent / "lua" / "includes" / "calls.lua").read_text()
    assert "callTtlMs = tonumber(table.remove(ARGV))" in source
    assert not re.search(r"PX', *\d", source)


def test_a_schedule_sent_again_after_a_claim_does_not_schedule_again(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    call = encode.schedule(LAYOUT, "a", 0, {"n": 1})
    first = send(raw, call, b"call-1")
    assert [job["id"] for job in sched.pending_jobs()] == ["a"]  # between run and retry
    again_changes_nothing(raw, call, first, b"call-1")
    assert list(sched.pending_jobs()) == []
    # A new call (a new id) is a new schedule: the record swallows only its own call.
    send(raw, call, b"call-2")
    assert [job["id"] for job in sched.pending_jobs()] == ["a"]


def test_a_bulk_schedule_sent_again_does_not_schedule_again(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    (call,) = list(encode.schedule_bulk(LAYOUT, [("a", 0), ("b", 0, {"x": 1})], False, 500))
    first = send(raw, call, b"bulk")
    assert int(first) == 2
    assert len(list(sched.pending_jobs())) == 2
    again_changes_nothing(raw, call, first, b"bulk")
    assert list(sched.pending_jobs()) == []


def test_a_delete_sent_again_keeps_the_job_scheduled_since(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    sched.schedule_job("a", 60, n=1)
    call = encode.delete(LAYOUT, "a")
    first = send(raw, call, b"del")
    assert int(first) == 2
    sched.schedule_job("a", 60, n=2)  # scheduled again between the run and the retry
    again_changes_nothing(raw, call, first, b"del")
    assert sched.job_details("a")["n"] == 2


def claim_call(reschedule: bool = False) -> Call:
    keys = LAYOUT.keys
    rescheduled = [60000, b"s"] if reschedule else [b"", b""]
    args: List[Any] = [keys.job_prefix, 10, b"", *rescheduled, 5000]
    args += [keys.history_prefix, 20, b"test", 3_600_000, 60_000]  # runs: claim-7.lua
    named = [keys.queue, keys.recurring, keys.runs, keys.aside, keys.clock, keys.last_runs]
    named.append(keys.call_prefix)
    return Call(scripts.CLAIM, named, args)


@pytest.mark.parametrize("reschedule", [False, True], ids=["removed", "rescheduled"])
def test_a_claim_sent_again_hands_out_the_same_batch_and_claims_nothing(
    raw: Any, reschedule: bool
) -> None:
    sched = Scheduler(raw, "rache:")
    sched.schedule_jobs([("a", -2, {"x": 1}), ("b", -1)])
    call = claim_call(reschedule)
    first = send(raw, call, b"claim")
    assert [first[i] for i in (5, 10)] == [b"a", b"b"]
    sched.schedule_job("c", -1)  # due now: a second run would claim it
    before = snapshot(raw)
    again = send(raw, call, b"claim")
    assert snapshot(raw) == before
    assert again[:2] == first[:2] and again[3:] == first[3:]
    assert float(again[2]) == raw.zscore("rache:queue", "c")  # the head, read afresh
    assert [job["id"] for job in sched.pending_jobs()] == ["c"]


def test_a_claim_sent_again_reads_the_data_again(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    sched.schedule_job("a", -1, x=1)
    first = send(raw, claim_call(), b"claim")
    raw.hset("rache:job:a", "x", "2")
    again = send(raw, claim_call(), b"claim")
    assert first[5:] == [b"a", first[6], 1, b"x", b"1"]
    assert again[5:] == [b"a", first[6], 1, b"x", b"2"]


def test_a_put_back_sent_again_does_not_put_back_what_another_poller_claimed(raw: Any) -> None:
    sched = Scheduler(raw, "rache:", batch_size=10)
    sched.schedule_jobs([("a", -3), ("b", -2), ("c", -1)])
    claim = sched.claim()
    call = claim.next_call()
    assert call is not None
    assert [job["id"] for job in claim.take(run(raw, call)) or []] == ["a", "b", "c"]
    put_back = claim.put_back(1)  # 'a' handed out, 'b' and 'c' go back
    assert put_back is not None
    first = send(raw, put_back, b"release")
    assert int(first) == 2
    assert [job["id"] for job in sched.pending_jobs()] == ["b", "c"]  # another poller
    again_changes_nothing(raw, put_back, first, b"release")
    assert list(sched.pending_jobs()) == []


def test_an_advance_sent_again_answers_that_its_lease_held(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    sched.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)
    claim = sched.claim()
    call = claim.next_call()
    assert call is not None and claim.take(run(raw, call)) is None  # the lease is taken
    advance = claim.next_call()
    assert advance is not None and advance.script is scripts.ADVANCE
    first = send(raw, advance, b"advance")
    assert first == [1]
    again_changes_nothing(raw, advance, first, b"advance")


def test_a_record_expires_after_its_lifetime(raw: Any) -> None:
    Scheduler(raw, "rache:").schedule_job("a", 60)
    (record,) = raw.keys(LAYOUT.keys.call_prefix + b"*")
    assert len(record) == len("rache:call:") + 12  # the call id, 12 bytes
    assert constants.CALL_RECORD_TTL * 1000 - 5000 <= raw.pttl(record)
    assert raw.pttl(record) <= constants.CALL_RECORD_TTL * 1000


def test_idle_claims_and_reads_record_nothing(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    assert list(sched.pending_jobs()) == []
    sched.delete_job("nobody")  # a delete records, whatever it removed: it may have written
    assert len(raw.keys("rache:call:*")) == 1
    sched.stats()
    list(sched.scheduled_jobs())
    assert len(raw.keys("rache:call:*")) == 1


@pytest.mark.parametrize("kind", ["hash", "zset"])
def test_a_record_key_of_the_wrong_type_fails_before_any_write(raw: Any, kind: str) -> None:
    Scheduler(raw, "rache:").schedule_job("b", 60, n=1)
    if kind == "hash":
        raw.hset(LAYOUT.keys.call(b"foreign"), "x", "1")
    else:
        raw.zadd(LAYOUT.keys.call(b"foreign"), {"x": 1})
    before = snapshot(raw)
    with pytest.raises(redis.ResponseError, match=f"WRONGTYPE rache:call:foreign holds a {kind}"):
        send(raw, encode.schedule(LAYOUT, "b", 0, {"n": 2}), b"foreign")
    assert snapshot(raw) == before


def forget_call(job_ids: List[bytes]) -> Call:
    keys = LAYOUT.keys
    return encode.forget(keys, job_ids)


def test_a_forget_sent_again_spares_the_data_of_the_next_run(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    sched.schedule_job("a", -1, n=1)
    assert [job["id"] for job in sched.pending_jobs()] == ["a"]  # handed out: off the queue
    first = send(raw, forget_call([b"a"]), b"forget")
    assert first == [b"a"] and not raw.exists("rache:job:a")
    sched.schedule_job("a", -1, n=2)  # the next run, claimed before the retry arrives
    assert [job["n"] for job in sched.pending_jobs()] == [2]
    again_changes_nothing(raw, forget_call([b"a"]), first, b"forget")
    assert sched.job_details("a")["n"] == 2


def test_a_forget_over_a_key_of_the_wrong_type_deletes_nothing(raw: Any) -> None:
    sched = Scheduler(raw, "rache:")
    sched.schedule_jobs([("a", -1, {"n": 1}), ("b", -1, {"n": 2})])
    list(sched.pending_jobs())
    raw.delete("rache:job:b")
    raw.set("rache:job:b", b"foreign")
    before = snapshot(raw)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE rache:job:b holds a string"):
        send(raw, forget_call([b"a", b"b"]), b"forget")
    assert snapshot(raw) == before
