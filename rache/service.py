"""``rache dispatch``: the Dispatcher as a long-lived process, for systemd or Kubernetes.

It runs :class:`rache.Dispatcher` over one schedule, hands each due job to a *target* (a
function of yours, rq, Celery or arq, through :mod:`rache.adapters`), and adds what a
service needs: logs a person can follow, a liveness signal (a heartbeat file, ``/healthz``),
Prometheus metrics, and a stop that never waits for a batch (SIGTERM or SIGINT: a handler
call begun finishes, the rest of its batch goes back at once, exit 0).

Targets are chosen in one place, :func:`select_target`, which returns the handler: a new
kind of target is one more field of :class:`Target` and one more branch there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

from . import adapters, config
from .constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SLEEP,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    HAND_OFF_ATTRIBUTE,
    JOB_GAUGES,
    POLLER_TTL,
)
from .dispatch import Dispatcher
from .errors import MissingExtra, RacheError
from .formatting import printable
from .models import Job, Seconds
from .scheduler import Scheduler

logger = logging.getLogger("rache.service")

#: A target: called with each job handed out.
Handler = Callable[[Job], Any]


class TargetError(RacheError, ValueError):
    """A target that cannot be used (``--call nosuch:thing``): the message says why."""


@dataclass
class Target:
    """Where ``rache dispatch`` sends each job: call, rq, rq_scheduler, celery or arq.

    ``task`` names the task for the last three.
    """

    #: ``MODULE:FUNCTION``: FUNCTION(job) for each job
    call: Optional[str] = None
    #: an rq queue name: ``rq.Queue(rq).enqueue(task, job)``
    rq: Optional[str] = None
    #: a Celery app, ``MODULE[:ATTRIBUTE]`` as ``celery -A`` takes it: ``send_task(task)``
    celery: Optional[str] = None
    #: arq: ``enqueue_job(task, job)`` on an arq pool
    arq: bool = False
    #: the task: rq's function (a dotted name), Celery's task name, arq's function name
    task: Optional[str] = None
    #: the Redis of rq or arq (default: the schedule's own)
    queue_url: Optional[str] = None
    #: arq's queue name (default: arq's own)
    arq_queue: Optional[str] = None
    #: rache.rq's runner: rq-scheduler's API's jobs moved into their rq queues
    rq_scheduler: bool = False
    #: the schedule's key prefix (the rq-scheduler runner deletes the jobs it moved there)
    prefix: Optional[str] = None

    def describe(self) -> str:
        """The target as a person reads it in the start-up line."""
        if self.call:
            return self.call
        if self.rq:
            return f"rq queue {self.rq!r}, task {self.task}"
        if self.rq_scheduler:
            return "rq-scheduler's jobs (rache.rq) into their rq queues"
        if self.celery:
            return f"Celery app {self.celery}, task {self.task}"
        return f"arq, function {self.task}" + (f" on {self.arq_queue!r}" if self.arq_queue else "")


def import_object(spec: str, option: str, default_attribute: Optional[str] = None) -> Any:
    """The object ``MODULE:NAME`` names, MODULE imported from the current directory first.

    As ``celery -A`` and ``rq worker`` do, the current directory goes on ``sys.path``.
    ``NAME`` may be dotted (``tasks:handlers.send``); without ``:``, ``default_attribute``.
    :raises TargetError: in one line, naming ``option`` and what is wrong.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon:
        if default_attribute is None:
            raise TargetError(
                f"{option} {spec}: expected MODULE:FUNCTION, such as myapp.tasks:handle"
            )
        attribute = default_attribute
    if not module_name or not attribute:
        raise TargetError(f"{option} {spec}: expected MODULE:NAME, such as myapp.tasks:handle")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise TargetError(
                f"{option} {spec}: no module named {error.name!r} (looked in {cwd} and sys.path)"
            ) from None
        raise TargetError(f"{option} {spec}: importing {module_name} failed: {error}") from None
    except Exception as error:
        raise TargetError(
            f"{option} {spec}: importing {module_name} raised {type(error).__name__}: {error} "
            f"(python -c 'import {module_name}' shows the traceback)"
        ) from None
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TargetError(
                f"{option} {spec}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return found


def _task(target: Target, option: str) -> str:
    if not target.task:
        raise TargetError(f"{option} needs --task, the task to send each job to")
    return target.task


def select_target(
    target: Target,
    url: str,
    stack: contextlib.ExitStack,
    scheduler: Optional[Scheduler] = None,
) -> Handler:
    """The handler for ``target``: the one place where target options become a callable.

    ``url`` is the schedule's Redis (rq and arq default to it); what must be closed at the
    end (a connection, arq's event loop) goes on ``stack``. ``scheduler`` is the schedule
    the runs are of, for rq's workers to report each outcome to (``adapters.rq_meta``).
    :raises TargetError: no target, two of them, or one that cannot be used.
    :raises MissingExtra: the target's library is not installed.
    """
    names = ("call", "rq", "rq_scheduler", "celery", "arq")
    chosen = [f"--{name.replace('_', '-')}" for name in names if getattr(target, name)]
    if len(chosen) != 1:
        given = ", ".join(chosen) or "none"
        raise TargetError(
            f"give one target of --call, --rq, --rq-scheduler, --celery, --arq (given: {given})"
        )
    queue_url = target.queue_url or url
    if target.rq_scheduler:
        return _rq_scheduler_runner(target, url, queue_url, stack)
    if target.call:
        if target.task:
            raise TargetError("--task goes with --rq, --celery or --arq, not --call")
        function = import_object(target.call, "--call")
        if not callable(function):
            raise TargetError(
                f"--call {target.call}: {type(function).__name__} object, not a function"
            )
        return function  # type: ignore[no-any-return]
    if target.rq:
        task = _task(target, "--rq")
        try:
            import rq
        except ImportError:
            raise MissingExtra("rache dispatch --rq", "rq", "rq") from None
        connection = stack.enter_context(contextlib.closing(config.client(queue_url)))
        queue = rq.Queue(target.rq, connection=connection)
        return adapters.rq(queue, task, scheduler=scheduler)
    if target.celery:
        task = _task(target, "--celery")
        if importlib.util.find_spec("celery") is None:
            raise MissingExtra("rache dispatch --celery", "celery", "celery")
        app = import_object(target.celery, "--celery", default_attribute="app")
        if not hasattr(app, "send_task"):
            raise TargetError(
                f"--celery {target.celery}: {type(app).__name__} object, not a Celery app"
            )
        return adapters.celery(app, task)
    return _arq_handler(target, _task(target, "--arq"), queue_url, stack)


def _rq_scheduler_runner(
    target: Target, url: str, queue_url: str, stack: contextlib.ExitStack
) -> Handler:
    """rache.rq's runner: each due job of rq-scheduler's API moved into its rq queue, once.

    It deletes each job it moved from the schedule the dispatcher claims from (``url``,
    ``target.prefix``); rq's Redis is ``queue_url``.
    """
    if target.task:
        raise TargetError("--task goes with --rq, --celery or --arq, not --rq-scheduler")
    try:
        from . import rq as rache_rq
    except ImportError:
        raise MissingExtra("rache dispatch --rq-scheduler", "rq", "rq") from None
    schedule = stack.enter_context(contextlib.closing(config.client(url)))
    connection = schedule
    if queue_url != url:
        connection = stack.enter_context(contextlib.closing(config.client(queue_url)))
    return rache_rq.Runner(Scheduler(schedule, target.prefix), connection=connection)


def _arq_handler(target: Target, task: str, url: str, stack: contextlib.ExitStack) -> Handler:
    """Arq's async handler run on an event loop of its own thread: a sync handler.

    So every target goes through the same sync Dispatcher (its stop, heartbeat, forget).
    """
    try:
        from arq import create_pool
        from arq.connections import RedisSettings
    except ImportError:
        raise MissingExtra("rache dispatch --arq", "arq", "arq") from None
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="rache-arq", daemon=True)
    thread.start()

    def close() -> None:
        asyncio.run_coroutine_threadsafe(pool.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    settings = RedisSettings.from_dsn(url)
    pool = asyncio.run_coroutine_threadsafe(create_pool(settings), loop).result(30)
    stack.callback(close)
    handler = adapters.arq(pool, task, queue_name=target.arq_queue)

    async def enqueue(job: Job) -> Any:
        return await handler(job)

    def run(job: Job) -> Any:
        return asyncio.run_coroutine_threadsafe(enqueue(job), loop).result()

    return adapters.hands_off(run)


# -- liveness and metrics ---------------------------------------------------------------------


class Health:
    """The loop's heartbeat: when it last turned, and a file touched each time (optional).

    ``alive()`` is true while the last beat is less than ``timeout`` seconds old. The
    Dispatcher beats at most once a second in claims, sleeps and backoffs (a Redis outage
    is no reason to restart it), not during a handler call: a timeout above the longest
    call of your target.
    """

    def __init__(self, path: Optional[Path] = None, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self.last = time.monotonic()
        self._failing = False

    def beat(self) -> None:
        """The loop turned: note it, and touch the file."""
        self.last = time.monotonic()
        if self.path is None:
            return
        try:
            self.path.touch()
        except OSError as error:
            if not self._failing:  # once, not every second
                logger.warning(
                    "rache dispatch: cannot touch the health file %s: %s", self.path, error
                )
            self._failing = True
        else:
            self._failing = False

    def age(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self.last

    def alive(self) -> bool:
        """Whether the loop turned within ``timeout`` seconds."""
        return self.age() < self.timeout


def serve_http(host: str, port: int, health: Health, registry: Any) -> ThreadingHTTPServer:
    """Serve ``/metrics`` (Prometheus text) and ``/healthz`` on ``host:port``, in a thread.

    ``/healthz`` answers 200 while the loop turns, 503 once it has not for
    ``health.timeout`` seconds (a liveness probe's URL).
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = health.alive()
                text = f"{'ok' if ok else 'stalled'}: the loop turned {health.age():.1f} s ago\n"
                self._answer(200 if ok else 503, text.encode(), "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("rache dispatch: http %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="rache-http", daemon=True).start()
    return server


class ScheduleGauges:
    """Prometheus gauges of the schedule itself, read from Redis at each scrape.

    ``rache_due_jobs``, ``rache_oldest_due_age_seconds`` and ``rache_live_pollers``: what
    ``Scheduler.health()`` judges, so an alert and ``rache doctor`` agree; per recurring job
    (label ``job``), ``rache_job_last_success_timestamp_seconds`` (jobs with a success among
    their newest runs) and ``rache_job_failed_in_a_row``, for the first ``JOB_GAUGES`` (500)
    recurring jobs by id of those ``health()`` examines. A scrape is one ``health()``: a few
    read-only script calls (one per shard, one for the pollers, the recurring jobs' runs
    ``HEALTH_BATCH`` jobs a call); when Redis cannot be read, the scrape leaves these out
    and keeps the counters.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def describe(self) -> List[Any]:
        return self._families()

    def _families(self) -> List[Any]:
        from prometheus_client.core import GaugeMetricFamily

        return [
            GaugeMetricFamily("rache_due_jobs", "Jobs due now, not yet handed out"),
            GaugeMetricFamily(
                "rache_oldest_due_age_seconds", "How long the oldest due job has been due"
            ),
            GaugeMetricFamily("rache_live_pollers", "Pollers announced and not lapsed"),
            GaugeMetricFamily(
                "rache_job_last_success_timestamp_seconds",
                "When a recurring job's newest successful run finished (Unix time)",
                labels=["job"],
            ),
            GaugeMetricFamily(
                "rache_job_failed_in_a_row",
                "A recurring job's newest runs with an outcome that failed, in a row",
                labels=["job"],
            ),
        ]

    def collect(self) -> List[Any]:
        try:
            verdict = self.scheduler.health()
        except Exception as error:  # a scrape never fails for Redis: the gauges go missing
            logger.debug("rache dispatch: no schedule gauges this scrape: %s", error)
            return []
        due, age, pollers, success, failing = self._families()
        due.add_metric([], verdict.stats.due)
        age.add_metric([], verdict.stats.lag)
        pollers.add_metric([], len(verdict.pollers))
        for job in verdict.recurring[:JOB_GAUGES]:  # examined by id, the first kept
            label = printable(job.job_id)
            if job.last_success is not None:
                success.add_metric([label], job.last_success)
            failing.add_metric([label], job.failed_in_a_row)
        return [due, age, pollers, success, failing]


def _logged(handler: Handler) -> Handler:
    """``handler``, each job logged at DEBUG first (id and due time)."""

    def logged(job: Job) -> Any:
        logger.debug("rache dispatch: job %r (due at %s)", job.get("id"), job.due_at)
        return handler(job)

    if getattr(handler, HAND_OFF_ATTRIBUTE, False):
        adapters.hands_off(logged)
    return logged


# -- the process ------------------------------------------------------------------------------


@dataclass
class Service:
    """One ``rache dispatch`` process: its schedule, target and options."""

    scheduler: Scheduler
    handler: Handler
    #: the target as a person reads it, for the logs
    target: str
    #: the Redis URL, its password masked, for the logs
    where: str = ""
    reschedule_in: Optional[Seconds] = None
    batch: int = DEFAULT_BATCH_SIZE
    max_sleep: float = DEFAULT_MAX_SLEEP
    forget: bool = False
    metrics_port: Optional[int] = None
    metrics_host: str = "127.0.0.1"
    health_file: Optional[Path] = None
    health_timeout: float = 60.0
    #: how long the process stays in ``rache pollers`` after it dies without a word
    poller_ttl: float = POLLER_TTL
    #: a run whose target raised is tried again this many times (the Dispatcher's retries)
    retries: int = DEFAULT_RETRIES
    retry_backoff: Seconds = DEFAULT_RETRY_BACKOFF

    def run(self) -> int:
        """Dispatch until SIGTERM or SIGINT; the exit status (0 after a signal)."""
        health = Health(self.health_file, self.health_timeout)
        registry = None
        if self.metrics_port is not None:
            try:
                import prometheus_client
            except ImportError:
                raise MissingExtra("--metrics-port", "prometheus_client", "prometheus") from None
            registry = prometheus_client.CollectorRegistry()
            registry.register(ScheduleGauges(self.scheduler))
        handler = self.handler
        if logger.isEnabledFor(logging.DEBUG):  # decided once: no cost per job otherwise
            handler = _logged(handler)
        dispatcher = Dispatcher(
            handler,
            scheduler=self.scheduler,
            reschedule_in=self.reschedule_in,
            batch=self.batch,
            max_sleep=self.max_sleep,
            metrics=registry,
            finish_batch=False,
            forget=self.forget,
            heartbeat=health.beat,
            kind="rache dispatch",
            poller_ttl=self.poller_ttl,
            retries=self.retries,
            retry_backoff=self.retry_backoff,
        )
        # Outside the Dispatcher's run (start-up, shutdown), SIGTERM and SIGINT stop it
        # rather than kill it: a second signal while it winds down still exits 0.
        early: list[int] = []

        def note(signum: int, frame: Any) -> None:
            early.append(signum)
            dispatcher.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, note)
        with self._http(health, registry):
            health.beat()
            logger.info(
                "rache dispatch: schedule %r (%d shard%s) on %s, handing jobs to %s%s%s (pid %d)",
                self.scheduler.keys.prefix,
                len(self.scheduler.shards),
                "" if len(self.scheduler.shards) == 1 else "s",
                self.where or config.describe(self.scheduler.connection),
                self.target,
                ", forgetting their data" if self.forget else "",
                f", {self.retries} retries a run" if self.retries else "",
                os.getpid(),
            )
            if not early:
                dispatcher.run()
        stopped_by = dispatcher.stop_signal or (signal.Signals(early[0]) if early else None)
        why = stopped_by.name if stopped_by is not None else "stop()"
        logger.info(
            "rache dispatch: stopped on %s: %d jobs claimed, %d handled, %d failed, %d put back, "
            "%d failed attempts retried",
            why,
            dispatcher.claimed,
            dispatcher.handled,
            dispatcher.failed,
            dispatcher.put_back,
            dispatcher.retried,
        )
        return 0

    @contextlib.contextmanager
    def _http(self, health: Health, registry: Any) -> Iterator[None]:
        if self.metrics_port is None:
            yield
            return
        server = serve_http(self.metrics_host, self.metrics_port, health, registry)
        host, port = server.server_address[:2]
        logger.info(
            "rache dispatch: metrics at http://%s:%d/metrics, liveness at /healthz", host, port
        )
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
