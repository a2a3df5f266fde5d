"""Commands on jobs: ``list``, ``show``, ``add``, ``rm``, ``runs``."""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, Tuple

import click

from ..errors import JobNotFound
from ..formatting import ago, parse_duration, printable, relative, run_state, timestamp
from ..models import Run
from .group import Context, echo_table, json_value, main

#: The widest an error is shown in ``rache runs``' table (its first line; ``--json``: whole).
ERROR_WIDTH = 80


@main.command("list")
@click.option("--due", is_flag=True, help="Only the jobs due now.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many jobs.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: id and due time.")
@click.pass_obj
def list_jobs(obj: Context, due: bool, limit: Optional[int], as_json: bool) -> None:
    """Scheduled jobs, earliest first, with their due times."""
    now = obj.now()
    for shown, (job_id, at) in enumerate(obj.scheduler.scheduled_jobs(with_times=True)):
        if (due and at > now) or (limit is not None and shown >= limit):
            break
        if as_json:
            click.echo(json.dumps({"id": json_value(job_id), "due": at}))
        else:
            overdue = at <= now
            when = click.style(f"{relative(at, now):>16}", fg="yellow" if overdue else None)
            click.echo(f"{timestamp(at)}  {when}  {printable(job_id)}")


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def show(obj: Context, job_id: str, as_json: bool) -> None:
    """One job: its due time and data."""
    try:
        job = obj.scheduler.job_details(job_id)
    except JobNotFound as error:
        click.echo(f"rache: {error}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({key: json_value(value) for key, value in job.items()}))
        return
    due = job.pop("schedule_at")
    job.pop("id")
    click.echo(f"id           {printable(job_id)}")
    when = "not scheduled" if due is None else f"{timestamp(due)} ({relative(due, obj.now())})"
    click.echo(f"due          {when}")
    for key, value in job.items():
        click.echo(f"{printable(key):<12} {value!r}")


@main.command()
@click.argument("job_id")
@click.option("--in", "schedule_in", required=True, help="When: 90, 10m, 1h30m, -5s...")
@click.option("--set", "fields", multiple=True, metavar="KEY=VALUE", help="Data to attach.")
@click.pass_obj
def add(obj: Context, job_id: str, schedule_in: str, fields: Tuple[str, ...]) -> None:
    """Schedule a job (or move it), optionally with data."""
    seconds = parse_duration(schedule_in)
    data: Dict[str, Any] = {}
    for field in fields:
        key, sep, value = field.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{field!r} is not KEY=VALUE", param_hint="--set")
        data[key] = value
    offset = int(seconds) if float(seconds).is_integer() else seconds
    due = obj.scheduler.schedule_job(job_id, offset, **data)
    when = f"{timestamp(due)} ({relative(due, obj.now())})"
    click.echo(f"scheduled {printable(job_id)} at {when}")


@main.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="An unknown id is no error (as rm -f).")
@click.pass_obj
def rm(obj: Context, job_ids: Tuple[str, ...], force: bool) -> None:
    """Remove jobs and their data; exit 1 if an id was unknown (the others still go)."""
    scheduler, unknown = obj.scheduler, 0
    for job_id in job_ids:
        if scheduler.delete_job(job_id):
            click.echo(f"removed {printable(job_id)}")
        else:
            unknown += 1
            click.echo(f"rache: no job with id {printable(job_id)!r}", err=True)
    if unknown and not force:
        sys.exit(1)


@main.command()
@click.argument("job_id")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: every field of each run.")
@click.pass_obj
def runs(obj: Context, job_id: str, limit: Optional[int], as_json: bool) -> None:
    """A job's runs, newest first.

    Each with its state, occurrence id, due time, when and by which poller it was claimed,
    when it finished, and the error of a failure (or the reason a run was skipped).

    A run is recorded each time a poller hands the job out (the last 20 are kept, unless
    the pollers' Scheduler(history=...) says otherwise). Exit 1 when there is no such job
    and no run of it.
    """
    scheduler = obj.scheduler
    found = scheduler.runs(job_id)[:limit]
    if not found:
        try:
            scheduler.job_details(job_id)
        except JobNotFound as error:
            click.echo(f"rache: {error}", err=True)
            sys.exit(1)
        if not as_json:
            click.echo(f"no run of {printable(job_id)} recorded yet", err=True)
        return
    if as_json:
        for run in found:
            click.echo(json.dumps({key: json_value(value) for key, value in run._asdict().items()}))
        return
    echo_table(_run_rows(found, obj.now()))


def _run_rows(found: List[Run], now: float) -> List[Tuple[str, ...]]:
    """``rache runs``' table: a heading, then a row a run."""
    rows: List[Tuple[str, ...]] = [
        ("STATE", "OCCURRENCE", "DUE", "CLAIMED", "BY", "FINISHED", "ERROR")
    ]
    for run in found:
        error = (run.error or "").strip().splitlines()[0] if (run.error or "").strip() else ""
        if len(error) > ERROR_WIDTH:
            error = error[: ERROR_WIDTH - 1] + "…"
        rows.append(
            (
                run_state(run.state, run.attempts),
                printable(run.occurrence_id),
                timestamp(run.due),
                "-" if run.claimed_at is None else ago(run.claimed_at, now),
                printable(run.claimed_by or "-"),
                "-" if run.finished_at is None else ago(run.finished_at, now),
                printable(error) or "-",
            )
        )
    return rows
