"""Sharded schedules (``shards=K``) on one server: every operation keeps its meaning.

The same behaviours on a real Redis Cluster are in test_cluster.py.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Dict, List

import pytest
from redis.crc import key_slot

from rache import ConfigurationError, Every, JobNotFound, Scheduler, reshard
from rache.claim import Claim
from rache.keys import Layout, shard_of, shard_prefixes
from tests.support.helpers import commands_sent, job_keys, snapshot, warm_up

SHARD_PREFIXES = ["rache:{0-0}:", "rache:{1-1}:", "rache:{2-0}:"]


def test_shard_keys_are_stable_and_spread_over_the_slot_ranges() -> None:
    assert shard_prefixes("rache:", 1) == ["rache:"]
    assert shard_prefixes("rache:", 3) == SHARD_PREFIXES  # the keys are the layout
    for shards in (2, 3, 5, 16):
        prefixes = shard_prefixes("app:", shards)
        slots = [key_slot(f"{p}queue".encode()) for p in prefixes]
        # shard i in the i-th equal range of slots: one master each, on an even cluster
        assert [slot * shards // 16384 for slot in slots] == list(range(shards))
        assert all(
            key_slot(f"{p}job:x".encode()) == key_slot(f"{p}queue".encode()) for p in prefixes
        )
    # A job's shard depends on its id and the count only (CRC-32, not Python's hash()).
    assert [shard_of(f"job-{i}".encode(), 3) for i in range(6)] == [1, 2, 0, 0, 2, 0]


@pytest.mark.parametrize("shards", [0, -1, 257, 2.0, True, "3", None])
def test_a_bad_shard_count_is_refused(raw: Any, shards: Any) -> None:
    with pytest.raises(ValueError, match="shards must be an int from 1 to 256"):
        Scheduler(raw, "rache:", shards=shards)


def test_a_tagged_prefix_cannot_be_sharded(raw: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"has a hash tag.*such as 'rache:'"):
        Scheduler(raw, "{rache}:", shards=3)


@pytest.mark.parametrize(
    ("prefix", "bare"), [("x{}y:", "xy:"), ("{}:", ":"), ("ra}{che:", "rache:"), ("a{b:", "ab:")]
)
def test_a_prefix_with_any_brace_cannot_be_sharded(
    make: Callable[..., Any], raw: Any, prefix: str, bare: str
) -> None:
    # Not a tag of its own, yet it changes what Redis hashes of each shard's keys: after an
    # empty {} the whole key (a call's keys span slots), after a lone brace another tag.
    Scheduler(raw, "rache:").schedule_job("a", 10)
    before = snapshot(raw)
    for shards in (2, 3):
        with pytest.raises(ConfigurationError, match=f"holds a brace.*such as '{bare}'"):
            make(prefix=prefix, shards=shards)
        with pytest.raises(ConfigurationError, match="holds a brace"):
            reshard(raw, prefix, shards=shards)
    assert snapshot(raw) == before
    assert make(prefix=prefix).schedule_job("b", 10)  # unsharded, it is a prefix like any


def exercise_sharded(api: Any) -> None:
    """Run every operation of a scheduler with 3 shards and ``batch_size=2``; check each.

    Claims start at a shard of their own choosing, so only what a sharded call promises is
    checked: each shard's jobs earliest first, each job once, the rest put back.
    """
    due = {f"j{i}": -100 + 10 * i for i in range(9)}
    assert (
        api.schedule_jobs([(job_id, t, {"n": i}) for i, (job_id, t) in enumerate(due.items())]) == 9
    )
    api.schedule_job("j0", -100, n=None, url="http://x")  # HDEL and HSET
    api.schedule_job("later", 3600)
    assert list(api.scheduled_jobs()) == [*due, "later"]
    assert api.job_details("j0") == {
        "id": "j0",
        "schedule_at": api.job_details("j0")["schedule_at"],
        "url": "http://x",
    }
    claims = api.pending_jobs()  # closed early: the rest of its batch goes back
    first = next(claims)
    claims.close()
    assert first["id"] in due and first["id"] not in api.scheduled_jobs()
    rescheduled = list(api.pending_jobs(reschedule_in=60, limit=4))
    rest = list(api.pending_jobs())
    claimed = [first["id"], *(job["id"] for job in rescheduled + rest)]
    assert sorted(claimed) == sorted(due)
    assert api.job_details(rescheduled[0]["id"])["schedule_at"] >= 59 + max(due.values())
    for job in rest:
        data = {"url": "http://x"} if job["id"] == "j0" else {"n": int(job["id"][1:])}
        assert job == {"id": job["id"], **data}
    assert [job_id for job_id, _ in api.scheduled_jobs(True)][-1] == "later"
    stats = api.stats()
    assert (stats.total, stats.due) == (5, 0)
    exported = list(api.export_jobs())
    assert [job_id for job_id, *_ in exported][-1] == "later" and len(exported) == 5
    api.delete_job("later")
    with pytest.raises(JobNotFound):
        api.job_details("later")
    assert api.stats().total == 4


@pytest.fixture
def sharded(make: Callable[..., Any]) -> Any:
    return make(prefix="rache:", shards=3, batch_size=4)


def where(raw: Any) -> Dict[str, int]:
    """Which shard's queue holds each scheduled job."""
    found = {}
    for index, prefix in enumerate(SHARD_PREFIXES):
        for job_id in raw.zrange(f"{prefix}queue", 0, -1):
            found[job_id.decode()] = index
    return found


