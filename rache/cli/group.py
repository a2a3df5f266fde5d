"""The ``rache`` command: see, change, check, copy, watch and dispatch a schedule.

Needs click (``pip install 'rache[cli]'``). Reads ``REDIS_URL`` and ``RACHE_REDIS_PREFIX``,
or ``--url`` and ``--prefix``. Exit status: 0 done, 1 something is wrong (``doctor`` found
a problem, ``show`` or ``rm`` found no job, Redis cannot be reached or refused), 2 bad
usage or input. Text output escapes control characters in ids (``--json`` is exact), and
``NO_COLOR`` turns colours off.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import logging
import os
import re
import select
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, NoReturn, Optional, Tuple

import redis

from ..errors import MissingExtra

try:
    import click
except ImportError:  # pragma: no cover - depends on the installed extras
    raise MissingExtra("the rache command", "click", "cli") from None

from .. import __version__, admin, config, service
from ..constants import MAX_SHARDS, PREFIX_ENV, REDIS_URL_ENV
from ..errors import ConfigurationError, JobNotFound, LayoutMismatch, UntaggedPrefix
from ..models import Stats, text
from ..scheduler import Scheduler

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


def printable(text: Any) -> str:
    r"""``text`` for a terminal: control characters escaped (``\x1b``, ``\n``), bytes decoded.

    So that an id cannot colour the terminal or split a line; ``--json`` stays exact.
    """
    value = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else str(text)
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


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
        #: more redis-py client options (``rache dispatch`` sets timeouts)
        self.client_options: Dict[str, Any] = {}
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
            self._connection = cls.from_url(self.url, **self.client_options)
        return self._connection

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            try:
                scheduler = Scheduler(self.client, self.prefix, shards=self.shards)
            except UntaggedPrefix as error:
                raise click.UsageError(
                    f"--prefix {error.prefix!r} has no hash tag, and on Redis Cluster every "
                    f"key of a schedule must hash to one slot: --prefix {error.suggested!r}, "
                    "or --shards N (which add their own)"
                ) from None
            except ConfigurationError as error:  # a sharded prefix with a brace
                raise click.UsageError(f"--prefix: {error}") from None
            scheduler.check_layout()  # the check before its first call, made now
            self._scheduler = scheduler
        return self._scheduler

    def now(self) -> float:
        """The server's clock, the one of every due time shown."""
        return self.scheduler.server_time()


def wrong_shards(error: LayoutMismatch) -> str:
    """The layout error in the command's own words (``--shards N``, ``rache reshard``)."""
    recorded, shards = error.recorded, error.shards
    return (
        f"the schedule under prefix {printable(error.prefix)!r} is laid out in {recorded} "
        f"shard(s), not {shards}: pass --shards {recorded}"
        + ("" if recorded > 1 else " (or none)")
        + f", or move it with rache --shards {recorded} reshard --to {shards}"
    )


_AUTH_ERRORS = (
    "NOAUTH",
    "WRONGPASS",
    "invalid username-password",
    "Authentication required",
    "HELLO must be called with the client already authenticated",
    "invalid password",
)


def fail(message: str, hint: str = "", status: int = 1) -> NoReturn:
    """Say ``message`` (and a hint) on stderr in one line each, and exit with ``status``."""
    click.echo(f"rache: {message}", err=True)
    if hint:
        click.echo(f"       {hint}", err=True)
    sys.exit(status)


