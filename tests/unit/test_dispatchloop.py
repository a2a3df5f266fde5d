"""The hand-out loop's core without I/O: which job goes next, what goes back, what is forgotten.

Driven as rache.dispatch drives it, with a claim fed a canned claim-7.lua reply.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import pytest

from rache import dispatchloop
from rache.constants import MAX_RETRY_DELAY
from rache.dispatchloop import DispatchLoop
from rache.keys import Layout
from rache.models import Job
from rache.scheduler import Claim
from tests.unit.test_claim import CUTOFF, Canned, claim_reply


def core(**options: Any) -> DispatchLoop:
    return DispatchLoop(batch=10, max_sleep=30, backoff=0.1, max_backoff=1, **options)


def batch_in_hand(loop: DispatchLoop, count: int = 4) -> List[Job]:
    """A claim of ``count`` due jobs, taken in hand by ``loop``; the jobs."""
    claim = Claim(Layout("rache:"), 10)
    assert claim.next_call() is not None
    canned: List[Canned] = [(f"job-{i}".encode(), b"1700000000", {}) for i in range(count)]
    jobs = claim.take(claim_reply(canned, head=b"1700000060"))
    assert jobs is not None
    loop.took(claim, jobs)
    return jobs


def hand_out(loop: DispatchLoop, stop_at: Optional[int] = None) -> List[str]:
    """What the dispatchers do with a batch: each next job to the handler, until None."""
    handed: List[str] = []
    while (job := loop.next_job()) is not None:
        handed.append(job["id"])
        if len(handed) == stop_at:
            loop.stopping = True  # stop() from the handler
        loop.handled_one()
    return handed


def test_a_batch_goes_out_whole_then_nothing_goes_back() -> None:
    loop = core()
    jobs = batch_in_hand(loop)
    assert (loop.claims, loop.claimed) == (1, 4)
    assert loop.lag == pytest.approx(float(CUTOFF) - 1700000000)
    assert hand_out(loop) == ["job-0", "job-1", "job-2", "job-3"]
    assert loop.next_job() is None
    assert loop.release() == len(jobs)  # all handed out: the put-back sends nothing
    assert loop.release() is None  # once
    assert loop.forgettable() == []  # without forget
    assert loop.handled == 4


@pytest.mark.parametrize(("finish_batch", "out"), [(True, 4), (False, 2)])
def test_a_stop_hands_out_the_batch_in_hand_unless_finish_batch_is_false(
    finish_batch: bool, out: int
) -> None:
    loop = core(finish_batch=finish_batch)
    batch_in_hand(loop)
    assert len(hand_out(loop, stop_at=2)) == out
    assert loop.release() == out  # the jobs after these go back


def test_a_batch_put_back_by_another_thread_hands_out_no_more() -> None:
    loop = core(finish_batch=False)
    batch_in_hand(loop)
    assert loop.next_job() is not None  # a handler call begins; stop() meanwhile:
    loop.stopping = True
    with loop.lock:  # the sync dispatcher's put-back thread
        assert loop.release() == 1
    assert loop.next_job() is None
    with loop.lock:  # the loop's own put-back, after the handler call: nothing left
        assert loop.release() is None


def test_forget_gives_the_jobs_handed_out_once_the_batch_is_over() -> None:
    loop = core(forget=True, finish_batch=False)
    jobs = batch_in_hand(loop)
    hand_out(loop, stop_at=3)
    assert loop.release() == 3
    assert loop.forgettable() == jobs[:3]  # not the job put back
    assert (loop.claim, loop.jobs) == (None, [])


def test_before_any_batch_nothing_is_in_hand() -> None:
    loop = core()
    assert loop.next_job() is None
    assert loop.release() is None
    assert loop.forgettable() == []


def test_the_loop_announces_at_most_every_few_seconds(monkeypatch: Any) -> None:
    clock = [1000.0]
    monkeypatch.setattr("rache.pollers.time.monotonic", lambda: clock[0])
    loop = core(kind="rache dispatch")
    first = loop.announcement()
    assert first is not None and first.kind == "rache dispatch" and first.handed_out == 0
    assert loop.announcement() is None
    clock[0] += 4.9
    assert loop.announcement() is None
    assert loop.announcement(force=True) is not None
    clock[0] += 5
    loop.handled, loop.failed = 7, 2
    again = loop.announcement()
    assert again is not None and (again.handed_out, again.failures) == (9, 2)
    assert loop.announcer.withdrawn() == again.name
    assert loop.announcer.withdrawn() is None  # once
    assert loop.announcement() is not None  # a loop run again announces at once


# -- retries ------------------------------------------------------------------------------------


def retrying(retries: int, backoff: float = 0.01) -> DispatchLoop:
    return DispatchLoop(
        batch=10, max_sleep=30, backoff=0.1, max_backoff=1, retries=retries, retry_backoff=backoff
    )


def test_a_failed_attempt_waits_for_a_retry_until_the_retries_are_spent() -> None:
    loop = retrying(2)
    job = batch_in_hand(loop, 1)[0]
    boom = ValueError("boom")
    assert loop.failed_attempt(job, 0, boom) is True  # attempt 1 of 3
    assert (loop.retried, loop.failed, loop.pending_retries) == (1, 0, 1)
    assert loop.next_retry() is None  # not due yet
    assert 0 < (loop.retry_wait() or 0) <= 0.01
    time.sleep(0.02)
    retry = loop.next_retry()
    assert retry is not None and retry.job is job and retry.attempts == 1 and retry.error is boom
    assert loop.pending_retries == 0 and loop.retry_wait() is None
    assert loop.failed_attempt(job, retry.attempts, boom) is True  # attempt 2 of 3
    assert loop.failed_attempt(job, 2, boom) is False  # attempt 3: failed for good
    assert (loop.retried, loop.failed) == (2, 1)


def test_without_retries_a_raise_fails_the_run_at_once() -> None:
    loop = core()
    job = batch_in_hand(loop, 1)[0]
    assert loop.failed_attempt(job, 0, ValueError("boom")) is False
    assert (loop.retried, loop.failed, loop.pending_retries) == (0, 1, 0)


def test_the_retry_delay_doubles_with_jitter_up_to_the_most() -> None:
    loop = retrying(5, backoff=10)
    for before in range(4):
        delays = [loop.retry_delay(before) for _ in range(200)]
        full = 10 * 2**before
        assert all(full / 2 <= delay <= full for delay in delays)
        assert max(delays) - min(delays) > full / 10  # jittered, not one value
    assert all(MAX_RETRY_DELAY / 2 <= loop.retry_delay(40) <= MAX_RETRY_DELAY for _ in range(50))


def test_retries_come_out_earliest_first_and_none_once_stopping() -> None:
    loop = retrying(3)
    jobs = batch_in_hand(loop, 3)
    for job in jobs:
        loop.failed_attempt(job, 0, RuntimeError(job["id"]))
    time.sleep(0.02)
    loop.stopping = True
    assert loop.next_retry() is None
    loop.stopping = False
    out = [retry.job["id"] for retry in iter(loop.next_retry, None)]
    assert sorted(out) == ["job-0", "job-1", "job-2"]


def test_the_sleep_after_a_claim_ends_at_the_next_retry() -> None:
    loop = retrying(1, backoff=2)
    job = batch_in_hand(loop, 1)[0]
    claim = loop.claim
    assert claim is not None
    alone = loop.sleep_after(claim)  # the next job 60 s on: max_sleep
    assert alone == 30
    loop.failed_attempt(job, 0, ValueError("boom"))
    assert 0.9 <= loop.sleep_after(claim) <= 2


def test_abandon_takes_every_waiting_retry_and_counts_it_failed() -> None:
    loop = retrying(3, backoff=100)
    jobs = batch_in_hand(loop, 2)
    for job in jobs:
        loop.failed_attempt(job, 0, ValueError("boom"))
    waiting = loop.abandon()
    assert [retry.job for retry in waiting] and {r.job["id"] for r in waiting} == {
        "job-0",
        "job-1",
    }
    assert (loop.pending_retries, loop.failed, loop.retried) == (0, 2, 2)
    assert loop.abandon() == []


def test_a_full_retry_queue_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatchloop, "MAX_PENDING_RETRIES", 2)
    loop = retrying(3, backoff=100)
    jobs = batch_in_hand(loop, 3)
    assert [loop.failed_attempt(job, 0, ValueError("boom")) for job in jobs] == [
        True,
        True,
        False,
    ]
    assert (loop.pending_retries, loop.failed) == (2, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be from 0 to 100"),
        ({"retries": 101}, "retries must be from 0 to 100"),
        ({"retry_backoff": 0}, "retry_backoff must be a finite number of seconds more than 0"),
    ],
)
def test_retry_settings_are_checked(options: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DispatchLoop(batch=10, max_sleep=30, backoff=0.1, max_backoff=1, **options)
