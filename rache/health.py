"""The verdict on a schedule, without I/O: :func:`verdict` from one reading of it.

``Scheduler.health()`` reads the schedule's figures (``stats``) and its live pollers
(``pollers``), and the id of the oldest due job when it is late; this judges them. So
``rache doctor``, the dashboard and ``rache dispatch``'s gauges say the same thing.

A check is a function of what was read that gives :class:`rache.Problem` values. The
checks of a recurring job's runs (no success for N of its occurrences, K failures in a
row) judge a bounded reading: the first ``HEALTH_JOBS`` recurring jobs by id, each with
its newest ``HEALTH_RUNS`` runs (recurringRuns-3.lua, ``HEALTH_BATCH`` jobs a call).
"""

from __future__ import annotations

from typing import Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from . import recurrence
from .arguments import count, positive_seconds
from .constants import HEALTH_JOBS, HEALTH_RUNS, MAX_HISTORY
from .decode import RecurringReading
from .formatting import printable, span
from .models import Health, Poller, Problem, RecurringRuns, Run, Stats, text
from .rules import Every, Placed

#: The kinds of problem (``Problem.kind``).
NO_POLLER = "no live poller"
LATE = "late"
STALE = "no success"
FAILING = "failing"
SET_ASIDE = "set aside"


def no_poller(stats: Stats, pollers: List[Poller]) -> List[Problem]:
    """Jobs are due and no poller is alive to hand them out."""
    if stats.due and not pollers:
        jobs = "1 job is due" if stats.due == 1 else f"{stats.due:,} jobs are due"
        message = f"{jobs} and no poller is alive to hand out jobs (rache pollers lists none)"
        return [Problem(NO_POLLER, None, message)]
    return []


def set_aside(stats: Stats) -> List[Problem]:
    """Jobs a claim set aside because their stored rule does not parse (``bad_rules``)."""
    return [
        Problem(
            SET_ASIDE,
            job.job_id,
            f"job {printable(job.job_id)!r} was set aside: its stored rule {job.rule!r} does "
            "not parse, so it is never handed out until schedule_recurring gives it a rule "
            "or delete_job removes it",
        )
        for job in stats.set_aside
    ]


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


class Checks(NamedTuple):
    """The recurring jobs' checks asked for, checked: each a count, 0 for no such check."""

    stale_periods: int
    failed_in_a_row: int

    @classmethod
    def of(cls, stale_periods: object, failed_in_a_row: object) -> Checks:
        """The arguments of ``health()`` checked (``TypeError``/``ValueError`` naming them)."""
        return cls(
            count(stale_periods, "stale_periods", 0, 10**6),
            count(failed_in_a_row, "failed_in_a_row", 0, MAX_HISTORY),
        )

    @property
    def runs(self) -> int:
        """The newest runs to read per job: ``HEALTH_RUNS``, or the failures in a row asked."""
        return max(HEALTH_RUNS, self.failed_in_a_row)


def examined(ids: Iterable[Any]) -> Tuple[List[bytes], int]:
    """The raw ids of the recurring jobs to examine, and how many were left out.

    The first ``HEALTH_JOBS`` by id (bytes order): the same jobs at every reading.
    """
    raw = sorted(job_id.encode() if isinstance(job_id, str) else job_id for job_id in ids)
    return raw[:HEALTH_JOBS], max(0, len(raw) - HEALTH_JOBS)


class Judged(NamedTuple):
    """One recurring job as read and judged: its public reading, the run that fails newest."""

    runs: RecurringRuns
    newest_failure: Optional[Run]
    #: when it counts its missed occurrences from (ms), and what that moment is
    since: Optional[int]
    since_what: str


