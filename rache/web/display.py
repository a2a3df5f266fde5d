"""What the pages show, as text and numbers: figures, the chart, rules, a job's fields.

Pure functions of what the Redis side read; times through ``rache.formatting``, as the
command shows them (the pages add milliseconds).
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from ..formatting import ago, at, literal, relative, run_state, span
from ..models import Health, Poller, Run, Stats
from ..rules import from_details
from ..rules import zone as rules_zone
from .settings import ERROR_SHOWN, LAG_BAD, LAG_WARNING


def job_path(job_id: Any) -> Optional[str]:
    """The path of a job's page (its id URL-encoded whole), None for an id that is bytes.

    ``.`` and ``..`` would be dot segments, which browsers remove from a path even
    percent-encoded: theirs is ``/job?id=...``, the find box's address.
    """
    if not isinstance(job_id, str):
        return None
    quoted = quote(job_id, safe="")
    return f"/job?id={quoted}" if job_id in (".", "..") else f"/jobs/{quoted}"


def describe_rule(rule: Dict[str, Any]) -> str:
    """A rule as it was given: ``every 60 s``, or the cron expression and its time zone."""
    return str(from_details(rule))


def local(due: float, rule: Optional[Dict[str, Any]]) -> str:
    """A cron rule's occurrence on its zone's wall clock (``02:30 CET``); '' for UTC."""
    if rule is None or rule.get("timezone", "UTC") == "UTC":
        return ""
    try:
        zone = rules_zone(rule["timezone"])
    except ValueError:  # a zone this host does not know: UTC only
        return ""
    moment = datetime.datetime.fromtimestamp(due, zone)
    return moment.strftime(f"%Y-%m-%d %H:%M:%S %Z in {rule['timezone']}")


def describe_misfire(rule: Dict[str, Any]) -> str:
    """The misfire policy, with its grace for ``skip``."""
    if rule["misfire"] == "skip":
        return f"skip (if more than {span(rule['grace'])} late)"
    return str(rule["misfire"])


def figures(stats: Stats) -> Dict[str, Any]:
    """The overview's figures, as shown and as numbers."""
    oldest = stats.earliest if stats.due else None
    return {
        "now": stats.now,
        "now_text": at(stats.now),
        "total": f"{stats.total:,}",
        "due": f"{stats.due:,}",
        "lag": span(stats.lag) if stats.due else "none due",
        "lag_at": f"oldest due {at(oldest)}" if oldest is not None else "",
        **lag_level(stats),
        "next_due": relative(stats.next_due, stats.now) or "nothing to come",
        "next_due_at": at(stats.next_due) if stats.next_due is not None else "",
        "numbers": {
            "total": stats.total,
            "due": stats.due,
            "lag": stats.lag,
            "earliest": stats.earliest,
            "next_due": stats.next_due,
            "coming": stats.coming,
            "interval": stats.interval,
        },
    }


def lag_level(stats: Stats) -> Dict[str, str]:
    """How bad the lag is: ``lag_level`` and ``lag_note``.

    The level, ok, warning (past ``LAG_WARNING``) or bad (past ``LAG_BAD``), is the class
    the overview colours the lag by; the note says so in words, so that the colour is never
    the only sign.
    """
    lag = stats.lag if stats.due else 0.0
    if lag > LAG_BAD:
        return {"lag_level": "bad", "lag_note": f"more than {span(LAG_BAD)} late"}
    if lag > LAG_WARNING:
        return {"lag_level": "warning", "lag_note": f"more than {span(LAG_WARNING)} late"}
    return {"lag_level": "ok", "lag_note": f"within {span(LAG_WARNING)}" if stats.due else ""}


def poller_rows(pollers: List[Poller], now: float) -> List[Dict[str, Any]]:
    """The overview's live pollers: name, kind, host and pid, last claim, counts."""
    return [
        {
            "name": poller.name,
            "kind": poller.kind,
            "host": f"{poller.host} (pid {poller.pid})",
            "version": poller.version,
            "started": ago(poller.started, now),
            "last_claim": ago(poller.last_claim, now),
            "last_claim_at": at(poller.last_claim) if poller.last_claim is not None else "",
            "handed_out": f"{poller.handed_out:,}",
            "failures": f"{poller.failures:,}",
            "failing": poller.failures > 0,
        }
        for poller in pollers
    ]


def verdict(health: Optional[Health]) -> Dict[str, Any]:
    """The health verdict as the overview shows it: ok, a heading, and each problem's sentence.

    None: no schedule recorded yet (a sharded one before its first write), nothing to judge.
    """
    if health is None:
        return {"ok": True, "title": "Nothing to judge: no schedule yet", "problems": []}
    if health.ok:
        live = len(health.pollers)
        pollers = f"{live} live poller{'' if live == 1 else 's'}"
        title = f"Healthy: {pollers}, no due job more than {span(LAG_BAD)} late"
        return {"ok": True, "title": title, "problems": []}
    count = len(health.problems)
    title = f"Unhealthy: {count} problem{'' if count == 1 else 's'}"
    problems = [{"kind": p.kind, "message": p.message} for p in health.problems]
    return {"ok": False, "title": title, "problems": problems}


#: The chart's drawing area, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 600, 150


