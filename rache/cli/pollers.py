"""``rache pollers``: the live pollers of a schedule, as a table or JSON lines."""

from __future__ import annotations

import json

import click

from ..formatting import printable, relative
from .group import Context, main


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one poller each.")
@click.pass_obj
def pollers(obj: Context, as_json: bool) -> None:
    """The live pollers: every dispatcher, rache dispatch, Celery beat and rq runner running.

    Each announces itself every few seconds; one that dies without a word drops out of the
    list within its time to live (60 s unless set), one that stops cleanly at once.
    """
    scheduler = obj.scheduler
    found = scheduler.pollers()
    if as_json:
        for poller in found:
            click.echo(json.dumps(poller._asdict()))
        return
    if not found:
        click.echo("no live poller", err=True)
        return
    now = scheduler.server_time()
    rows = [("NAME", "KIND", "PID", "VERSION", "STARTED", "LAST CLAIM", "HANDED OUT", "FAILED")]
    for poller in found:
        rows.append(
            (
                printable(poller.name),
                printable(poller.kind),
                str(poller.pid),
                printable(poller.version),
                _ago(poller.started, now),
                "never" if poller.last_claim is None else _ago(poller.last_claim, now),
                f"{poller.handed_out:,}",
                f"{poller.failures:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _ago(moment: float, now: float) -> str:
    text = relative(moment, now)
    return text.replace(" overdue", " ago") if text.endswith("overdue") else text
