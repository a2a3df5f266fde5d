"""The ``rache`` command: see, change, check, copy and watch a schedule without Python.

Needs click (``pip install 'rache[cli]'``). Reads ``REDIS_URL`` and ``RACHE_REDIS_PREFIX``,
or ``--url`` and ``--prefix``. Exit status: 0 done, 1 something is wrong (``doctor`` found
a problem, ``show`` found no job, Redis cannot be reached), 2 bad usage or input.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import select
import sys
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

import redis

from .errors import MissingExtra

try:
    import click
except ImportError:  # pragma: no cover - depends on the installed extras
    raise MissingExtra("the rache command", "click", "cli") from None

from . import admin, config
from .constants import PREFIX_ENV, REDIS_URL_ENV
from .errors import ConfigurationError, JobNotFound
from .keys import MAX_SHARDS
from .models import Stats
from .scheduler import Scheduler

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BARS = " ▁▂▃▄▅▆▇█"


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``1.5``, ``-30s``, ``10m`` or ``1h30m``; ValueError otherwise."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text)
    if _NUMBER.fullmatch(body):
        return sign * float(body)
    parts = _DURATION.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise ValueError(f"not a duration: {text!r} (try 90, 1.5, 10m or 1h30m)")
    return sign * sum(float(number) * _UNITS[unit] for number, unit in parts)


def relative(due: float, now: float) -> str:
    """``in 5m 03s``, ``12s overdue`` or ``now``."""
    delta = due - now
    if abs(delta) < 0.5:
        return "now"
    seconds = round(abs(delta))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours)
    parts += [f"{minutes}m"] * bool(minutes) + [f"{secs}s"] * bool(secs)
    text = " ".join(parts[:2])
    return f"in {text}" if delta > 0 else f"{text} overdue"


def timestamp(due: float) -> str:
    """A due time as UTC text."""
    moment = datetime.datetime.fromtimestamp(due, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _json_value(value: Any) -> Any:
    return {"base64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    return value


class Context:
    """The scheduler a command works on, made on first use (so --help needs no Redis)."""

    def __init__(
        self, url: Optional[str], prefix: Optional[str], cluster: bool, shards: int = 1
    ) -> None:
        self.url = url or config.redis_url()
        self.prefix = prefix if prefix is not None else config.prefix()
        self.cluster = cluster
        self.shards = shards
        self._scheduler: Optional[Scheduler] = None
        self._connection: Any = None

    @property
    def client(self) -> Any:
        """The client, made once on first use; the scheduler shares it.

        Apart from the scheduler, so that doctor can check a prefix a cluster would refuse.
        """
        if self._connection is None:
            try:
                config.client(self.url)  # a clear error for a URL that is not Redis's
            except ConfigurationError as error:
                raise click.UsageError(f"--url: {error}") from None
            cls = redis.RedisCluster if self.cluster else redis.Redis
            self._connection = cls.from_url(self.url)
        return self._connection

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            try:
                scheduler = Scheduler(self.client, self.prefix, shards=self.shards)
            except ConfigurationError as error:  # an untagged prefix on a cluster
                raise click.UsageError(f"--prefix: {error}") from None
            try:  # the check the scheduler makes before its first call, made now
                scheduler.check_layout()
            except ConfigurationError as error:  # another shard count than the schedule's
                raise click.UsageError(f"--shards: {error}") from None
            self._scheduler = scheduler
        return self._scheduler

    def now(self) -> float:
        seconds, micros = self.scheduler.connection.time()
        return float(seconds) + float(micros) / 1e6


class RacheGroup(click.Group):
    """Turns the errors a user can meet into one line and an exit status, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            where = config.hide_password(ctx.obj.url if ctx.obj else "")
            click.echo(f"rache: cannot reach Redis at {where}: {error}", err=True)
            sys.exit(1)
        except redis.ResponseError as error:
            click.echo(f"rache: Redis refused: {error}", err=True)
            sys.exit(1)
        except (TypeError, ValueError) as error:
            if isinstance(error, click.ClickException):
                raise
            raise click.UsageError(str(error)) from None


@click.group(cls=RacheGroup)
@click.option("--url", envvar=REDIS_URL_ENV, help="Redis URL [env REDIS_URL].")
@click.option("--prefix", envvar=PREFIX_ENV, help="Key prefix [env RACHE_REDIS_PREFIX].")
@click.option("--cluster", is_flag=True, help="--url names a node of a Redis Cluster.")
@click.option(
    "--shards", type=click.IntRange(1, MAX_SHARDS), default=1, help="The schedule's shard count."
)
@click.pass_context
def main(
    ctx: click.Context, url: Optional[str], prefix: Optional[str], cluster: bool, shards: int
) -> None:
    """See and change a rache schedule in Redis."""
    ctx.obj = Context(url, prefix, cluster, shards)


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
            click.echo(json.dumps({"id": _json_value(job_id), "due": at}))
        else:
            overdue = at <= now
            when = click.style(f"{relative(at, now):>16}", fg="yellow" if overdue else None)
            click.echo(f"{timestamp(at)}  {when}  {job_id}")


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
        click.echo(json.dumps({key: _json_value(value) for key, value in job.items()}))
        return
    due = job.pop("schedule_at")
    job.pop("id")
    click.echo(f"id           {job_id}")
    when = "not scheduled" if due is None else f"{timestamp(due)} ({relative(due, obj.now())})"
    click.echo(f"due          {when}")
    for key, value in job.items():
        click.echo(f"{key:<12} {value!r}")


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
    click.echo(f"scheduled {job_id} at {timestamp(due)} ({relative(due, obj.now())})")


