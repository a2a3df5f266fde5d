"""Recurrence rules as pure functions: which occurrence is due, and when the next one falls.

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

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional, Tuple

from . import wire
from .errors import MissingExtra

#: The misfire policies, and the one used when none is given.
MISFIRE_POLICIES = ("coalesce", "skip")
DEFAULT_MISFIRE = "coalesce"
#: How late an occurrence may be handed out under ``skip`` (ms): later, it is dropped.
DEFAULT_GRACE_MS = 60_000
#: How far ahead a claim moves a cron job while its poller computes the next occurrence.
DEFAULT_LEASE_MS = 5_000

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1)
#: The latest time a rule may start at (ms; about the year 2286): keeps times exact in a double.
MAX_MS = 10**13


@dataclass(frozen=True)
class Rule:
    """A recurrence rule, as stored in ``<prefix>recurring`` (see :meth:`encode`)."""

    #: ``'every'`` or ``'cron'``
    kind: str
    #: every: the period and the first occurrence (all are ``start_ms + k * every_ms``)
    every_ms: int = 0
    start_ms: int = 0
    #: cron: the expression and the IANA zone of its wall clock
    cron: str = ""
    timezone: str = "UTC"
    misfire: str = DEFAULT_MISFIRE
    grace_ms: int = DEFAULT_GRACE_MS
    #: cron: the fixed jitter offset added to every occurrence (every: already in start_ms)
    offset_ms: int = 0

    def encode_tail(self) -> bytes:
        """The stored rule after the fields that the scripts fill in (see ``wire``)."""
        if self.kind == "every":
            return wire.every_rule_tail(self.every_ms, self.misfire, self.grace_ms)
        return wire.cron_rule_tail(
            self.misfire, self.grace_ms, self.offset_ms, self.timezone, self.cron
        )

    def describe(self) -> dict[str, Any]:
        """The rule for ``job_details``: what was asked, in seconds and names."""
        out: dict[str, Any]
        if self.kind == "every":
            out = {"every": ms_to_seconds(self.every_ms), "start": ms_to_seconds(self.start_ms)}
        else:
            out = {"cron": self.cron, "timezone": self.timezone}
            out["offset"] = ms_to_seconds(self.offset_ms)
        out.update(misfire=self.misfire, grace=ms_to_seconds(self.grace_ms))
        return out


def decode_rule(raw: bytes) -> Tuple[Rule, str, str]:
    """A stored rule, with a cron rule's pending occurrence and lease token ('' if none)."""
    fields = wire.split_rule(raw)
    if fields[3] not in wire.MISFIRE_BY_FLAG:
        raise ValueError(f"not a rache recurrence rule: {raw!r}")
    if fields[0] == wire.EVERY:
        _, start, every, flag, grace = fields
        misfire = wire.MISFIRE_BY_FLAG[flag]
        return Rule("every", int(every), int(start), misfire=misfire, grace_ms=int(grace)), "", ""
    _, pending, lease, flag, grace, offset, zone_name, expression = fields
    rule = Rule(
        "cron",
        cron=expression,
        timezone=zone_name,
        misfire=wire.MISFIRE_BY_FLAG[flag],
        grace_ms=int(grace),
        offset_ms=int(offset),
    )
    return rule, pending, lease


def zone(name: str) -> Any:
    """The IANA time zone ``name``; ValueError naming it if this host does not know it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name!r} is not a known IANA time zone") from None


def croniter() -> Any:
    """Croniter's class (the ``cron`` extra), or MissingExtra naming what to install."""
    try:
        from croniter import croniter
    except ImportError:
        raise MissingExtra("a cron rule", "croniter", "cron") from None
    return croniter


# -- occurrences -----------------------------------------------------------------------------


def ms_to_seconds(ms: int) -> Any:
    """Milliseconds as seconds: an int when whole, else a float."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def next_at_or_after(rule: Rule, t: int) -> int:
    """The first occurrence at or after ``t`` (ms)."""
    if rule.kind == "every":
        if t <= rule.start_ms:
            return rule.start_ms
        return rule.start_ms - (rule.start_ms - t) // rule.every_ms * rule.every_ms
    return _cron_next(rule, t - rule.offset_ms) + rule.offset_ms


def latest_at_or_before(rule: Rule, t: int) -> Optional[int]:
    """The last occurrence at or before ``t`` (ms), None if the rule starts after it."""
    if rule.kind == "every":
        if t < rule.start_ms:
            return None
        return rule.start_ms + (t - rule.start_ms) // rule.every_ms * rule.every_ms
    return _cron_prev(rule, t - rule.offset_ms) + rule.offset_ms


def upcoming(rule: Rule, t: int, count: int) -> List[int]:
    """The first ``count`` occurrences at or after ``t`` (ms)."""
    out: List[int] = []
    for _ in range(count):
        t = next_at_or_after(rule, t)
        out.append(t)
        t += 1
    return out


def decide(rule: Rule, pending: int, now: int) -> Tuple[Optional[int], int]:
    """What a claim at ``now`` does with a job whose rule resumes at ``pending`` (ms).

    Returns (the occurrence to hand out or None, the job's next pending time). The
    occurrence is the latest of ``[pending, now]``: earlier ones there were missed, and
    coalesce into it; under ``skip``, it is dropped too when more than ``grace`` late.
    The next pending time is always after ``now``.
    """
    latest = latest_at_or_before(rule, now)
    if latest is None or latest < pending:
        return None, next_at_or_after(rule, max(pending, now + 1))
    run: Optional[int] = latest
    if rule.misfire == "skip" and now - latest > rule.grace_ms:
        run = None
    return run, next_at_or_after(rule, latest + 1)


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


def _cron_next(rule: Rule, t: int) -> int:
    tz = zone(rule.timezone)
    # Start just before t: a wall time in a gap that ends at t runs at t. Then skip the
    # wall times whose instant is before t (a fall-back's first pass, when t is in the 2nd).
    wall, _ = _wall(t - 1, tz)
    it = croniter()(rule.cron, wall)
    while True:
        naive = it.get_next(datetime)
        ms = _instant(naive, tz)
        if ms >= t:
            return ms


def _cron_prev(rule: Rule, t: int) -> int:
    tz = zone(rule.timezone)
    wall, fold = _wall(t, tz)
    if fold:  # in a repeat's 2nd pass: wall times up to the repeat's end ran before t
        wall += _offset_change(t, tz)
    it = croniter()(rule.cron, wall + timedelta(seconds=1))
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
