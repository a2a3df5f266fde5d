"""``rache dispatch``: hand each due job to a target, a long-lived process (``rache.service``)."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Optional

import click
import redis

from .. import config, service
from ..constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SLEEP,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    MAX_BATCH_SIZE,
    MAX_RETRIES,
    MAX_RETRY_DELAY,
    POLLER_TTL,
)
from ..errors import MissingExtra
from ..formatting import parse_duration
from ..scheduler import Scheduler
from .group import Context, explain, fail, main


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
@click.option(
    "--retries",
    type=click.IntRange(0, MAX_RETRIES),
    default=DEFAULT_RETRIES,
    help="Retry a run whose target raised this many times [0].",
)
@click.option(
    "--retry-backoff",
    metavar="DURATION",
    help="Wait before the first retry, doubled each time, with jitter [10s].",
)
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH_SIZE),
    default=DEFAULT_BATCH_SIZE,
    help="Jobs per claim.",
)
@click.option(
    "--max-sleep", type=click.FloatRange(min=0.01), default=DEFAULT_MAX_SLEEP, help="Seconds."
)
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
    "--poller-ttl",
    metavar="DURATION",
    default=None,
    help="How long rache pollers lists it after it dies without a word [60s].",
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
    retries: int,
    retry_backoff: Optional[str],
    batch: int,
    max_sleep: float,
    metrics_port: Optional[int],
    metrics_host: str,
    health_file: Optional[Path],
    health_timeout: float,
    poller_ttl: Optional[str],
    log_level: str,
) -> None:
    """Hand each due job to a target until SIGTERM or SIGINT (a long-lived process).

    Any number of them share a schedule, each job to exactly one. On SIGTERM or SIGINT a
    target call begun finishes, the jobs claimed and not yet handed out go back at once,
    and it exits 0.

    Each run's outcome is recorded (rache runs ID, rache failures): with --call, the
    function's return or exception; with a task queue, its worker reports it, and an
    enqueue that raises is a failed attempt. With --retries, a run that raised is tried
    again in this process (its retry waits while other jobs go out); runs still waiting
    for a retry when it stops are recorded failed.
    """
    if own_url:
        obj.url = own_url
    if own_prefix is not None:
        obj.prefix = own_prefix
    offset = None if reschedule_in is None else parse_duration(reschedule_in)
    if offset is not None and offset <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--reschedule-in")
    ttl = POLLER_TTL if poller_ttl is None else parse_duration(poller_ttl)
    if not ttl > 0:
        raise click.BadParameter("must be more than 0", param_hint="--poller-ttl")
    backoff = DEFAULT_RETRY_BACKOFF if retry_backoff is None else parse_duration(retry_backoff)
    if not 0 < backoff <= MAX_RETRY_DELAY:
        raise click.BadParameter(
            f"must be more than 0 and at most {MAX_RETRY_DELAY:g} s", param_hint="--retry-backoff"
        )
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
        # A dead network must not hang a call for ever, nor may a retry come after its call's
        # record is gone: the client's own timeouts and Retry (config.client_options) see
        # to both; the loop backs off and retries.
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
        try:
            handler = service.select_target(target, obj.url, stack, scheduler)
        except (service.TargetError, MissingExtra) as error:
            fail(str(error), status=2)
        runner = service.Service(
            scheduler,
            handler,
            target.describe(),
            where=config.hide_password(obj.url),
            reschedule_in=offset,
            batch=batch,
            max_sleep=max_sleep,
            forget=forget,
            retries=retries,
            retry_backoff=backoff,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            health_file=health_file,
            health_timeout=health_timeout,
            poller_ttl=ttl,
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