@main.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.pass_obj
def rm(obj: Context, job_ids: Tuple[str, ...]) -> None:
    """Remove jobs and their data (an unknown id is not an error)."""
    for job_id in job_ids:
        obj.scheduler.delete_job(job_id)
        click.echo(f"removed {job_id}")


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
        top = max(stats.coming) or 1
        bars = "".join(_BARS[-(-8 * n // top)] if n else _BARS[0] for n in stats.coming)
        span = relative(stats.now + stats.interval * len(stats.coming), stats.now)
        lines.append(f"coming      |{bars}| {sum(stats.coming):,} {span}, peak {top:,}")
    return lines


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """Total, due now, lag, next due time, and jobs due per minute over the next hour."""
    figures = obj.scheduler.stats()
    if as_json:
        fields = figures._asdict()
        fields["lag"] = figures.lag
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
    with _keys() as fd:
        try:
            while True:
                figures = obj.scheduler.stats()
                click.clear()
                click.echo(f"rache watch  {obj.prefix}  {timestamp(figures.now)}")
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
@click.pass_obj
def doctor(obj: Context) -> None:
    """Check what silently breaks a schedule; exit 1 if something does."""
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
    sys.exit(1 if problems else 0)


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
    """Every job as JSON lines (id, due, data), a page per script call, to OUTPUT or stdout."""
    count, total = 0, obj.scheduler.stats(intervals=0).total
    with click.progressbar(length=total, label="exporting", file=sys.stderr) as bar:
        for job_id, due, data in obj.scheduler.export_jobs():
            fields = {key: _json_value(value) for key, value in data.items()}
            line = {"id": _json_value(job_id), "due": due, "data": fields}
            output.write(json.dumps(line) + "\n")
            count += 1
            if count % 1000 == 0:
                bar.update(1000)
    click.echo(f"exported {count:,} jobs", err=True)


@main.command("import")
@click.argument("source", type=click.File("r"))
@click.pass_obj
def import_(obj: Context, source: Any) -> None:
    """Schedule the jobs of an export (JSON lines), at their due times, in batches."""
    jobs = []
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            data = {key: _from_json(value) for key, value in entry.get("data", {}).items()}
            jobs.append((_from_json(entry["id"]), entry["due"], data))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise click.UsageError(f"{source.name} line {number}: not a job ({error})") from None
    with click.progressbar(length=len(jobs), label="importing", file=sys.stderr) as bar:
        # every job is checked before any is sent
        count = obj.scheduler.schedule_jobs(jobs, at=True, progress=bar.update)
    click.echo(f"imported {count:,} jobs", err=True)


@main.command("web")
@click.option("--url", "web_url", help="Redis URL (wins over the group's and REDIS_URL).")
@click.option("--prefix", "web_prefix", help="Key prefix (wins over RACHE_REDIS_PREFIX).")
@click.option("--cluster", "web_cluster", is_flag=True, help="--url names a cluster node.")
@click.option("--shards", "web_shards", type=click.IntRange(1, MAX_SHARDS), help="Shard count.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--allow-actions", is_flag=True, help="Offer delete, run now and reschedule.")
@click.option("--allowed-host", multiple=True, help="A Host name to answer to (repeatable).")
@click.option("--root-path", default="", help="The path a proxy serves it under (/rache).")
@click.pass_obj
def web(
    obj: Context,
    web_url: Optional[str],
    web_prefix: Optional[str],
    web_cluster: bool,
    web_shards: Optional[int],
    host: str,
    port: int,
    allow_actions: bool,
    allowed_host: Tuple[str, ...],
    root_path: str,
) -> None:
    """A dashboard of the schedule in a browser, read-only unless --allow-actions."""
    try:
        from . import web as dashboard  # rache[web]: Starlette, uvicorn, Jinja2
    except MissingExtra as missing:
        click.echo(f"rache: {missing}", err=True)
        sys.exit(1)
    settings = dashboard.Settings(
        url=web_url or obj.url,
        prefix=obj.prefix if web_prefix is None else web_prefix,
        cluster=web_cluster or obj.cluster,
        shards=web_shards or obj.shards,
        allow_actions=allow_actions,
        allowed_hosts=allowed_host,
    )
    try:
        dashboard.serve(settings, host, port, root_path)
    except OSError as error:  # the address is taken, or not this host's
        click.echo(f"rache: cannot listen on {host}:{port}: {error.strerror}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
