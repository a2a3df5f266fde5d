"""The Claim flow with canned claim-7.lua / advance-4.lua replies: calls made, jobs handed out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from rache import wire
from rache.claim import Claim, put_back_ids
from rache.constants import DEFAULT_LEASE_MS
from rache.keys import Keys, Layout
from rache.models import Job
from rache.scripts import ADVANCE, CLAIM, RELEASE, Call

PLAIN = Layout("rache:")
SHARDED = Layout("rache:", 3)
#: A claim's cutoff, as claim-7.lua writes it (Unix seconds to the microsecond): now_ms is
#: 1700000000123.
CUTOFF = b"1700000000.123456"
LEASE = b"1700000005.1234565"

#: A job in a canned reply: id, due time before the claim, data.
Canned = Tuple[bytes, bytes, Dict[bytes, bytes]]


def claim_reply(
    jobs: Sequence[Canned],
    *,
    cutoff: bytes = CUTOFF,
    new_due: Optional[bytes] = None,
    head: Optional[bytes] = None,
    recurring: Optional[List[Any]] = None,
    runs: Optional[List[Optional[bytes]]] = None,
) -> List[Any]:
    """claim-7.lua's reply: cutoff, new due, head, recurring, runs; id, due, n, n pairs per job."""
    reply: List[Any] = [cutoff, new_due, head, recurring, runs]
    for raw_id, due, data in jobs:
        reply += [raw_id, due, len(data)]
        for field, value in data.items():
            reply += [field, value]
    return reply


def claim_call(keys: Keys, size: int, cutoff: bytes = b"", rescheduled: Any = (b"", b"")) -> Call:
    args = [keys.job_prefix, size, cutoff, *rescheduled, DEFAULT_LEASE_MS]
    args += [keys.history_prefix, 20, b"", 3_600_000, 7 * 24 * 3_600_000]  # runs: README.md
    named = [keys.queue, keys.recurring, keys.runs, keys.aside, keys.clock, keys.last_runs]
    named.append(keys.call_prefix)
    return Call(CLAIM, named, args)


def release_call(keys: Keys, new_due: bytes, plain: List[Any], again: List[Any]) -> Call:
    args: List[Any] = [keys.job_prefix, keys.wakeup, keys.history_prefix, new_due, len(plain)]
    for record in plain + again:
        args += record
    named = [keys.queue, keys.recurring, keys.runs, keys.last_runs, keys.call_prefix]
    return Call(RELEASE, named, args)


def ids(jobs: Optional[List[Job]]) -> List[Any]:
    assert jobs is not None
    return [job["id"] for job in jobs]


THREE: List[Canned] = [
    (b"a", b"99", {b"x": b"1", b"t": b"text"}),
    (b"b", b"100", {}),
    (b"c", b"100.25", {}),
]


# -- plain batches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reschedule_in", "rescheduled"),
    [
        (None, (b"", b"")),
        (30, (30000, b"s")),
        (1.5, (1500, b"ms")),
        (timedelta(seconds=30), (30000, b"s")),
        (-1, (-1000, b"s")),
    ],
)
def test_the_first_call_reads_the_clock(reschedule_in: Any, rescheduled: Any) -> None:
    claim = Claim(PLAIN, 3, reschedule_in)
    assert claim.next_call() == claim_call(PLAIN.keys, 3, b"", rescheduled)


def test_the_lease_and_the_run_settings_are_arguments() -> None:
    claim = Claim(
        PLAIN, 3, lease_ms=1234, history=7, name=b"me:1", run_timeout_ms=5, history_ttl_ms=9
    )
    call = claim.next_call()
    assert call is not None and call.args[5:11] == [1234, b"rache:history:", 7, b"me:1", 5, 9]


@pytest.mark.parametrize(
    ("reschedule_in", "limit", "error"),
    [
        ("soon", None, TypeError),
        (True, None, TypeError),
        (float("nan"), None, ValueError),
        (None, -1, ValueError),
        (None, 1.0, TypeError),
    ],
)
def test_bad_arguments_raise_at_the_start(reschedule_in: Any, limit: Any, error: Any) -> None:
    with pytest.raises(error):
        Claim(PLAIN, 3, reschedule_in, limit)