def test_the_whole_api(make: Callable[..., Any]) -> None:
    exercise_sharded(make(prefix="rache:", shards=3, batch_size=2))


def test_every_operation_keeps_its_meaning(sharded: Any, raw: Any) -> None:
    ids = [f"job-{i:02}" for i in range(30)]
    for i, job_id in enumerate(ids):
        sharded.schedule_job(job_id, -100 + i, n=i)
    sharded.schedule_job("later", 3600, url="http://x")
    # Each job in its own shard's queue, its data beside it; nothing under the bare prefix.
    placed = where(raw)
    assert placed == {job_id: shard_of(job_id.encode(), 3) for job_id in [*ids, "later"]}
    assert sorted(collections.Counter(placed.values())) != [31]  # spread, not piled up
    assert raw.hgetall("rache:{1-1}:job:job-03") == {b"n": b"3"}
    assert raw.exists("rache:queue") == 0
    # One timeline across shards: earliest first, with times and data.
    assert list(sharded.scheduled_jobs()) == [*ids, "later"]
    times = list(sharded.scheduled_jobs(with_times=True))
    assert [t for _, t in times] == sorted(t for _, t in times)
    assert [job_id for job_id, *_ in sharded.export_jobs()] == [*ids, "later"]
    assert sharded.job_details("job-07")["n"] == 7
    assert sharded.stats().total == 31 and sharded.stats().due == 30
    # Claims: every due job once, a limit caps the call's total.
    first = [job["id"] for job in sharded.pending_jobs(limit=10)]
    rest = [job["id"] for job in sharded.pending_jobs()]
    assert len(first) == 10 and sorted(first + rest) == ids
    assert list(sharded.pending_jobs()) == []
    sharded.delete_job("later")
    assert raw.exists("rache:{1-1}:job:later") == 0
    assert list(sharded.scheduled_jobs()) == []


def test_a_call_takes_each_shard_earliest_first(sharded: Any) -> None:
    due = {f"j{i}": -1000 + 7 * i for i in range(40)}
    sharded.schedule_jobs(list(due.items()))
    jobs = list(sharded.pending_jobs())
    by_shard: Dict[int, List[float]] = collections.defaultdict(list)
    for job in jobs:
        by_shard[shard_of(job["id"].encode(), 3)].append(job.due_at)
    assert len(jobs) == 40 and len(by_shard) == 3
    assert all(times == sorted(times) for times in by_shard.values())


def test_limit_spans_the_shards_and_calls_start_at_any_shard(sharded: Any) -> None:
    sharded.schedule_jobs([(f"j{i}", -10) for i in range(60)])
    firsts = set()
    taken: List[str] = []
    while batch := [job["id"] for job in sharded.pending_jobs(limit=7)]:
        assert len(batch) <= 7
        firsts.add(shard_of(batch[0].encode(), 3))
        taken += batch
    assert sorted(taken) == sorted(f"j{i}" for i in range(60))
    assert len(firsts) > 1  # random start: 9 calls all on one shard is (1/3)^8


def test_an_early_stop_puts_back_in_the_right_shard(sharded: Any, raw: Any) -> None:
    sharded.schedule_jobs([(f"j{i}", -10 - i) for i in range(12)])
    before = where(raw)
    claims = sharded.pending_jobs(reschedule_in=60)
    handed = next(claims)
    claims.close()
    after = where(raw)
    assert after == before  # every job still (or again) in its own shard's queue
    assert [job["id"] for job in sharded.pending_jobs()] != []
    assert handed["id"] in before


def test_another_shard_count_is_refused_until_resharded(make: Callable[..., Any], raw: Any) -> None:
    three = make(prefix="rache:", shards=3)
    three.schedule_job("a", 10)
    assert raw.hget("rache:layout", "shards") == b"3"
    before = snapshot(raw)
    for wrong in (2, 4):
        with pytest.raises(ConfigurationError, match=f"laid out in 3 shard.*not {wrong}.*reshard"):
            make(prefix="rache:", shards=wrong).schedule_job("b", 10)
    assert snapshot(raw) == before
    assert list(make(prefix="rache:", shards=3).scheduled_jobs()) == ["a"]


