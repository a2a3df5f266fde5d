"""``rache failures``: the recent failed runs, and a plain job's failed run scheduled again."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

from ..errors import JobNotFound
from ..formatting import printable, relative, timestamp
from .group import Context, json_value, main


def _first_line(error: Optional[str], width: int = 100) -> str:
    """An error's first line, cut at ``width`` characters (``--json`` has it whole)."""
    line = (error or "").strip().splitlines()[0] if (error or "").strip() else "-"
    return line if len(line) <= width else line[: width - 1] + "…"


def _as_json(run: Any) -> str:
    return json.dumps({field: json_value(value) for field, value in run._asdict().items()})


@main.command()
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: every field of each run.")
@click.option(
    "--again",
    "again",
    metavar="OCCURRENCE_ID",
    help="Schedule this failed run's job again, due now (a plain job only).",
)
@click.pass_obj
def failures(obj: Context, limit: Optional[int], as_json: bool, again: Optional[str]) -> None:
    """The recent failed runs, newest first (the last 100 of each shard are kept).

    A run fails when its handler raised with no retry left (rache dispatch --retries), when
    a task queue's worker reported it failed, or when finish_run was called with an error.

    --again OCCURRENCE_ID schedules that run's job again, due now: a plain job, not
    scheduled meanwhile, is handed out anew (a new run, with the data it kept). A recurring
    job is left as it is (its next occurrence comes by its rule, and scheduling its id as a
    plain job would replace the rule): exit 1. So is a job scheduled again already.
    """
    scheduler = obj.scheduler
    if again is not None:
        _again(obj, again)
        return
    runs = scheduler.failures(limit)
    if not runs and not as_json:
        click.echo("no failed runs")
        return
    now = obj.now()
    for run in runs:
        if as_json:
            click.echo(_as_json(run))
            continue
        at = run.finished_at if run.finished_at is not None else run.due
        when = f"{timestamp(at)} {relative(at, now):>12}"
        tries = f"{run.attempts + 1} attempts" if run.attempts else "1 attempt"
        click.echo(f"{when}  {printable(run.occurrence_id)}  ({tries})")
        click.echo("    " + click.style(printable(_first_line(run.error)), fg="red"))


def _again(obj: Context, occurrence_id: str) -> None:
    """Schedule the job of a failed run again, due now; exit 1 when it cannot be."""
    scheduler = obj.scheduler
    found = [run for run in scheduler.failures() if run.occurrence_id == occurrence_id]
    if not found:
        click.echo(
            f"rache: no recent failed run {printable(occurrence_id)!r} (rache failures lists them)",
            err=True,
        )
        sys.exit(1)
    job_id = found[0].job_id
    try:
        details = scheduler.job_details(job_id)
    except JobNotFound:
        details = None
    if details is not None and details.get("recurring") is not None:
        click.echo(
            f"rache: job {printable(job_id)!r} recurs: its failed occurrence is not run again "
            "(its next one comes by its rule; rache show gives it)",
            err=True,
        )
        sys.exit(1)
    if details is not None and details.get("schedule_at") is not None:
        due = details["schedule_at"]
        click.echo(
            f"rache: job {printable(job_id)!r} is scheduled again already, at "
            f"{timestamp(due)} ({relative(due, obj.now())}): nothing changed",
            err=True,
        )
        sys.exit(1)
    due = scheduler.schedule_job(job_id, 0)
    kept = "" if details is not None else " (its data was gone: none)"
    click.echo(f"scheduled {printable(job_id)} again at {timestamp(due)}{kept}")