def test_a_batch_decodes_its_jobs_with_their_due_times() -> None:
    claim = Claim(PLAIN, 3)
    claim.next_call()
    jobs = claim.take(claim_reply(THREE, head=b"200"))
    assert jobs == [{"id": "a", "x": 1, "t": "text"}, {"id": "b"}, {"id": "c"}]
    assert jobs is not None and all(type(job) is Job for job in jobs)
    assert [job.due_at for job in jobs] == [99, 100, 100.25]
    assert [job.raw_due for job in jobs] == [b"99", b"100", b"100.25"]
    assert claim.cutoff == CUTOFF
    assert claim.next_due == b"200"


def test_a_full_batch_asks_for_another_with_the_same_cutoff() -> None:
    claim = Claim(PLAIN, 3, 30)
    claim.next_call()
    claim.take(claim_reply(THREE, new_due=b"1700000030"))
    assert claim.next_call() == claim_call(PLAIN.keys, 3, CUTOFF, (30000, b"s"))


@pytest.mark.parametrize("found", [0, 1, 2])
def test_a_short_batch_ends_the_claim(found: int) -> None:
    claim = Claim(PLAIN, 3)
    claim.next_call()
    jobs = claim.take(claim_reply(THREE[:found]))
    assert ids(jobs) == ["a", "b", "c"][:found]
    assert claim.next_call() is None
    assert claim.next_call() is None


@pytest.mark.parametrize(
    ("batch_size", "limit", "found", "asked"),
    [
        (3, 5, [3, 2], [3, 2]),  # the limit caps the last batch, then ends the claim
        (3, 6, [3, 3], [3, 3]),
        (3, 7, [3, 1], [3, 3]),  # a short batch ends it first
        (5, 2, [2], [2]),
        (3, None, [3, 3, 0], [3, 3, 3]),
        (3, 0, [], []),
        (3, 1, [1], [1]),
    ],
)
def test_limit_caps_the_batch_sizes_asked(
    batch_size: int, limit: Optional[int], found: List[int], asked: List[int]
) -> None:
    claim = Claim(PLAIN, batch_size, limit=limit)
    sizes, handed = [], 0
    while (call := claim.next_call()) is not None:
        sizes.append(call.args[1])
        n = found[len(sizes) - 1]
        jobs: List[Canned] = [(b"j%d" % (handed + i), b"1", {}) for i in range(n)]
        handed += len(claim.take(claim_reply(jobs)) or [])
    assert sizes == asked
    assert handed == sum(found)
    assert claim.remaining == (None if limit is None else limit - sum(found))


@pytest.mark.parametrize("start", [0, 1, 2])
def test_a_sharded_claim_visits_each_shard_once_from_start(start: int) -> None:
    claim = Claim(SHARDED, 2, start=start)
    visited: List[Tuple[Any, Any]] = []
    while (call := claim.next_call()) is not None:
        queue, cutoff = call.keys[0], call.args[2]
        visited.append((queue, cutoff))
        shard = queue.split(b"}")[0] + b"}"
        first = sum(1 for q, _ in visited if q == queue) == 1
        # each shard: a full batch, then a short one
        jobs: List[Canned] = [(shard + b"-1", b"1", {}), (shard + b"-2", b"1", {})]
        claim.take(claim_reply(jobs if first else jobs[:1], cutoff=b"%d.5" % len(visited)))
    order = [SHARDED.shards[(start + i) % 3].queue for i in range(3)]
    assert visited == [
        (order[0], b""),
        (order[0], b"1.5"),  # a shard's next batch reuses its cutoff
        (order[1], b""),  # another shard reads its own master's clock
        (order[1], b"3.5"),
        (order[2], b""),
        (order[2], b"5.5"),
    ]


