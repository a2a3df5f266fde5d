"""Moves and copies of a schedule carry everything a job has: data, due time, run and rule.

A job copied (``export_jobs`` into ``schedule_jobs(at=True)``) or moved (``reshard``) is the
same job: a claim hands it out as the same occurrence (``Job.occurrence_id``) as a claim of
the schedule left where it was. The reference is a byte-for-byte copy of the keys (DUMP and
RESTORE under another prefix), claimed beside the moved one.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List

import pytest

from rache import Cron, Every, Exported, Scheduler, reshard
from rache.keys import Layout
from tests.support.helpers import job_keys

#: The plain jobs scheduled (each with a run token), plus one recurring job of each kind.
PLAIN = 20


def fill(api: Any) -> None:
    """Plain jobs due (each its run), one not yet due, an every-N and a cron job overdue."""
    api.schedule_jobs(
        [(f"j{i}", -10 - i, {"n": i, "raw": b"\xff", "lead": "007"}) for i in range(PLAIN)]
    )
    api.schedule_job("later", 3600, kept="yes")  # moved, not claimed
    # Occurrences fixed by the rule, not by when the claim runs: the latest of every-N is its
    # start for the next 11 days, the latest of the cron rule the last 1 January.
    api.schedule_recurring("every", Every(10**6), start=int(time.time()) - 1000, data={"k": 1})
    api.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)


def copy_keys(raw: Any, source: str, target: str) -> None:
    """Every key under ``source`` (call records aside) restored under ``target``, byte for byte."""
    for found in list(raw.scan_iter(match=source + "*")):  # every node of a cluster
        key = found if isinstance(found, bytes) else found.encode()
        if b":call:" not in key:
            raw.restore(target.encode() + key[len(source) :], 0, raw.dump(key))


def claimed(api: Any) -> List[str]:
    """The occurrence ids of a claim of everything due, sorted."""
    return sorted(job.occurrence_id for job in api.pending_jobs())


def runs(raw: Any, prefix: str, shards: int) -> int:
    """How many run tokens the schedule keeps, over its shards."""
    return sum(raw.hlen(keys.runs) for keys in Layout(prefix, shards).shards)


def test_a_reshard_hands_out_the_same_occurrences_as_the_schedule_unmoved(raw: Any) -> None:
    fill(Scheduler(raw, "rache:"))
    copy_keys(raw, "rache:", "ref:")
    assert runs(raw, "rache:", 1) == PLAIN + 1

    assert reshard(raw, "rache:", shards=3, batch_size=7) == PLAIN + 3
    assert runs(raw, "rache:", 3) == PLAIN + 1  # every run token moved with its job
    three = Scheduler(raw, "rache:", shards=3)
    assert sorted(three.export_jobs()) == sorted(Scheduler(raw, "ref:").export_jobs())
    copy_keys(raw, "rache:", "mid:")  # the schedule as it stands in 3 shards, to claim below
    assert reshard(raw, "rache:", shards=1, batch_size=7) == PLAIN + 3
    assert runs(raw, "rache:", 1) == PLAIN + 1

    expected = claimed(Scheduler(raw, "ref:"))
    assert len(expected) == PLAIN + 2  # the plain jobs due, one occurrence of each rule
    assert sum(len(occurrence.split(":")) == 3 for occurrence in expected) == PLAIN  # runs
    assert claimed(Scheduler(raw, "mid:", shards=3)) == expected
    assert claimed(Scheduler(raw, "rache:")) == expected
    # Data stays byte for byte, and the jobs left are the same.
    assert raw.hmget("rache:job:j3", "lead", "raw") == [b"007", b"\xff"]
    assert Scheduler(raw, "rache:").job_details("later")["kept"] == "yes"
    assert list(Scheduler(raw, "rache:").export_jobs()) == list(
        Scheduler(raw, "ref:").export_jobs()
    )


def test_a_reshard_moves_data_left_without_a_schedule_entry(raw: Any) -> None:
    one = Scheduler(raw, "rache:")
    one.schedule_jobs([(f"done-{i}", -1, {"i": i, "lead": "007"}) for i in range(9)])
    assert len(list(one.pending_jobs())) == 9  # handed out: data, no schedule entry
    assert reshard(raw, "rache:", shards=3, batch_size=2) > 0
    three = Scheduler(raw, "rache:", shards=3)
    assert sorted(three.orphaned_jobs()) == [f"done-{i}" for i in range(9)]
    assert raw.hget(Layout("rache:", 3).of(b"done-4").job(b"done-4"), "lead") == b"007"
    assert reshard(raw, "rache:", shards=1) > 0
    assert sorted(Scheduler(raw, "rache:").orphaned_jobs(delete=True)) == [
        f"done-{i}" for i in range(9)
    ]
    assert job_keys(raw) == []


def test_an_export_imported_under_another_prefix_hands_out_the_same_occurrences(
    make: Callable[..., Any], raw: Any
) -> None:
    source = make(prefix="src:")
    fill(source)
    copy_keys(raw, "src:", "ref:")
    exported = list(source.export_jobs())
    assert all(isinstance(job, Exported) for job in exported)
    assert sum(job.run is not None for job in exported) == PLAIN + 1
    assert {job.job_id for job in exported if job.rule is not None} == {"every", "cron"}

    copy = make(prefix="dst:")
    assert copy.schedule_jobs(exported, at=True) == PLAIN + 3
    assert list(copy.export_jobs()) == exported
    expected = claimed(make(prefix="ref:"))
    assert len(expected) == PLAIN + 2
    assert claimed(copy) == expected
    assert copy.job_details("later")["kept"] == "yes"


def test_an_import_of_jobs_without_runs_or_rules_draws_new_runs(make: Callable[..., Any]) -> None:
    """Three items, as exports before runs gave them: each job imported is a new run."""
    source = make(prefix="src:")
    source.schedule_job("a", -5, n=1)
    (job,) = source.export_jobs()
    copy = make(prefix="dst:")
    assert copy.schedule_jobs([job[:3]], at=True) == 1
    (again,) = copy.export_jobs()
    assert again[:3] == job[:3] and again.run is not None and again.run != job.run


@pytest.mark.parametrize(
    ("run", "rule", "error", "match"),
    [
        ("xyz", None, ValueError, r"jobs\[0\]: run must be 16 hex digits"),
        ("00" * 9, None, ValueError, r"jobs\[0\]: run must be 16 hex digits"),
        (b"\x00" * 8, None, TypeError, r"jobs\[0\]: run must be a str"),
        (None, "e|x", ValueError, r"jobs\[0\]: rule 'e\|x' is not a rule"),
        (None, 7, TypeError, r"jobs\[0\]: rule must be a str"),
    ],
)
def test_a_bad_run_or_rule_is_refused_before_anything_is_written(
    make: Callable[..., Any], raw: Any, run: Any, rule: Any, error: type, match: str
) -> None:
    api = make(prefix="rache:")
    with pytest.raises(error, match=match):
        api.schedule_jobs([("a", 1700000000, {}, run, rule)], at=True)
    with pytest.raises(TypeError, match=r"jobs\[0\] must be a \(job_id, schedule_in\)"):
        api.schedule_jobs([("a", 10, {}, None, None)])  # a run and a rule need at=True
    assert job_keys(raw) == []


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ("e|0|0|c|60000", "every must be more than 0"),  # every 0 ms: the claim fails on it
        ("e|0|1000|c|-5", "grace must be 0 or more"),
        ("e|0|-1000|c|5", "every must be more than 0"),
        ("e|0|1000|c|01", "does not encode back"),
        ("e|99999999999999999|1000|c|1", "start .* out of bounds"),
        ("c|||c|60000|0|UTC|not a cron", "cron expression 'not a cron' is not valid"),
        ("c|||c|60000|0|Nowhere/Atlantis|* * * * *", "'Nowhere/Atlantis' is not a known"),
        ("c|||c|-1|0|UTC|* * * * *", "grace must be 0 or more"),
        ("c|||x|0|0|UTC|* * * * *", "not a rache recurrence rule"),
        ("c|5||c|0|0|UTC|* * * * *", "lease .* is not two times"),
    ],
)
def test_a_rule_out_of_bounds_is_refused_and_nothing_of_the_batch_is_written(
    make: Callable[..., Any], raw: Any, rule: str, match: str
) -> None:
    """A rule is checked as a new one is: one that parses but would break a claim is refused."""
    api = make(prefix="rache:")
    good = ("ok", 1700000000, {"n": 1}, None, "e|1700000000000|60000|c|60000")
    with pytest.raises(ValueError, match=rf"jobs\[1\]: rule .* is not a rule .*{match}"):
        api.schedule_jobs([good, ("bad", 1700000000, {}, None, rule)], at=True)
    assert job_keys(raw) == []
    assert api.schedule_jobs([good, ("plain", -1, {})], at=True) == 2
    assert sorted(job["id"] for job in api.pending_jobs()) == ["ok", "plain"]


def test_a_rule_stored_before_zones_were_checked_still_imports(
    make: Callable[..., Any],
) -> None:
    """A ``localtime`` rule (refused to a new rule since) was writable: its export copies."""
    rule = "c|||c|60000|0|localtime|0 0 1 1 *"
    api = make(prefix="rache:")
    assert api.schedule_jobs([("old", 1700000000, {}, None, rule)], at=True) == 1
    assert [job.rule for job in api.export_jobs()] == [rule]
    assert api.job_details("old")["recurring"]["timezone"] == "localtime"


def test_reshard_and_orphaned_jobs_on_both_shells(make: Callable[..., Any], raw: Any) -> None:
    one = make(prefix="rache:", batch_size=3)
    one.schedule_jobs([(f"j{i}", 100 + i, {"n": i}) for i in range(10)])
    one.schedule_job("done", -1, result="kept")
    assert [job["id"] for job in one.pending_jobs()] == ["done"]
    before = list(one.export_jobs())
    three = make(prefix="rache:", shards=3, batch_size=3)
    assert three.reshard() == 11
    assert three.reshard() == 0  # already so
    assert list(three.export_jobs()) == before
    assert list(three.orphaned_jobs()) == ["done"]
    assert list(three.orphaned_jobs(delete=True)) == ["done"]
    assert list(three.orphaned_jobs()) == []
    assert raw.hget("rache:layout", "shards") == b"3"
    assert make(prefix="rache:").reshard() == 10
    assert raw.exists("rache:layout") == 0
