"""Commands that move or mend a schedule: ``orphans``, ``reshard``, ``export``, ``import``."""

from __future__ import annotations

import json
import sys
from typing import Any, Tuple

import click

from .. import admin
from ..constants import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MAX_SHARDS
from ..formatting import printable
from ..models import text
from .group import Context, from_json, json_value, main


@main.command()
@click.option("--delete", is_flag=True, help="Remove their data too (forget-3.lua).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one id each.")
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH_SIZE),
    default=DEFAULT_BATCH_SIZE,
    help="Keys per SCAN.",
)
@click.pass_obj
def orphans(obj: Context, delete: bool, as_json: bool, batch: int) -> None:
    """Jobs with data and no schedule entry (handed out, never scheduled again).

    Lists them, SCAN by SCAN (--batch keys at a time); with --delete, removes their data,
    each batch in one script that spares a job scheduled again meanwhile.
    """
    layout = obj.scheduler.layout  # checks --shards against the schedule first
    count = 0
    found = admin.orphans(
        obj.client, layout.prefix, shards=layout.count, delete=delete, batch_size=batch
    )
    for raw_id in found:
        count += 1
        if as_json:
            click.echo(json.dumps({"id": json_value(text(raw_id))}))
        else:
            click.echo(printable(raw_id))
    verb = "removed the data of" if delete else "found"
    click.echo(f"{verb} {count:,} job(s) with data and no schedule entry", err=True)


@main.command("reshard")
@click.option(
    "--to", "to", type=click.IntRange(1, MAX_SHARDS), required=True, help="The new shard count."
)
@click.pass_obj
def reshard_command(obj: Context, to: int) -> None:
    """Move the schedule to another shard count (stop its pollers and writers first).

    Moves every job with its due time and data, then records the new count; safe to run
    again if it stopped halfway.
    """
    moved = admin.reshard(obj.client, obj.prefix, shards=to)
    click.echo(f"moved {moved} jobs: the schedule under {obj.prefix!r} has {to} shard(s)")


@main.command("export")
@click.argument("output", type=click.File("w"), default="-")
@click.pass_obj
def export(obj: Context, output: Any) -> None:
    """Every job as JSON lines (id, due, data, run, rule), a page per script call, to OUTPUT."""
    count, total = 0, obj.scheduler.stats(intervals=0).total
    with click.progressbar(length=total, label="exporting", file=sys.stderr) as bar:
        for job_id, due, data, run, rule in obj.scheduler.export_jobs():
            fields = {key: json_value(value) for key, value in data.items()}
            line = {"id": json_value(job_id), "due": due, "data": fields}
            if run is not None or rule is not None:  # what a copy needs to be the same job
                line.update(run=run, rule=rule)
            output.write(json.dumps(line) + "\n")
            count += 1
            if count % 1000 == 0:
                bar.update(1000)
    click.echo(f"exported {count:,} jobs", err=True)


@main.command("import")
@click.argument("source", type=click.File("r"))
@click.pass_obj
def import_(obj: Context, source: Any) -> None:
    """Schedule the jobs of an export (JSON lines), at their due times, in batches.

    Each keeps its run and rule when the export has them (an export of rache 1.0 or later).
    """
    jobs = []
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            data = {key: from_json(value) for key, value in entry.get("data", {}).items()}
            job: Tuple[Any, ...] = (from_json(entry["id"]), entry["due"], data)
            if "run" in entry or "rule" in entry:
                job += (entry.get("run"), entry.get("rule"))
            jobs.append(job)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise click.UsageError(f"{source.name} line {number}: not a job ({error})") from None
    with click.progressbar(length=len(jobs), label="importing", file=sys.stderr) as bar:
        # every job is checked before any is sent
        count = obj.scheduler.schedule_jobs(jobs, at=True, progress=bar.update)
    click.echo(f"imported {count:,} jobs", err=True)
