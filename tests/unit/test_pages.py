"""The paged readings (scheduled_jobs, export_jobs), on canned page-1.lua / export-3.lua pages."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from rache import pages
from rache.keys import Layout
from rache.scripts import EXPORT, PAGE, Call

PLAIN = Layout("rache:")
SHARDED = Layout("rache:", 3)
KEYS = PLAIN.keys


def drive(flow: pages.Flow, replies: Dict[bytes, List[List[Any]]]) -> Tuple[List[Any], List[Any]]:
    """Run a flow on canned replies (per queue key, in order); (calls made, entries)."""
    calls: List[Call] = []
    out: List[Any] = []
    while (call := flow.next_call()) is not None:
        calls.append(call)
        out.append(flow.take(replies[call.keys[0]].pop(0)))
    assert all(not left for left in replies.values()), "a canned page was never asked for"
    return calls, out


# -- one shard -------------------------------------------------------------------------------


def test_pages_anchor_on_the_last_entry_of_a_full_page() -> None:
    flow = pages.Pages(KEYS, 2, with_times=True)
    replies = {KEYS.queue: [[b"a", b"1", b"b", b"2.5"], [b"c", b"3"]]}
    calls, out = drive(flow, replies)
    assert calls == [
        Call(PAGE, [b"rache:queue"], [2, b"", b""]),
        Call(PAGE, [b"rache:queue"], [2, b"b", b"2.5"]),  # strictly after b at 2.5
    ]
    assert out == [[("a", 1), ("b", 2.5)], [("c", 3)]]
    assert flow.done


def test_a_full_last_page_costs_one_empty_page() -> None:
    flow = pages.Pages(KEYS, 2, with_times=False)
    calls, out = drive(flow, {KEYS.queue: [[b"a", b"1", b"b", b"2"], []]})
    assert [call.args for call in calls] == [[2, b"", b""], [2, b"b", b"2"]]
    assert out == [["a", "b"], []]


def test_an_empty_schedule_is_one_call() -> None:
    calls, out = drive(pages.Pages(KEYS, 500, False), {KEYS.queue: [[]]})
    assert len(calls) == 1 and out == [[]]


def test_page_ids_that_are_not_utf8_stay_bytes() -> None:
    flow = pages.Pages(KEYS, 5, with_times=True)
    assert flow.take([b"\xff", b"1", b"\xc3\xa9", b"2"]) == [(b"\xff", 1), ("\u00e9", 2)]


def export_page(
    jobs: Sequence[Tuple[bytes, bytes, Dict[bytes, bytes]]],
    tokens: Optional[List[Any]] = None,
    rules: Optional[List[Any]] = None,
) -> List[Any]:
    reply: List[Any] = [tokens, rules]  # export-3.lua's head: runs and rules, in page order
    for raw_id, due, data in jobs:
        reply += [raw_id, due, len(data)]
        for field, value in data.items():
            reply += [field, value]
    return reply


def test_exports_decode_data_and_anchor_on_the_last_job() -> None:
    flow = pages.Exports(KEYS, 2)
    first = export_page(
        [(b"a", b"1", {b"k": b"7", b"s": b"x"}), (b"b", b"2.5", {b"raw": b"\xff", b"n": b"-3"})]
    )
    second = export_page([(b"c", b"3", {})])
    calls, out = drive(flow, {KEYS.queue: [first, second]})
    named = [b"rache:queue", b"rache:recurring", b"rache:runs"]
    assert calls == [
        Call(EXPORT, named, [b"rache:job:", 2, b"", b""]),
        # the last job's id and due time, not the last two items of the reply (its data)
        Call(EXPORT, named, [b"rache:job:", 2, b"b", b"2.5"]),
    ]
    assert out == [
        [
            ("a", 1, {"k": 7, "s": "x"}, None, None),
            ("b", 2.5, {"raw": b"\xff", "n": -3}, None, None),
        ],
        [("c", 3, {}, None, None)],
    ]
    data = out[0][0][2]
    assert "id" not in data and data.due_at == 1  # a Job, without its id


def test_exports_carry_each_job_run_token_and_rule() -> None:
    flow = pages.Exports(KEYS, 5)
    jobs = [(b"a", b"1", {}), (b"e", b"2", {b"k": b"v"}), (b"old", b"3", {})]
    rule = b"e|1000|60000|c|60000"
    reply = export_page(jobs, [b"\x01" * 8, None, None], [None, rule, None])
    assert flow.take(reply) == [
        ("a", 1, {}, "0101010101010101", None),  # a plain job's run, as occurrence ids show it
        ("e", 2, {"k": "v"}, None, rule.decode()),  # a recurring job's rule, as stored
        ("old", 3, {}, None, None),  # scheduled before runs existed
    ]
    assert flow.take(export_page([])) == [] and flow.done


# -- several shards, merged ------------------------------------------------------------------

Q = [keys.queue for keys in SHARDED.shards]


def page(*entries: Tuple[str, float]) -> List[Any]:
    reply: List[Any] = []
    for name, due in entries:
        reply += [name.encode(), repr(due).encode() if due % 1 else b"%d" % due]
    return reply


def test_merged_pages_come_earliest_first_and_read_a_shard_only_when_it_is_used_up() -> None:
    flow = pages.Merged([pages.Pages(keys, 2, True) for keys in SHARDED.shards])
    replies = {
        Q[0]: [page(("a1", 1), ("a2", 5)), page()],
        Q[1]: [page(("b1", 2), ("b2", 3)), page(("b3", 6))],
        Q[2]: [page(("c1", 4))],
    }
    calls, out = drive(flow, replies)
    assert [(Q.index(call.keys[0]), call.args) for call in calls] == [
        (0, [2, b"", b""]),
        (1, [2, b"", b""]),
        (2, [2, b"", b""]),  # nothing is handed out before every shard's first entry is known
        (1, [2, b"b2", b"3"]),  # shard 1 used up first (b1, b2); shard 0 still holds a2
        (0, [2, b"a2", b"5"]),
    ]
    assert out == [
        [],
        [],
        [("a1", 1), ("b1", 2), ("b2", 3)],
        [("c1", 4), ("a2", 5)],
        [("b3", 6)],
    ]


def test_merged_pages_of_two_shards_interleave() -> None:
    keys = SHARDED.shards[:2]
    flow = pages.Merged([pages.Pages(k, 3, True) for k in keys])
    replies = {
        Q[0]: [page(("a", 1), ("c", 3), ("e", 5)), page(("g", 7.5))],
        Q[1]: [page(("b", 2), ("d", 4))],
    }
    _, out = drive(flow, replies)
    merged = [entry for entries in out for entry in entries]
    assert merged == [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("g", 7.5)]


@pytest.mark.parametrize("with_times", [False, True])
def test_scheduled_on_shards_gives_ids_or_pairs(with_times: bool) -> None:
    flow = pages.scheduled(SHARDED, 2, with_times)
    assert isinstance(flow, pages.Merged)
    replies = {Q[0]: [page(("x", 2))], Q[1]: [page(("y", 1))], Q[2]: [page()]}
    _, out = drive(flow, replies)
    merged = [entry for entries in out for entry in entries]
    assert merged == ([("y", 1), ("x", 2)] if with_times else ["y", "x"])


def test_scheduled_on_one_shard_is_its_pages() -> None:
    flow = pages.scheduled(PLAIN, 7, False)
    assert isinstance(flow, pages.Pages) and flow.count == 7 and not flow.with_times


def test_exported_on_shards_merges_exports() -> None:
    flow = pages.exported(SHARDED, 2)
    replies = {
        Q[0]: [export_page([(b"x", b"2", {b"k": b"1"})])],
        Q[1]: [export_page([(b"y", b"1.5", {})])],
        Q[2]: [export_page([(b"z", b"3", {b"v": b"w"})])],
    }
    calls, out = drive(flow, replies)
    assert {call.script for call in calls} == {EXPORT}
    assert [call.args[0] for call in calls] == [keys.job_prefix for keys in SHARDED.shards]
    merged = [entry for entries in out for entry in entries]
    assert merged == [
        ("y", 1.5, {}, None, None),
        ("x", 2, {"k": 1}, None, None),
        ("z", 3, {"v": "w"}, None, None),
    ]


def test_exported_on_one_shard_is_its_exports() -> None:
    flow: Optional[pages.Flow] = pages.exported(PLAIN, 3)
    assert isinstance(flow, pages.Exports) and flow.count == 3