def test_a_sharded_claim_ends_at_its_limit() -> None:
    claim = Claim(SHARDED, 3, limit=4, start=2)
    call = claim.next_call()
    assert call == claim_call(SHARDED.shards[2], 3)
    claim.take(claim_reply([(b"x", b"1", {})]))  # short: shard 2 is done
    call = claim.next_call()
    assert call == claim_call(SHARDED.shards[0], 3)
    claim.take(claim_reply([(b"y", b"1", {})] * 3))
    assert claim.next_call() is None  # 4 claimed


# -- put-back --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handed", "records"),
    [
        (0, [[b"a", b"99", b"1", b""], [b"b", b"100", b"0", b""], [b"c", b"100.25", b"0", b""]]),
        (1, [[b"b", b"100", b"0", b""], [b"c", b"100.25", b"0", b""]]),
        (2, [[b"c", b"100.25", b"0", b""]]),
    ],
)
@pytest.mark.parametrize(
    ("reschedule_in", "new_due"), [(None, None), (30, b"1700000030"), (0.5, b"1700000000.623")]
)
def test_put_back_releases_the_jobs_after_the_first_handed(
    handed: int, records: List[Any], reschedule_in: Any, new_due: Optional[bytes]
) -> None:
    claim = Claim(PLAIN, 3, reschedule_in)
    claim.next_call()
    claim.take(claim_reply(THREE, new_due=new_due))
    assert claim.put_back(handed) == release_call(PLAIN.keys, new_due or b"", records, [])
    assert claim.put_back(handed) is None  # the batch is forgotten
    assert claim.put_back(0) is None


def test_a_run_token_names_the_occurrence_and_goes_back_with_its_job() -> None:
    claim = Claim(PLAIN, 3)
    claim.next_call()
    token = b"\x00\x01\x02\x03\x04\x05\x06\xff"
    jobs = claim.take(claim_reply(THREE, runs=[None, token, None]))
    assert jobs is not None
    assert [job.occurrence_id for job in jobs] == ["a:99", "b:100:00010203040506ff", "c:100.25"]
    plain = [[b"b", b"100", b"0", token], [b"c", b"100.25", b"0", b""]]
    assert claim.put_back(1) == release_call(PLAIN.keys, b"", plain, [])


def test_put_back_of_a_whole_batch_handed_is_none() -> None:
    claim = Claim(PLAIN, 3)
    claim.next_call()
    claim.take(claim_reply(THREE))
    assert claim.put_back(3) is None


def test_put_back_before_any_batch_is_none() -> None:
    claim = Claim(PLAIN, 3)
    assert claim.put_back() is None
    claim.next_call()
    assert claim.put_back() is None


def test_put_back_names_the_shard_claimed_from() -> None:
    claim = Claim(SHARDED, 3, start=1)
    claim.next_call()
    claim.take(claim_reply(THREE[:1]))
    assert claim.put_back(0) == release_call(SHARDED.shards[1], b"", [[b"a", b"99", b"1", b""]], [])


# -- every-N jobs ----------------------------------------------------------------------------


def every_batch(claimed: int = 3) -> List[Any]:
    """p1, e1 (every-N, moved to ...060), p2: the claim hands e1 out at its occurrence."""
    recurring = [claimed, b"e1", b"e", b"1700000060", b""]
    jobs: List[Canned] = [
        (b"p1", b"1699999000", {b"k": b"v"}),
        (b"e1", b"1700000000", {}),
        (b"p2", b"1699999999", {}),
    ]
    return claim_reply(jobs, recurring=recurring, head=b"1700000060")


def test_an_every_job_is_handed_out_with_its_occurrence() -> None:
    claim = Claim(PLAIN, 3)
    claim.next_call()
    jobs = claim.take(every_batch())
    assert ids(jobs) == ["p1", "e1", "p2"]
    assert jobs is not None and jobs[1].due_at == 1700000000