def judge(reading: RecurringReading, now_ms: int, stale_periods: int) -> Optional[Judged]:
    """One job's reading summed up; None when it is no longer recurring.

    Its last success: the newest succeeded run's finish. Failures in a row: its newest runs
    with an outcome that failed, up to that success. Missed: the occurrences due after its
    last success, or if none of the runs read succeeded, after the oldest run read (about
    when it was first due, or a lower bound); if none of them has an outcome (outcomes
    not reported), after its newest run's due time; with no run kept, after its due time
    (a job never handed out counts from its first occurrence, so a new job is not late).
    """
    if reading.placed is None:
        return None
    runs = reading.runs
    success = next((run for run in runs if run.state == "succeeded"), None)
    in_a_row, newest_failure = 0, None
    for run in runs:
        if run.state == "succeeded":
            break
        if run.state == "failed":
            in_a_row += 1
            newest_failure = newest_failure or run
    since: Optional[int]
    if success is not None:
        since, what = _ms(success.finished_at or success.due), "its last success was {ago} ago"
    elif newest_failure is not None:
        since, what = _ms(runs[-1].due), "none of its runs kept succeeded, the oldest due {ago} ago"
    elif runs:
        since, what = (
            _ms(runs[0].due),
            "its outcomes are not reported; its newest run fell due {ago} ago",
        )
    else:
        since, what = reading.due_ms, "no run of it is kept; it fell due {ago} ago"
    missed = 0 if since is None else _missed(reading.placed, since, now_ms, stale_periods)
    value = RecurringRuns(
        job_id=runs[0].job_id if runs else text(reading.raw_id),
        last_success=None if success is None else success.finished_at,
        failed_in_a_row=in_a_row,
        last_run=runs[0].claimed_at if runs else None,
        missed=missed,
    )
    return Judged(value, newest_failure, since, what)


def judge_all(readings: Tuple[int, List[RecurringReading]], stale_periods: int) -> List[Judged]:
    """A reply's readings (``decode.recurring_runs``) judged; jobs no longer recurring left out."""
    now, found = readings
    judged = (judge(reading, now, stale_periods) for reading in found)
    return [job for job in judged if job is not None]


def _by_id(runs: RecurringRuns) -> bytes:
    """The order of ``Health.recurring``: by id, bytes order (as jobs are examined)."""
    job_id = runs.job_id
    return job_id.encode() if isinstance(job_id, str) else bytes(job_id)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _missed(placed: Placed, since: int, now: int, most: int) -> int:
    """How many occurrences of ``placed`` fall in ``(since, now]`` (ms), counted up to ``most``."""
    if most <= 0:
        most = 1
    first = recurrence.next_at_or_after(placed, since + 1)
    if first > now:
        return 0
    if isinstance(placed.rule, Every):
        return min(most, 1 + (now - first) // placed.rule.every_ms)
    missed, t = 1, first
    while missed < most:
        t = recurrence.next_at_or_after(placed, t + 1)
        if t > now:
            break
        missed += 1
    return missed


def recurring_problems(judged: Sequence[Judged], checks: Checks, now: float) -> List[Problem]:
    """The problems of the recurring jobs judged by ``checks``.

    No success in ``stale_periods`` of their occurrences; ``failed_in_a_row`` failures in a row.
    """
    problems = []
    for job in judged:
        runs, who = job.runs, f"recurring job {printable(job.runs.job_id)!r}"
        if checks.stale_periods and runs.missed >= checks.stale_periods and job.since is not None:
            ago = span(now - job.since / 1000)
            problems.append(
                Problem(
                    STALE,
                    runs.job_id,
                    f"{who} has not succeeded in its last {runs.missed} occurrences "
                    f"({job.since_what.format(ago=ago)})",
                )
            )
        if checks.failed_in_a_row and runs.failed_in_a_row >= checks.failed_in_a_row:
            error = job.newest_failure.error if job.newest_failure else None
            why = f" (the newest: {printable(error)[:200]})" if error else ""
            problems.append(
                Problem(
                    FAILING,
                    runs.job_id,
                    f"{who} failed its last {runs.failed_in_a_row} runs in a row{why}",
                )
            )
    return problems


def verdict(
    stats: Stats,
    pollers: List[Poller],
    *,
    late: float,
    oldest: Optional[Any] = None,
    more: Iterable[Problem] = (),
    judged: Sequence[Judged] = (),
    checks: Optional[Checks] = None,
    unexamined: int = 0,
) -> Health:
    """The schedule's health from its figures and live pollers; ``more``: other checks' problems.

    ``judged``: the recurring jobs examined, judged by ``checks``; ``unexamined``: how many
    were left out.
    """
    problems = no_poller(stats, pollers) + late_job(stats, late, oldest) + set_aside(stats)
    problems += more
    if checks is not None:
        problems += recurring_problems(judged, checks, stats.now)
    recurring = tuple(sorted((job.runs for job in judged), key=_by_id))
    return Health(not problems, problems, stats, pollers, recurring, unexamined)