def explain(error: BaseException, url: str, cluster: bool) -> Optional[Tuple[str, str]]:
    """A Redis error a user can meet, as (one line, a hint); None for one we do not know.

    An HTTP server at the URL, --cluster against a plain node, a cluster node without
    --cluster, a password refused, an ACL refusal, a server that cannot be reached.
    """
    where = config.hide_password(url)
    text = str(error)
    if isinstance(error, redis.AuthenticationError) or any(m in text for m in _AUTH_ERRORS):
        return (
            f"authentication failed at {where}: {text}",
            "check the user and password in --url or REDIS_URL (redis://USER:PASSWORD@HOST)",
        )
    if isinstance(error, redis.exceptions.InvalidResponse):
        return (
            f"{where} does not answer as Redis does: {text}",
            "is --url (or REDIS_URL) the address of a Redis server, not of a web server?",
        )
    if isinstance(error, redis.exceptions.RedisClusterException):
        if "cluster mode is not enabled" in text.lower() or "cluster_enabled" in text:
            return (f"{where} is not a Redis Cluster node", "drop --cluster for a plain Redis")
        return (f"Redis Cluster at {where}: {text}", "")
    redirected = (redis.exceptions.AskError, redis.exceptions.TryAgainError)
    if isinstance(error, redirected) or text.startswith(("MOVED ", "ASK ")):
        return (
            f"{where} is a Redis Cluster node (it answered {type(error).__name__} {text})",
            "add --cluster, and a prefix with a hash tag (--prefix '{rache}:') or --shards N",
        )
    if isinstance(error, redis.exceptions.NoPermissionError):
        return (f"Redis refused (ACL) at {where}: {text}", "see README, Least privilege")
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        if not cluster and "MOVED" in text:
            return (f"{where} is a Redis Cluster node", "add --cluster")
        return (f"cannot reach Redis at {where}: {text}", "")
    if isinstance(error, redis.ResponseError):
        return (f"Redis refused: {text}", "")
    return None


