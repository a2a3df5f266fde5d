"""Occurrences as pure functions: which one of a placed rule is due, and when the next falls.

The rules are the values of ``rache.rules`` (``Every``, ``Cron``), placed for a job.

Times are integer milliseconds since the Unix epoch, so that Python and the claim script
(which computes every-N rules itself, in the same integers) agree to the millisecond.

A rule's occurrences are a set of instants. A job's queue entry says from when the rule
resumes (its *pending* time): a claim at ``now`` hands out at most one occurrence of
``[pending, now]``, the latest one (earlier ones were missed and are coalesced into it),
unless the misfire policy is ``skip`` and that occurrence is more than ``grace`` late;
the job then resumes from the first occurrence after it. :func:`decide` is that rule.

Cron rules follow the local wall clock of an IANA zone: a wall time that a spring-forward
skips runs at the first instant after the gap (02:30 in Paris on that day runs at 03:00);
a wall time that a fall-back repeats runs once, at its first pass. croniter (the ``cron``
extra) is imported only for a cron rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional, Tuple

from .rules import Every, Placed, croniter, zone

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1)


# -- occurrences -----------------------------------------------------------------------------


def next_at_or_after(placed: Placed, t: int) -> int:
    """The first occurrence at or after ``t`` (ms)."""
    rule, start = placed.rule, placed.start_ms
    if isinstance(rule, Every):
        if t <= start:
            return start
        return start - (start - t) // rule.every_ms * rule.every_ms
    return _cron_next(placed, t - placed.offset_ms) + placed.offset_ms


def latest_at_or_before(placed: Placed, t: int) -> Optional[int]:
    """The last occurrence at or before ``t`` (ms), None if the rule starts after it."""
    rule, start = placed.rule, placed.start_ms
    if isinstance(rule, Every):
        if t < start:
            return None
        return start + (t - start) // rule.every_ms * rule.every_ms
    return _cron_prev(placed, t - placed.offset_ms) + placed.offset_ms


def upcoming(placed: Placed, t: int, count: int) -> List[int]:
    """The first ``count`` occurrences at or after ``t`` (ms)."""
    out: List[int] = []
    for _ in range(count):
        t = next_at_or_after(placed, t)
        out.append(t)
        t += 1
    return out


def decide(placed: Placed, pending: int, now: int) -> Tuple[Optional[int], int]:
    """What a claim at ``now`` does with a job whose rule resumes at ``pending`` (ms).

    Returns (the occurrence to hand out or None, the job's next pending time). The
    occurrence is the latest of ``[pending, now]``: earlier ones there were missed, and
    coalesce into it; under ``skip``, it is dropped too when more than ``grace`` late.
    The next pending time is always after ``now``.
    """
    latest = latest_at_or_before(placed, now)
    if latest is None or latest < pending:
        return None, next_at_or_after(placed, max(pending, now + 1))
    run: Optional[int] = latest
    if placed.rule.misfire == "skip" and now - latest > placed.rule.grace_ms:
        run = None
    return run, next_at_or_after(placed, latest + 1)


#: The most occurrences one claim hands out for a lease that ran out (a bound on its work).
HELD_MOST = 1000


def decide_held(
    placed: Placed, pending: int, held_until: int, now: int, lease: int
) -> Tuple[List[int], int]:
    """What a claim at ``now`` does with a job whose lease ran out untouched (ms).

    The lease's holder claimed the job at about ``held_until - lease`` and never advanced it
    (it died, stalled, or could not evaluate the rule), so it handed out nothing from
    ``pending`` on. Returns (the occurrences to hand out, the job's next pending time): the
    one the holder would have handed out (the latest of ``[pending, its claim]``, earlier
    ones coalesced as :func:`decide` does), each one that fell while the lease held, each
    once, then the latest since the lease ended, as :func:`decide` (at most ``HELD_MOST``,
    the rest coalesced). ``skip`` drops those more than ``grace`` late, as always.
    """
    latest = latest_at_or_before(placed, min(held_until - lease, now))
    if latest is not None and latest >= pending:
        following = latest
    else:
        following = next_at_or_after(placed, pending)
    runs: List[int] = []
    end = min(held_until, now)
    skip = placed.rule.misfire == "skip"
    while following <= end and len(runs) < HELD_MOST:
        if not (skip and now - following > placed.rule.grace_ms):
            runs.append(following)
        following = next_at_or_after(placed, following + 1)
    run, following = decide(placed, following, now)
    if run is not None:
        runs.append(run)
    return runs, following


# -- cron on a local wall clock --------------------------------------------------------------


def _wall(ms: int, zone: Any) -> Tuple[datetime, int]:
    """The naive local wall time of the instant ``ms``, and its fold (1: a repeat's 2nd pass)."""
    aware = datetime.fromtimestamp(ms / 1000, _UTC).astimezone(zone)
    return aware.replace(tzinfo=None), aware.fold


def _instant(naive: datetime, zone: Any) -> int:
    """The instant (ms) at which a local wall time runs.

    A repeated wall time (fall-back) runs at its first pass; one skipped by a
    spring-forward runs at the first instant after the gap.
    """
    aware = naive.replace(tzinfo=zone, fold=0)
    ms = to_ms(aware)
    if _wall(ms, zone)[0] == naive:
        return ms
    # In a gap: fold=1 reads it with the offset after the change, so it lands before the
    # change; fold=0 with the one before, after it. The change is in between.
    low, high = to_ms(naive.replace(tzinfo=zone, fold=1)), ms
    while high - low > 1000:
        middle = (low + high) // 2 // 1000 * 1000
        if middle <= low:
            break
        if _offset(middle, zone) == _offset(high, zone):
            high = middle
        else:
            low = middle
    return high


def _offset(ms: int, zone: Any) -> Any:
    return datetime.fromtimestamp(ms / 1000, _UTC).astimezone(zone).utcoffset()


def to_ms(aware: datetime) -> int:
    """An aware datetime as milliseconds since the epoch, exactly."""
    delta = aware.astimezone(_UTC).replace(tzinfo=None) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _cron_next(placed: Placed, t: int) -> int:
    rule = placed.rule
    assert not isinstance(rule, Every)
    tz = zone(rule.timezone)
    # Start just before t: a wall time in a gap that ends at t runs at t. Then skip the
    # wall times whose instant is before t (a fall-back's first pass, when t is in the 2nd).
    wall, _ = _wall(t - 1, tz)
    it = croniter()(rule.expression, wall)
    while True:
        naive = it.get_next(datetime)
        ms = _instant(naive, tz)
        if ms >= t:
            return ms


def _cron_prev(placed: Placed, t: int) -> int:
    rule = placed.rule
    assert not isinstance(rule, Every)
    tz = zone(rule.timezone)
    wall, fold = _wall(t, tz)
    if fold:  # in a repeat's 2nd pass: wall times up to the repeat's end ran before t
        wall += _offset_change(t, tz)
    it = croniter()(rule.expression, wall + timedelta(seconds=1))
    while True:
        naive = it.get_prev(datetime)
        ms = _instant(naive, tz)
        if ms <= t:
            return ms


def _offset_change(t: int, zone: Any) -> timedelta:
    """How much a fall-back repeats: the offset of the 1st pass minus that of the 2nd."""
    wall, _ = _wall(t, zone)
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    return first - second