def test_a_scheduler_without_shards_refuses_a_sharded_schedule(
    make: Callable[..., Any], raw: Any
) -> None:
    make(prefix="rache:", shards=3).schedule_job("a", -10)
    before = snapshot(raw)
    for call in (
        lambda s: s.stats(),  # was: total 0, an empty schedule
        lambda s: list(s.pending_jobs()),
        lambda s: list(s.scheduled_jobs()),
        lambda s: s.job_details("a"),
        lambda s: s.schedule_job("b", 10),
        lambda s: s.schedule_jobs([("b", 10)]),
        lambda s: s.delete_job("a"),
        lambda s: s.schedule_recurring("r", Every(5)),
    ):
        with pytest.raises(
            ConfigurationError, match=r"laid out in 3 shard\(s\), not 1: pass shards=3"
        ):
            call(make(prefix="rache:"))
    assert snapshot(raw) == before


def test_a_scheduler_without_shards_checks_once_and_reads_only(
    make: Callable[..., Any], raw: Any
) -> None:
    warm = make(prefix="rache:")
    warm_up(warm)  # the scripts in the server's cache, the client connected
    warm.stats()
    before = snapshot(raw)
    fresh = make(prefix="rache:")
    assert commands_sent(raw, lambda: fresh.stats()) == ["EVALSHA"] * 2  # the check, then stats
    assert commands_sent(raw, lambda: fresh.stats()) == ["EVALSHA"]
    assert snapshot(raw) == before  # the check wrote nothing (no <prefix>layout)


def test_an_unsharded_schedule_with_jobs_is_not_hidden_by_shards(
    make: Callable[..., Any], raw: Any
) -> None:
    make(prefix="rache:").schedule_job("old", 10)
    before = snapshot(raw)
    with pytest.raises(ConfigurationError, match="laid out in 1 shard"):
        list(make(prefix="rache:", shards=2).pending_jobs())
    assert snapshot(raw) == before


def test_recorded_shards_reads_the_layout_and_writes_nothing(
    make: Callable[..., Any], raw: Any
) -> None:
    for shards in (1, 3):  # nothing there: no count, whatever the scheduler's
        assert make(prefix="rache:", shards=shards).recorded_shards() is None
    assert snapshot(raw) == {}
    make(prefix="rache:").schedule_job("old", 10)  # an unsharded schedule with a job
    before = snapshot(raw)
    assert make(prefix="rache:", shards=2).recorded_shards() == 1
    assert make(prefix="rache:").recorded_shards() == 1
    assert snapshot(raw) == before
    make(prefix="other:", shards=3).schedule_job("a", 10)  # records 3
    before = snapshot(raw)
    for shards in (1, 2, 3):  # no mismatch raised: it says, and the caller decides
        assert make(prefix="other:", shards=shards).recorded_shards() == 3
    assert snapshot(raw) == before


def test_a_probe_then_the_check_reads_as_a_dashboard_does(
    make: Callable[..., Any], raw: Any
) -> None:
    probe = make(prefix="rache:", shards=3)
    assert probe.recorded_shards() is None and probe.server_time() > 0
    assert snapshot(raw) == {}  # neither the probe nor the clock ran the layout check
    make(prefix="rache:", shards=3).schedule_job("a", 10)
    assert probe.recorded_shards() == 3
    assert probe.check_layout() == 3 and list(probe.scheduled_jobs()) == ["a"]


def test_recurring_jobs_and_the_clock_of_a_sharded_schedule(sharded: Any, raw: Any) -> None:
    ids = [f"r{i}" for i in range(9)]
    for job_id in ids:
        sharded.schedule_recurring(job_id, Every(60))
    sharded.schedule_job("plain", 10)
    assert {shard_of(job_id.encode(), 3) for job_id in ids} == {0, 1, 2}
    assert sorted(sharded.recurring_jobs()) == ids
    seconds, micros = raw.time()
    assert abs(sharded.server_time() - (seconds + micros / 1e6)) < 1