class RacheGroup(click.Group):
    """Turns the errors a user can meet into one line and an exit status, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.RedisError, redis.exceptions.RedisClusterException) as error:
            obj = ctx.obj
            known = explain(error, obj.url if obj else "", bool(obj and obj.cluster))
            if known is None:
                raise
            fail(*known)
        except LayoutMismatch as error:  # another shard count than the schedule's
            raise click.UsageError(wrong_shards(error)) from None
        except ConfigurationError as error:  # reshard or orphans without SCAN, a bad prefix
            fail(str(error))
        except (TypeError, ValueError) as error:
            if isinstance(error, click.ClickException):
                raise
            raise click.UsageError(str(error)) from None


@click.group(cls=RacheGroup)
@click.version_option(__version__, "--version", prog_name="rache")
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
    """See, change and dispatch a rache schedule in Redis."""
    if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value
        ctx.color = False
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
        click.echo(json.dumps({key: _json_value(value) for key, value in job.items()}))
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


@main.command()
@click.option("--delete", is_flag=True, help="Remove their data too (forget-2.lua).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one id each.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, help="Keys per SCAN.")
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
            click.echo(json.dumps({"id": _json_value(text(raw_id))}))
        else:
            click.echo(printable(raw_id))
    verb = "removed the data of" if delete else "found"
    click.echo(f"{verb} {count:,} job(s) with data and no schedule entry", err=True)


@main.command()
@click.option("--call", "call", metavar="MODULE:FUNCTION", help="FUNCTION(job) for each job.")
@click.option("--rq", "rq_queue", metavar="QUEUE", help="Enqueue each job in this rq queue.")
@click.option("--rq-scheduler", is_flag=True, help="Move rache.rq's jobs into their rq queues.")
@click.option("--celery", "celery_app", metavar="MODULE[:APP]", help="Send each to Celery.")
@click.option("--arq", "arq", is_flag=True, help="Enqueue each job in arq.")
@click.option("--task", metavar="NAME", help="The task of --rq, --celery or --arq.")
@click.option("--queue-url", metavar="URL", help="The Redis of rq or arq [default: --url].")
@click.option("--arq-queue", metavar="NAME", help="arq's queue name.")
@click.option("--url", "own_url", metavar="URL", help="Redis URL (wins over rache --url, env).")
@click.option("--prefix", "own_prefix", metavar="PREFIX", help="Key prefix (wins as --url).")
@click.option("--reschedule-in", metavar="DURATION", help="Due again after this (10m...).")
@click.option("--forget", is_flag=True, help="Delete a job's data once handed out.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, help="Jobs per claim.")
@click.option("--max-sleep", type=click.FloatRange(min=0.01), default=30.0, help="Seconds.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics, /healthz.")
@click.option("--metrics-host", default="127.0.0.1", help="Their address [127.0.0.1].")
@click.option(
    "--health-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Touched each loop, at most once a second (a liveness probe's file).",
)
@click.option(
    "--health-timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    help="/healthz fails once the loop has not turned for this long [60].",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    help="DEBUG shows each job [INFO].",
)
@click.pass_obj
def dispatch(
    obj: Context,
    call: Optional[str],
    rq_queue: Optional[str],
    rq_scheduler: bool,
    celery_app: Optional[str],
    arq: bool,
    task: Optional[str],
    queue_url: Optional[str],
    arq_queue: Optional[str],
    own_url: Optional[str],
    own_prefix: Optional[str],
    reschedule_in: Optional[str],
    forget: bool,
    batch: int,
    max_sleep: float,
    metrics_port: Optional[int],
    metrics_host: str,
    health_file: Optional[Path],
    health_timeout: float,
    log_level: str,
) -> None:
    """Hand each due job to a target until SIGTERM or SIGINT (a long-lived process).

    Any number of them share a schedule, each job to exactly one. On SIGTERM or SIGINT a
    target call begun finishes, the jobs claimed and not yet handed out go back at once,
    and it exits 0.
    """
    if own_url:
        obj.url = own_url
    if own_prefix is not None:
        obj.prefix = own_prefix
    offset = None if reschedule_in is None else parse_duration(reschedule_in)
    if offset is not None and offset <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--reschedule-in")
    level = logging.getLevelName(log_level.upper())
    logging.basicConfig(  # DEBUG is rache's own (each job), not redis-py's
        level=max(level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("rache").setLevel(level)
    target = service.Target(
        call=call,
        rq=rq_queue,
        celery=celery_app,
        arq=arq,
        task=task,
        queue_url=queue_url,
        arq_queue=arq_queue,
        rq_scheduler=rq_scheduler,
        prefix=obj.prefix,
    )
    with contextlib.ExitStack() as stack:
        try:
            handler = service.select_target(target, obj.url, stack)
        except (service.TargetError, MissingExtra) as error:
            fail(str(error), status=2)
        # A dead network must not hang a call for ever; the loop backs off and retries.
        obj.client_options = {"socket_connect_timeout": 10, "socket_timeout": 60}
        try:
            scheduler = obj.scheduler  # checks --prefix and --shards against Redis: exit 2
        except (redis.ConnectionError, redis.TimeoutError) as error:
            known = explain(error, obj.url, obj.cluster)
            if (
                isinstance(error, redis.AuthenticationError)
                or known is None
                or "authentication" in known[0]
            ):
                raise
            # Redis not up yet (a service may start first): the loop backs off and retries,
            # and the scheduler checks the layout before its first claim.
            logging.getLogger("rache.service").warning("rache dispatch: %s; retrying", known[0])
            scheduler = Scheduler(obj.client, obj.prefix, shards=obj.shards)
        runner = service.Service(
            scheduler,
            handler,
            target.describe(),
            where=config.hide_password(obj.url),
            reschedule_in=offset,
            batch=batch,
            max_sleep=max_sleep,
            forget=forget,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            health_file=health_file,
            health_timeout=health_timeout,
        )
        try:
            status = runner.run()
        except MissingExtra as error:
            fail(str(error), status=2)
        except OSError as error:  # the metrics port taken
            if metrics_port is None:
                raise
            fail(f"--metrics-port {metrics_port}: {error}", status=1)
    sys.exit(status)


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
            fields = {key: _json_value(value) for key, value in data.items()}
            line = {"id": _json_value(job_id), "due": due, "data": fields}
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
            data = {key: _from_json(value) for key, value in entry.get("data", {}).items()}
            job: Tuple[Any, ...] = (_from_json(entry["id"]), entry["due"], data)
            if "run" in entry or "rule" in entry:
                job += (entry.get("run"), entry.get("rule"))
            jobs.append(job)
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
        from .. import web as dashboard  # rache[web]: Starlette, uvicorn, Jinja2
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
