"""The verdict on a schedule, without I/O: :func:`verdict` from one reading of it.

``Scheduler.health()`` reads the schedule's figures (``stats``) and its live pollers
(``pollers``), and the id of the oldest due job when it is late; this judges them. So
``rache doctor``, the dashboard and ``rache dispatch``'s gauges say the same thing.

A check is a function of what was read that gives :class:`rache.Problem` values; the
checks of a recurring job's run history (last success older than N periods, K failures in
a row) are to come as more of them, fed by ``Scheduler.runs``.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional

from .arguments import positive_seconds
from .formatting import printable, span
from .models import Health, Poller, Problem, Stats

#: The kinds of problem (``Problem.kind``).
NO_POLLER = "no live poller"
LATE = "late"


def no_poller(stats: Stats, pollers: List[Poller]) -> List[Problem]:
    """Jobs are due and no poller is alive to hand them out."""
    if stats.due and not pollers:
        jobs = "1 job is due" if stats.due == 1 else f"{stats.due:,} jobs are due"
        message = f"{jobs} and no poller is alive to hand out jobs (rache pollers lists none)"
        return [Problem(NO_POLLER, None, message)]
    return []


def late_threshold(late: object) -> float:
    """``late`` checked: seconds or a timedelta, 0 or more."""
    return positive_seconds(late, "late", allow_zero=True)


def is_late(stats: Stats, late: float) -> bool:
    """Whether the oldest due job is more than ``late`` seconds overdue."""
    return stats.due > 0 and stats.lag > late


def late_job(stats: Stats, late: float, oldest: Any) -> List[Problem]:
    """The oldest due job is more than ``late`` seconds overdue (``oldest``: its id)."""
    if not is_late(stats, late):
        return []
    who = "a job" if oldest is None else f"job {printable(oldest)!r}"
    message = (
        f"{who} has been due for {span(stats.lag)} (more than {span(late)}): the schedule "
        "is not keeping up, or its pollers stalled"
    )
    return [Problem(LATE, oldest, message)]


def verdict(
    stats: Stats,
    pollers: List[Poller],
    *,
    late: float,
    oldest: Optional[Any] = None,
    more: Iterable[Problem] = (),
) -> Health:
    """The schedule's health from its figures and live pollers; ``more``: other checks' problems."""
    problems = no_poller(stats, pollers) + late_job(stats, late, oldest) + list(more)
    return Health(not problems, problems, stats, pollers)
