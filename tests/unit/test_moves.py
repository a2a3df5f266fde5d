"""A reshard's flows and an import's restore calls, on canned replies: what each job carries."""

from __future__ import annotations

from typing import Any, Dict, List

from rache import encode, moves
from rache.keys import Layout
from rache.scripts import (
    DELETE_BULK,
    DETAILS,
    EXPORT,
    FORGET,
    RESTORE_BULK,
    SCHEDULE_BULK,
    Call,
)

ONE = Layout("rache:")
THREE = Layout("rache:", 3)
RULE = b"e|1000|60000|c|60000"


def test_a_page_read_is_copied_as_read_with_runs_and_rules_then_removed() -> None:
    plan = moves.Reshard(THREE, 1, 10)
    assert plan.needed and plan.source.count == 1
    flow = plan.scheduled(ONE.keys)
    read = flow.next_call()
    assert read is not None and read.script is EXPORT
    # a (shard 0), b (shard 2): with a run token; g (shard 1): a rule, and data.
    reply: List[Any] = [[b"\x01" * 8, b"\x02" * 8, None], [None, None, RULE]]
    reply += [b"a", b"1", 0, b"b", b"2.5", 0, b"g", b"3", 1, b"lead", b"007"]
    flow.take(reply)
    calls = []
    while (call := flow.next_call()) is not None and call.script is not EXPORT:
        calls.append(call)
        flow.take(1)
    shard = {keys.prefix: keys for keys in THREE.shards}
    restores = {call.keys[0]: call for call in calls if call.script is RESTORE_BULK}
    a, g, b = (shard[p] for p in ("rache:{0-0}:", "rache:{1-1}:", "rache:{2-0}:"))
    assert restores[a.queue] == Call(
        RESTORE_BULK,
        [a.queue, a.recurring, a.runs, a.call_prefix],
        [a.job_prefix, a.wakeup, b"a", b"1", b"\x01" * 8, b"", 0],
    )
    assert restores[b.queue].args[2:] == [b"b", b"2.5", b"\x02" * 8, b"", 0]
    assert restores[g.queue].args[2:] == [b"g", b"3", b"", RULE, 1, b"lead", b"007"]
    keys = ONE.keys
    assert calls[-1] == Call(
        DELETE_BULK,
        [keys.queue, keys.recurring, keys.runs, keys.last_runs, keys.call_prefix],
        [keys.job_prefix, keys.history_prefix, b"a", b"b", b"g"],
    )
    assert plan.moved == 3


def test_data_without_a_schedule_entry_is_read_copied_and_forgotten() -> None:
    plan = moves.Reshard(THREE, 1, 10)
    keys = ONE.keys
    flow = plan.unscheduled(keys, [b"rache:job:a", "rache:job:g", b"rache:job:b"])
    replies: Dict[Any, List[Any]] = {
        b"a": [None, [b"x", b"1"], None],
        b"g": [b"5", [], None],
        b"b": [None, [], None],
    }
    read = []
    while (call := flow.next_call()) is not None and call.script is DETAILS:
        read.append(call.args[0])
        flow.take(replies[call.args[0]])
    assert read == [b"a", b"g", b"b"]
    assert call is not None and call.script is RESTORE_BULK  # only a: unscheduled, with data
    assert call.args[2:] == [b"a", b"", b"", b"", 1, b"x", b"1"]
    flow.take(1)
    forget = flow.next_call()
    assert forget == Call(
        FORGET,
        [keys.queue, keys.last_runs, keys.call_prefix],
        [keys.job_prefix, b"2", keys.history_prefix, b"a"],
    )
    assert flow.next_call() is None and plan.moved == 1


def test_the_scan_pattern_escapes_the_prefix() -> None:
    assert moves.pattern(Layout("a*b[c]:").keys) == rb"a\*b\[c\]:job:*"


def test_an_import_of_exported_jobs_restores_them_in_order() -> None:
    jobs = [
        ("a", 1700000000.25, {"n": 1}, "01" * 8, None),
        ("b", 1700000000, {}),  # three items: scheduled, a new run
        ("c", 1700000001, {}, None, RULE.decode()),
    ]
    calls = list(encode.schedule_bulk(ONE, jobs, True, 10))
    assert [call.script for call in calls] == [RESTORE_BULK, SCHEDULE_BULK, RESTORE_BULK]
    assert calls[0].args[2:] == [b"a", b"1700000000.25", b"\x01" * 8, b"", 1, b"n", b"1"]
    assert calls[2].args[2:] == [b"c", b"1700000001", b"", RULE, 0]
