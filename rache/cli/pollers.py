"""``rache pollers``: the live pollers of a schedule, as a table or JSON lines."""

from __future__ import annotations

import json

import click

from ..formatting import ago, printable
from .group import Context, echo_table, main


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
                ago(poller.started, now),
                ago(poller.last_claim, now),
                f"{poller.handed_out:,}",
                f"{poller.failures:,}",
            )
        )
    echo_table(rows)