@pytest.mark.parametrize(
    ("handed", "plain", "again"),
    [
        (
            0,
            [[b"p1", b"1699999000", b"1", b""], [b"p2", b"1699999999", b"0", b""]],
            [[b"e1", b"1700000000", b"1700000060"]],
        ),
        (1, [[b"p2", b"1699999999", b"0", b""]], [[b"e1", b"1700000000", b"1700000060"]]),
        (2, [[b"p2", b"1699999999", b"0", b""]], []),
    ],
)
def test_an_every_job_goes_back_with_a_recurring_record(
    handed: int, plain: List[Any], again: List[Any]
) -> None:
    claim = Claim(PLAIN, 3)
    claim.next_call()
    claim.take(every_batch())
    # plain records first, counted in ARGV[4]; the recurring ones after them
    assert claim.put_back(handed) == release_call(PLAIN.keys, b"", plain, again)


def test_the_claimed_count_not_the_jobs_handed_decides_if_the_shard_is_done() -> None:
    # 3 claimed, but e1's occurrence was skipped (misfire): only 2 jobs come back.
    reply = claim_reply(
        [(b"p1", b"1", {}), (b"p2", b"2", {})], recurring=[3, b"e1", b"e", b"1700000060", b""]
    )
    claim = Claim(PLAIN, 3)
    claim.next_call()
    assert ids(claim.take(reply)) == ["p1", "p2"]
    assert claim.next_call() == claim_call(PLAIN.keys, 3, CUTOFF)
    reply[3][0] = 2  # 2 claimed, both handed out: the shard is done
    claim.take(reply)
    assert claim.next_call() is None


# -- cron jobs -------------------------------------------------------------------------------

#: Every minute, UTC; c1's pending occurrence 1699999980 is due (the cutoff is 20 s after).
CRON_RULE = b"c|1699999980|" + LEASE + b"|c|60000|0|UTC|* * * * *"


def cron_batch(rule: bytes = CRON_RULE, head: bytes = b"1700000100") -> List[Any]:
    """p1, e1 (every-N), c1 (cron, leased), p2."""
    recurring = [4, b"e1", b"e", b"1700000060", b"", b"c1", b"c", LEASE, rule]
    jobs: List[Canned] = [
        (b"p1", b"1699999000", {b"k": b"v"}),
        (b"e1", b"1700000000", {}),
        (b"c1", b"1699999980", {b"n": b"5"}),
        (b"p2", b"1699999999", {}),
    ]
    return claim_reply(jobs, recurring=recurring, head=head)


P1, P2 = [b"p1", b"1699999000", b"1", b""], [b"p2", b"1699999999", b"0", b""]
E1, C1 = [b"e1", b"1700000000", b"1700000060"], [b"c1", b"1699999980", b"1700000040"]


def test_a_cron_job_needs_the_advance_call_first() -> None:
    claim = Claim(PLAIN, 4)
    claim.next_call()
    assert claim.take(cron_batch()) is None
    # (id, lease, next due, run timeout, occurrences): the next minute after the occurrence
    # handed out; the run's timeout its period, at least a minute
    named = [b"rache:queue", b"rache:recurring", b"rache:lastrun", b"rache:call:"]
    args: List[Any] = [b"rache:history:", 20, b"", b"c1", LEASE, b"1700000040", 60_000]
    args.append(b"1699999980")
    advance = Call(ADVANCE, named, args)
    assert claim.next_call() == advance
    assert claim.next_call() == advance  # asked again until it answers


def test_an_advance_that_held_hands_the_occurrence_out() -> None:
    claim = Claim(PLAIN, 4)
    claim.next_call()
    claim.take(cron_batch())
    claim.next_call()
    jobs = claim.take([1])
    assert jobs == [{"id": "p1", "k": "v"}, {"id": "e1"}, {"id": "c1", "n": 5}, {"id": "p2"}]
    assert [job.due_at for job in jobs] == [1699999000, 1700000000, 1699999980, 1699999999]
    assert claim.next_due == b"1700000040"  # c1, moved, now comes first
    assert claim.put_back(0) == release_call(PLAIN.keys, b"", [P1, P2], [E1, C1])
    # a full batch: the claim goes on
    assert claim.next_call() == claim_call(PLAIN.keys, 4, CUTOFF)