def chart(stats: Stats) -> Dict[str, Any]:
    """The bars of the chart of jobs falling due in each coming interval."""
    coming = stats.coming
    peak = max(coming, default=0)
    width = CHART_WIDTH / max(1, len(coming))
    bars = []
    for i, count in enumerate(coming):
        height = 0.0 if not peak else max(1.0, CHART_HEIGHT * count / peak) if count else 0.0
        start = span(i * stats.interval)
        bars.append(
            {
                "x": round(i * width + 0.5, 2),
                "y": round(CHART_HEIGHT - height, 2),
                "width": round(max(1.0, width - 1), 2),
                "height": round(height, 2),
                "title": f"{count:,} due in +{start} to +{span((i + 1) * stats.interval)}",
            }
        )
    window = span(len(coming) * stats.interval)
    label = (
        f"Jobs falling due in each {span(stats.interval)} of the next {window}: "
        f"{sum(coming):,} in all, at most {peak:,} in one interval"
    )
    middle = span(len(coming) * stats.interval / 2)
    return {"bars": bars, "peak": f"{peak:,}", "label": label, "window": window, "middle": middle}


def values(job: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(field, value as text, type) of each data field of a job, by field name."""
    shown = []
    for key, value in job.items():
        if key in ("id", "schedule_at", "recurring", "next_occurrences"):
            continue
        shown.append((literal(key), literal(value), type(value).__name__))
    return sorted(shown)


def job_rows(jobs: List[Tuple[Any, float]], now: float) -> List[Dict[str, Any]]:
    """The overview's list of the earliest jobs: id, link, due time, how far off."""
    return [
        {
            "id": literal(job_id),
            "url": job_path(job_id),
            "at": at(due),
            "relative": relative(due, now),
            "overdue": due <= now,
        }
        for job_id, due in jobs
    ]


def occurrences(job: Dict[str, Any], now: float) -> List[Tuple[str, str, str]]:
    """A recurring job's next occurrences: (UTC, how far off, on its zone's wall clock)."""
    rule = job.get("recurring")
    return [(at(t), relative(t, now), local(t, rule)) for t in job.get("next_occurrences", [])]


def recurring_rows(
    jobs: List[Tuple[Dict[str, Any], List[Run]]], now: float
) -> List[Dict[str, Any]]:
    """The rows of /recurring: each job's id, rule, next run, last run and outcome.

    The next run is the due time when there are no occurrences; the last run is the first
    of the job's runs (newest first).
    """
    rows = []
    for job, runs in jobs:
        upcoming = job.get("next_occurrences") or [job.get("schedule_at")]
        rows.append(
            {
                "id": job["id"],
                "rule": job.get("recurring"),
                "next": at(upcoming[0]),
                "relative": relative(upcoming[0], now),
                "last": last_run(runs, now),
            }
        )
    return rows


def short(error: Optional[str], limit: int = ERROR_SHOWN) -> str:
    """An error's first line, at most ``limit`` characters (``…`` where cut), for a list."""
    if not error:
        return ""
    first = error.splitlines()[0] if error.strip() else error
    cut = len(first) > limit or first != error
    return first[:limit].rstrip() + "…" if cut else first


def state_text(run: Run) -> str:
    """A run's state in words, with its failed attempts (``rache.formatting.run_state``)."""
    return run_state(run.state, run.attempts)


def state_title(run: Run) -> str:
    """What a state means, for its tooltip."""
    if run.state == "unknown":
        deadline = f" (its deadline, {at(run.deadline)})" if run.deadline is not None else ""
        return f"no outcome within its run timeout{deadline}: it may have died or hung"
    if run.state == "running" and run.deadline is not None:
        return f"no outcome yet; unknown after {at(run.deadline)}"
    if run.state == "skipped":
        return f"not handed out: {run.error or 'a policy'}"
    return ""


def run_rows(runs: List[Run], now: float) -> List[Dict[str, Any]]:
    """A job's page's runs, newest first: state, occurrence, when due, claimed, finished, error."""
    return [
        {
            "occurrence": run.occurrence_id,
            "state": run.state,
            "state_text": state_text(run),
            "state_title": state_title(run),
            "due": at(run.due),
            "claimed_at": at(run.claimed_at) if run.claimed_at is not None else "",
            "claimed_ago": ago(run.claimed_at, now) if run.claimed_at is not None else "",
            "claimed_by": run.claimed_by or "",
            "finished_at": at(run.finished_at) if run.finished_at is not None else "",
            "finished_ago": ago(run.finished_at, now) if run.finished_at is not None else "",
            "error": run.error or "",
        }
        for run in runs
    ]


def failure_rows(runs: List[Run], now: float) -> List[Dict[str, Any]]:
    """The overview's recent failures: when, which job (a link), the poller, the error."""
    return [
        {
            "id": literal(run.job_id),
            "url": job_path(run.job_id),
            "occurrence": run.occurrence_id,
            "failed_at": at(run.finished_at) if run.finished_at is not None else "",
            "failed_ago": ago(run.finished_at, now),
            "claimed_by": run.claimed_by or "",
            "error": short(run.error),
            "error_full": run.error or "",
        }
        for run in runs
    ]


def last_run(runs: List[Run], now: float) -> Optional[Dict[str, Any]]:
    """The recurring page's last run of a job: when (claimed, or due if skipped), its outcome."""
    if not runs:
        return None
    run = runs[0]
    moment = run.claimed_at if run.claimed_at is not None else run.due
    return {
        "at": at(moment),
        "ago": ago(moment, now),
        "state": run.state,
        "state_text": state_text(run),
        "state_title": state_title(run),
        "error": short(run.error),
        "error_full": run.error or "",
    }