def test_reshard_moves_every_job_with_its_time_and_data(raw: Any) -> None:
    one = Scheduler(raw, "rache:", batch_size=3)
    one.schedule_jobs([(f"j{i}", 100 + i, {"n": i}) for i in range(20)])
    one.schedule_job("done", 0, result="kept")
    assert [job["id"] for job in one.pending_jobs()] == ["done"]  # data, no schedule entry
    expected = list(one.export_jobs())

    assert reshard(raw, "rache:", shards=3, batch_size=3) == 21
    assert raw.hget("rache:layout", "shards") == b"3" and raw.exists("rache:queue") == 0
    three = Scheduler(raw, "rache:", shards=3)
    assert list(three.export_jobs()) == expected
    assert three.job_details("done") == {"id": "done", "schedule_at": None, "result": "kept"}
    assert reshard(raw, "rache:", shards=3) == 0  # already so: nothing to do

    moved = reshard(raw, "rache:", shards=2)
    assert 0 < moved <= 21  # shard 0 keeps its keys ({0-0}) in both layouts
    assert list(Scheduler(raw, "rache:", shards=2).export_jobs()) == expected
    assert reshard(raw, "rache:", shards=1) == 21
    assert raw.exists("rache:layout") == 0
    back = Scheduler(raw, "rache:")
    assert list(back.export_jobs()) == expected
    assert back.job_details("done")["result"] == "kept"
    # Nothing is left of the shards but their call records, which live out their 60 s.
    assert [key for key in job_keys(raw) if b"{" in key] == []


def test_reshard_checks_its_arguments_first(raw: Any) -> None:
    Scheduler(raw, "rache:").schedule_job("a", 10)
    before = snapshot(raw)
    with pytest.raises(ValueError, match="shards must be an int"):
        reshard(raw, "rache:", shards=0)
    with pytest.raises(ConfigurationError, match="has a hash tag"):
        reshard(raw, "{rache}:", shards=2)
    assert snapshot(raw) == before


def test_reshard_moves_recurrence_rules(raw: Any) -> None:
    one = Scheduler(raw, "rache:")
    for i in range(6):
        one.schedule_recurring(f"r{i}", Every(60), data={"n": i})
    before = {f"r{i}": one.job_details(f"r{i}") for i in range(6)}
    assert reshard(raw, "rache:", shards=3) == 6
    three = Scheduler(raw, "rache:", shards=3)
    after = {f"r{i}": three.job_details(f"r{i}") for i in range(6)}
    assert after == before  # rule, next occurrences, data and due time alike
    assert raw.exists("rache:recurring") == 0


def test_recurring_jobs_recur_in_their_own_shard(sharded: Any, raw: Any) -> None:
    start = int(raw.time()[0]) - 30
    ids = [f"every-{i}" for i in range(9)]
    for job_id in ids:
        sharded.schedule_recurring(job_id, Every(60), start=start)
    jobs = list(sharded.pending_jobs())
    assert sorted(job["id"] for job in jobs) == ids and {job.due_at for job in jobs} == {start}
    assert list(sharded.pending_jobs()) == []
    assert where(raw) == {job_id: shard_of(job_id.encode(), 3) for job_id in ids}
    assert {sharded.job_details(job_id)["schedule_at"] for job_id in ids} == {start + 60}
    for index, prefix in enumerate(SHARD_PREFIXES):
        mine = {job_id for job_id in ids if shard_of(job_id.encode(), 3) == index}
        assert {key.decode() for key in raw.hkeys(f"{prefix}recurring")} == mine


def test_reshard_copies_due_times_and_data_byte_for_byte(raw: Any) -> None:
    # A lease time ends in half a microsecond; '007' and '-0' are text, not numbers; a
    # field that is not UTF-8 came from another client. All must move exactly.
    raw.zadd("rache:queue", {"leased": 1795883934.9200006, "plain": 1795883930})
    raw.hset("rache:job:plain", mapping={"zip": b"007", "code": b"-0", b"\xff\xfeblob": b"\x00"})
    raw.hset("rache:job:unscheduled", mapping={b"\xfe": b"x"})
    before = {job_id: raw.zscore("rache:queue", job_id) for job_id in ("leased", "plain")}
    data = raw.hgetall("rache:job:plain")
    assert reshard(raw, "rache:", shards=3) == 3
    three = Scheduler(raw, "rache:", shards=3)
    for job_id, due in before.items():
        keys = three.layout.of(job_id.encode())
        assert raw.zscore(keys.queue, job_id) == due  # the very double
    assert raw.hgetall(three.layout.of(b"plain").job(b"plain")) == data
    assert raw.hgetall(three.layout.of(b"unscheduled").job(b"unscheduled")) == {b"\xfe": b"x"}
    assert reshard(raw, "rache:", shards=1) == 3
    assert raw.zscore("rache:queue", "leased") == before["leased"]
    assert raw.hgetall("rache:job:plain") == data


def test_the_wait_to_the_next_due_job_reads_each_shards_own_clock() -> None:
    # Sans I/O: two shards' claim replies, the second master's clock 2 s behind the first's.
    claim = Claim(Layout("rache:", 2), 10)
    for cutoff, head in [(b"1000", b"1001"), (b"998", b"1005")]:
        assert claim.next_call() is not None
        assert claim.take([cutoff, None, head, None, None]) == []  # nothing due in this shard
    assert claim.next_call() is None  # both shards visited
    assert claim.next_due == b"1001"
    assert claim.next_wait() == 1.0  # not 1001 - 998: no two clocks compared