def test_an_advance_that_did_not_hold_keeps_the_occurrence_back() -> None:
    claim = Claim(PLAIN, 4)
    claim.next_call()
    claim.take(cron_batch())
    claim.next_call()
    assert ids(claim.take([0])) == ["p1", "e1", "p2"]
    assert claim.next_due == b"1700000100"  # c1 was not moved by this claim
    assert claim.put_back(1) == release_call(PLAIN.keys, b"", [P2], [E1])


def test_a_put_back_call_names_its_plain_and_recurring_jobs() -> None:
    """What the warning of a failed put-back counts: plain quadruples, then recurring triples."""
    claim = Claim(PLAIN, 4)
    claim.next_call()
    claim.take(cron_batch())
    claim.next_call()
    claim.take([1])
    call = claim.put_back(0)
    assert call is not None and put_back_ids(call) == (["p1", "p2"], ["e1", "c1"])
    nine = release_call(PLAIN.keys, b"", [[b"j%d" % i, b"1", b"0", b""] for i in range(9)], [])
    assert put_back_ids(nine) == ([f"j{i}" for i in range(9)], [])  # not 12: (40 - 4) // 3
    assert put_back_ids(release_call(PLAIN.keys, b"", [], [E1])) == ([], ["e1"])


def test_without_the_advance_reply_put_back_releases_the_batch_and_the_lease() -> None:
    claim = Claim(PLAIN, 4, 30)
    claim.next_call()
    reply = cron_batch()
    reply[1] = b"1700000030"
    claim.take(reply)
    claim.next_call()  # the advance call, whose reply never comes
    # The other jobs; the cron job's lease (if the advance never ran) and its occurrence
    # (if it ran): release-5.lua applies the one that matches what it finds.
    leased = (b"c1", b"1699999980", LEASE)
    advanced = (b"c1", b"1699999980", b"1700000040")
    expected = release_call(PLAIN.keys, b"1700000030", [P1, P2], [E1, leased, advanced])
    assert claim.put_back(0) == expected
    assert claim.put_back(0) is None


def test_a_skipped_cron_occurrence_is_advanced_but_not_handed_out() -> None:
    # misfire skip with 1 s grace: the occurrence is 20 s late
    rule = b"c|1699999980|" + LEASE + b"|s|1000|0|UTC|* * * * *"
    claim = Claim(PLAIN, 4)
    claim.next_call()
    assert claim.take(cron_batch(rule)) is None
    call = claim.next_call()
    assert call is not None and call.args[3:] == [b"c1", LEASE, b"1700000040", 0, b""]
    assert ids(claim.take([1])) == ["p1", "e1", "p2"]
    assert claim.put_back(0) == release_call(PLAIN.keys, b"", [P1, P2], [E1])


def test_a_cron_occurrence_is_that_of_the_rule_not_the_due_time() -> None:
    # pending 12:00:00.5 UTC (a stale time), now 12:03:20.123: the latest occurrence of
    # "*/2 * * * *" at or before now is 12:02, handed out with that due time.
    pending = b"1700049600.5"
    cutoff = b"1700049800.123456"
    rule = b"c|" + pending + b"|" + LEASE + b"|c|60000|0|UTC|*/2 * * * *"
    reply = claim_reply(
        [(b"c1", pending, {})], cutoff=cutoff, recurring=[1, b"c1", b"c", LEASE, rule]
    )
    claim = Claim(PLAIN, 1)
    claim.next_call()
    assert claim.take(reply) is None
    call = claim.next_call()
    assert call is not None and call.args[3:] == [
        b"c1",
        LEASE,
        b"1700049840",
        120_000,
        b"1700049720",
    ]
    jobs = claim.take([1])
    assert ids(jobs) == ["c1"]
    assert jobs is not None and jobs[0].due_at == 1700049720
    assert jobs[0].occurrence_id == "c1:1700049720"


