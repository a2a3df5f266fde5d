"""Commands on the schedule as a whole: ``stats``, ``watch`` and ``doctor``."""

from __future__ import annotations

import json
import os
import select
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional

import click
import redis

from .. import admin
from ..constants import (
    DEFAULT_FAILED_IN_A_ROW,
    DEFAULT_LATE,
    DEFAULT_STALE_PERIODS,
    MAX_HISTORY,
)
from ..formatting import parse_duration, printable, relative, span, timestamp
from ..models import Stats
from .group import Context, explain, main

_BARS = " ▁▂▃▄▅▆▇█"


def render_stats(stats: Stats, colour: bool = True) -> List[str]:
    """The lines of ``rache stats`` and ``rache watch``."""
    lines = [
        f"jobs        {stats.total:,}",
        f"due now     {stats.due:,}",
    ]
    if stats.earliest is not None and stats.due:
        lag = f"{relative(stats.earliest, stats.now)} ({timestamp(stats.earliest)})"
        lines.append("oldest due  " + click.style(lag, fg="yellow" if colour else None))
    if stats.next_due is not None:
        lines.append(
            f"next due    {relative(stats.next_due, stats.now)} ({timestamp(stats.next_due)})"
        )
    if stats.coming:
        top = max(stats.coming)
        bars = "".join(_BARS[-(-8 * n // top)] if n else _BARS[0] for n in stats.coming)
        span = relative(stats.now + stats.interval * len(stats.coming), stats.now)
        lines.append(f"coming      |{bars}| {sum(stats.coming):,} {span}, peak {top:,}")
    if stats.set_aside:
        count = len(stats.set_aside)
        head = f"set aside   {count} job{'s' if count > 1 else ''} whose rule does not parse"
        lines.append(click.style(head, fg="red" if colour else None))
        for job in stats.set_aside:
            lines.append(
                f"            {printable(job.job_id)}: rule {printable(job.rule)!r}, "
                f"was due {timestamp(job.due)}"
            )
    return lines


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """Total, due now, lag, next due time, jobs due per minute over the next hour; set aside."""
    figures = obj.scheduler.stats()
    if as_json:
        fields = figures._asdict()
        fields["lag"] = figures.lag
        fields["set_aside"] = [
            {"id": printable(job.job_id), "rule": job.rule, "due": job.due}
            for job in figures.set_aside
        ]
        click.echo(json.dumps(fields))
    else:
        for line in render_stats(figures):
            click.echo(line)


@contextmanager
def _keys() -> Iterator[Any]:
    """Key presses without Enter while in the block, where stdin is a terminal."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@main.command()
@click.option("--every", default=1.0, type=click.FloatRange(min=0.1), help="Seconds.")
@click.pass_obj
def watch(obj: Context, every: float) -> None:
    """A live view of the stats, refreshed every second; q or Ctrl-C quits."""
    scheduler = obj.scheduler  # a wrong --shards or --prefix: said at once, and exit 2
    down: Optional[str] = None  # what the last failed read said, while Redis is away
    with _keys() as fd:
        try:
            while True:
                try:
                    figures = scheduler.stats()
                except (redis.ConnectionError, redis.TimeoutError) as error:
                    known = explain(error, obj.url, obj.cluster)
                    if isinstance(error, redis.AuthenticationError) or known is None:
                        raise
                    down = known[0]
                    click.clear()
                    click.echo(f"rache watch  {printable(obj.prefix)}  {down}; retrying")
                else:
                    down = None
                    click.clear()
                    header = f"rache watch  {printable(obj.prefix)}  {timestamp(figures.now)}"
                    click.echo(header)
                    for line in render_stats(figures):
                        click.echo(line)
                click.echo("q: quit")
                if fd is None:
                    time.sleep(every)
                elif select.select([fd], [], [], every)[0] and os.read(fd, 1) in (b"q", b"Q"):
                    return
        except KeyboardInterrupt:
            return


@main.command()
@click.option(
    "--late",
    metavar="DURATION",
    default=None,
    help="The oldest due job is a problem once due this long (90s, 5m...) [5m].",
)
@click.option(
    "--stale-periods",
    metavar="N",
    type=click.IntRange(0, 10**6),
    default=DEFAULT_STALE_PERIODS,
    show_default=True,
    help="A recurring job is a problem once N of its occurrences fell due after its last "
    "success (0: no such check).",
)
@click.option(
    "--failed-in-a-row",
    metavar="K",
    type=click.IntRange(0, MAX_HISTORY),
    default=DEFAULT_FAILED_IN_A_ROW,
    show_default=True,
    help="A recurring job is a problem once its last K runs failed (0: no such check).",
)
@click.pass_obj
def doctor(obj: Context, late: Optional[str], stale_periods: int, failed_in_a_row: int) -> None:
    """Check the server and the schedule's health; exit 1 if anything is wrong, else 0.

    The server: what silently breaks a schedule (version, eviction, persistence, prefix,
    scripts). The schedule: jobs due with no live poller, the oldest due job later than
    --late, a recurring job with no success in --stale-periods of its occurrences or
    --failed-in-a-row failures in a row (the first 1,000 recurring jobs by id). For a
    Kubernetes probe or a cron monitor.
    """
    threshold = DEFAULT_LATE if late is None else parse_duration(late)
    if threshold < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--late")
    problems = 0
    found = admin.checks(
        obj.client,
        obj.prefix,
        cluster=obj.cluster,
        run_script=lambda: obj.scheduler.stats(intervals=0),
    )
    for check in found:
        if check.ok is None:
            mark = click.style("??  ", fg="yellow")
        else:
            mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.what}")
        if check.ok is False:
            problems += 1
        if check.fix and not check.ok:
            click.echo(f"     {check.fix}")
    if found and found[-1].ok and found[-1].what.startswith(admin.SCRIPTS_RUN):
        problems += _health(obj, threshold, stale_periods, failed_in_a_row)
    sys.exit(1 if problems else 0)


def _health(obj: Context, late: float, stale_periods: int, failed_in_a_row: int) -> int:
    """Print the schedule's verdict (``Scheduler.health``); the number of problems."""
    verdict = obj.scheduler.health(
        late=late, stale_periods=stale_periods, failed_in_a_row=failed_in_a_row
    )
    for problem in verdict.problems:
        click.echo(f"{click.style('FAIL', fg='red')} {problem.message}")
    if verdict.ok:
        figures = verdict.stats
        live = len(verdict.pollers)
        due = f"{figures.due:,} due" + (
            f", the oldest {span(figures.lag)} overdue" if figures.due else ""
        )
        pollers = f"{live} live poller{'' if live == 1 else 's'}"
        recurring = ""
        if stale_periods or failed_in_a_row:
            examined = len(verdict.recurring)
            recurring = f", {examined:,} recurring job{'' if examined == 1 else 's'} checked"
        click.echo(
            f"{click.style('ok  ', fg='green')} schedule healthy: {due}, {pollers}{recurring}"
        )
    if verdict.unexamined:
        click.echo(
            f"{click.style('??  ', fg='yellow')} {verdict.unexamined:,} recurring jobs not "
            f"checked: the first {len(verdict.recurring):,} by id were"
        )
    return len(verdict.problems)