def test_a_cron_rule_this_host_cannot_evaluate_stays_leased() -> None:
    rule = b"c|1699999980|" + LEASE + b"|c|60000|0|Mars/Base|* * * * *"
    claim = Claim(PLAIN, 4)
    claim.next_call()
    jobs = claim.take(cron_batch(rule))  # no advance to make: the batch is handed out now
    assert ids(jobs) == ["p1", "e1", "p2"]
    assert [(job["id"], type(exc)) for job, exc in claim.unevaluated] == [("c1", ValueError)]
    assert claim.put_back(0) == release_call(PLAIN.keys, b"", [P1, P2], [E1])
    assert claim.next_call() == claim_call(PLAIN.keys, 4, CUTOFF)


# -- what a dispatcher reads -----------------------------------------------------------------


def test_next_wait_is_each_shard_head_less_its_own_cutoff() -> None:
    claim = Claim(SHARDED, 3, start=0)
    heads = [(b"100", b"110"), (b"200.5", b"205"), (b"50", None)]
    while (call := claim.next_call()) is not None:
        index = [keys.queue for keys in SHARDED.shards].index(call.keys[0])
        cutoff, head = heads[index]
        claim.take(claim_reply([], cutoff=cutoff, head=head))
    assert claim.next_wait() == 4.5  # shard 1: 205 - 200.5, though shard 0's head is earlier
    assert claim.next_due == b"110"


def test_next_wait_of_empty_shards_is_none() -> None:
    claim = Claim(PLAIN, 3)
    assert claim.next_wait() is None and claim.next_due is None
    claim.next_call()
    claim.take(claim_reply([]))
    assert claim.next_wait() is None and claim.next_due is None


def test_the_time_constants_agree_with_the_claim_reply() -> None:
    assert wire.CLAIM_HEAD == 5 and wire.JOB_HEAD == 3 and wire.RECURRING_ENTRY == 4
    assert wire.now_ms(CUTOFF) == 1700000000123


def held_batch() -> List[Any]:
    """c1 alone, every minute, its lease (until 1700000010) run out untouched: taken up."""
    old_lease = b"1700000010.0000005"
    rule = b"c|1699999800|" + LEASE + b"|c|0|0|UTC|* * * * *"
    recurring = [1, b"c1", b"c" + old_lease, LEASE, rule]
    return claim_reply([(b"c1", b"1699999800", {b"n": b"5"})], recurring=recurring)


def test_a_lease_taken_up_hands_out_each_occurrence_its_holder_never_did() -> None:
    # A 5-minute lease, claimed at about 1699999710 (before the pending occurrence): each
    # minute from the pending one to the old lease's end, once, then on to the next minute.
    claim = Claim(PLAIN, 4, lease_ms=300_000)
    claim.next_call()
    assert claim.take(held_batch()) is None
    call = claim.next_call()
    assert call is not None and call.args[3:6] == [b"c1", LEASE, b"1700000040"]
    dues = [b"1699999800", b"1699999860", b"1699999920", b"1699999980"]
    assert call.args[6:] == [60_000, b" ".join(dues)]  # a run each, recorded by the advance
    jobs = claim.take([1])
    assert jobs is not None
    assert [(job["id"], job["n"], job.raw_due) for job in jobs] == [("c1", 5, due) for due in dues]
    # Put back after the first: the job resumes at the second, which comes out again.
    assert claim.put_back(1) == release_call(
        PLAIN.keys, b"", [], [[b"c1", due, b"1700000040"] for due in dues[1:]]
    )


def test_a_lease_taken_up_keeps_to_the_limit() -> None:
    claim = Claim(PLAIN, 4, limit=2, lease_ms=300_000)
    claim.next_call()
    assert claim.take(held_batch()) is None
    call = claim.next_call()  # the job resumes at the first occurrence left
    assert call is not None and call.args[3:6] == [b"c1", LEASE, b"1699999920"]
    jobs = claim.take([1])
    assert jobs is not None and [job.raw_due for job in jobs] == [b"1699999800", b"1699999860"]
    assert claim.next_call() is None  # the limit is reached
