"""The hand-out loop of rache, without I/O: which job goes next, what goes back, what to count.

Every loop that hands claimed jobs to a handler drives one :class:`DispatchLoop`:
:meth:`rache.Dispatcher.run_once` and its asyncio twin (so :meth:`rache.Dispatcher.run`,
``rache dispatch``, the Celery beat's ``tick`` and rache.rq's runner), so that stop,
put-back, forget and the metrics mean one thing everywhere. It decides, and the shells
only do the I/O it asks for, as the schedulers drive a claim (``rache.claim``). One round
(one claim of up to ``batch`` jobs, batch by batch)::

    claim = scheduler.claim(reschedule_in, core.batch)
    while (jobs := scheduler.claim_batch(claim)) is not None:
        core.took(claim, jobs)                   # the batch in hand, counted
        try:
            while (job := core.next_job()) is not None:   # None: done, or stopped
                ...call the handler: core.handled_one(), or core.failed_attempt(job, 0, exc)
        finally:
            with core.lock:                      # a thread may put back on stop()
                handed = core.release()          # None: put back already
                if handed is not None:
                    core.put_back += scheduler.put_back(claim, handed)
        if forgotten := core.forgettable():      # with forget: the jobs handed out
            scheduler.forget_jobs(forgotten)
        if core.stopping:
            break
    sleep(core.sleep_after(claim))               # or core.disconnected(exc) on an outage

Each handler call's outcome: ``core.handled_one()`` when it returned, else
``core.failed_attempt(job, attempts, exc)``, which queues a retry while the run has retries
left (``retries``) and says so. Due retries are taken with ``core.next_retry()`` before each
batch (never a sleep in the handler's path: a retry waits in this queue while other jobs go
out), and ``sleep_after`` wakes the loop for the next one. On stop, ``core.abandon()`` hands
back the retries still waiting, for the shell to record them failed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
import weakref
from typing import Any, Callable, ClassVar, List, NamedTuple, Optional, Tuple, Union

from .arguments import count, positive_seconds
from .constants import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    MAX_BATCH_SIZE,
    MAX_PENDING_RETRIES,
    MAX_RETRIES,
    MAX_RETRY_DELAY,
    POLLER_TTL,
)
from .errors import MissingExtra, out_of_memory
from .models import Job, Poller, Seconds
from .pollers import Announcer
from .scheduler import Claim

logger = logging.getLogger("rache.dispatch")

#: Slept past a due time, so that a claim at the due time finds the job due on the server.
MARGIN = 0.0005


class Retry(NamedTuple):
    """A run whose handler raised, waiting in a dispatcher for its next attempt."""

    #: the job, as it was handed out (the same occurrence id on every attempt)
    job: Job
    #: the failed attempts so far (1 after the first call raised)
    attempts: int
    #: the exception of the last attempt
    error: BaseException


class DispatchLoop:
    """The decisions of a hand-out loop, without I/O: the batch in hand, sleeps, backoff, counts.

    Shared by :class:`rache.Dispatcher` and :class:`rache.aio.AsyncDispatcher` (and through
    them every integration that hands out jobs), so that a rule exists once.

    :param batch: the most jobs per round (one claim).
    :param max_sleep: the longest sleep between two rounds, seconds.
    :param backoff: the first delay after a connection error; doubles up to ``max_backoff``.
    :param metrics: a ``prometheus_client.CollectorRegistry`` (True: the default one).
    :param finish_batch: on stop, hand out the rest of the batch in hand (True), or put it
        back (False).
    :param forget: once a batch is handed out, forget the data of the jobs it handed out.
    :param kind: what the loop is, as ``Scheduler.pollers()`` shows it.
    :param poller_ttl: how long its entry there outlives its last announce, seconds.
    :param retries: how many times a run whose handler raised is tried again (0: none).
    :param retry_backoff: the wait before the first retry, seconds; doubled for each
        further one, with jitter (half to all of it), at most ``MAX_RETRY_DELAY``.
    :param name: its name there, or what gives it at each announce (the name its claims
        record); None: ``host:pid``.
    """

    def __init__(
        self,
        *,
        batch: int,
        max_sleep: Seconds,
        backoff: Seconds,
        max_backoff: Seconds,
        metrics: Any = None,
        finish_batch: bool = True,
        forget: bool = False,
        kind: str = "dispatcher",
        poller_ttl: Seconds = POLLER_TTL,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: Seconds = DEFAULT_RETRY_BACKOFF,
        name: Union[str, Callable[[], str], None] = None,
    ) -> None:
        self.batch = count(batch, "batch", 1, MAX_BATCH_SIZE)
        self.retries = count(retries, "retries", 0, MAX_RETRIES)
        self.retry_backoff = positive_seconds(retry_backoff, "retry_backoff")
        self.max_sleep = positive_seconds(max_sleep, "max_sleep")
        self.backoff = positive_seconds(backoff, "backoff")
        self.max_backoff = positive_seconds(max_backoff, "max_backoff")
        if self.max_backoff < self.backoff:
            raise ValueError(
                f"max_backoff ({max_backoff!r}) must not be less than backoff ({backoff!r})"
            )
        self.finish_batch = bool(finish_batch)
        self.forget = bool(forget)
        #: stop asked (stop(), a signal): no batch after the one in hand, and with
        #: ``finish_batch`` False no job more of it
        self.stopping = False
        #: jobs claimed; handler calls that returned (a retry's included); runs failed for
        #: good (their handler raised with no retry left, or on stop with retries waiting);
        #: and failed attempts queued for a retry
        self.claimed = 0
        self.handled = 0
        self.failed = 0
        self.retried = 0
        #: the retries waiting, earliest first: (when, monotonic; order; the retry)
        self._retries: List[Tuple[float, int, Retry]] = []
        self._order = itertools.count()
        #: the dispatch lag of the last job claimed, and the largest seen (seconds): the
        #: claim's time (server clock) less the job's due time
        self.lag: Optional[float] = None
        self.max_lag = 0.0
        #: claim calls made, and connection errors met
        self.claims = 0
        self.errors = 0
        #: jobs claimed and put back unhanded (a stop with finish_batch=False, a handler's
        #: BaseException)
        self.put_back = 0
        #: The batch in hand: its claim and jobs, how many were handed to the handler (the
        #: one being handled included), and whether the rest went back already. ``lock``
        #: orders the loop and a thread that puts the batch back on stop.
        self.lock = threading.Lock()
        self.claim: Optional[Claim] = None
        self.jobs: List[Job] = []
        self.given = 0
        self.released = True
        self._outage: Optional[float] = None  # when the current outage began (monotonic)
        self._attempt = 0  # failed attempts in a row
        self._pressed = 0  # claims in a row that left jobs for memory pressure
        self._prometheus = _Prometheus.of(metrics) if metrics is not None else None
        #: when the loop announces itself as a live poller, and what it says
        self.announcer = Announcer(kind, poller_ttl, name)
        self._announce_failing = False

    # -- claims ---------------------------------------------------------------------------

    def took(self, claim: Claim, jobs: List[Job]) -> None:
        """Take a claim's batch in hand, and count its jobs and their lag (cutoff less due)."""
        with self.lock:
            self.claim, self.jobs, self.given, self.released = claim, jobs, 0, False
        self.claims += 1
        self.connected()
        if claim.cutoff:
            self.announcer.last_claim = float(claim.cutoff)
        if not jobs:
            return
        self.claimed += len(jobs)
        cutoff = float(claim.cutoff)
        for job in jobs:
            due = job.due_at
            lag = 0.0 if due is None else max(0.0, cutoff - float(due))
            if lag > self.max_lag:
                self.max_lag = lag
            if self._prometheus is not None:
                self._prometheus.lag.observe(lag)
        self.lag = lag
        if self._prometheus is not None:
            self._prometheus.claimed.inc(len(jobs))

    def sleep_after(self, claim: Claim) -> float:
        """Seconds to sleep after a claim of up to ``batch`` jobs, at most ``max_sleep``.

        0 after a full one (more may be due), else until the earliest due time left in
        every shard (each a difference of its own master's times, so no clock's offset
        matters, the local one's or another master's).
        """
        if claim.cutoff:  # the claim's time, server clock, whatever it found
            self.announcer.last_claim = float(claim.cutoff)
        if claim.pressed:  # Redis refused to add: back off, as from an outage
            delay = min(self.max_backoff, self.backoff * 2 ** min(self._pressed, 30))
            self._pressed += 1
            return random.uniform(delay / 2, delay)
        self._pressed = 0
        if claim.remaining is not None and claim.remaining <= 0:
            return 0.0
        wait = claim.next_wait()
        retry = self.retry_wait()
        if wait is None:
            return self.max_sleep if retry is None else min(self.max_sleep, retry)
        wait = min(self.max_sleep, max(MARGIN, wait + MARGIN))
        return wait if retry is None else min(wait, retry)

    # -- the batch in hand ----------------------------------------------------------------

    def next_job(self) -> Optional[Job]:
        """The next job of the batch in hand for the handler; None when the batch is over.

        Over: every job was handed out, the rest went back (``release``), or a stop was
        asked with ``finish_batch`` False. The whole batch otherwise, even once stopping.
        """
        with self.lock:
            given = self.given
            if (
                self.released
                or given >= len(self.jobs)
                or (self.stopping and not self.finish_batch)
            ):
                return None
            self.given = given + 1
            return self.jobs[given]

    def release(self) -> Optional[int]:
        """How many jobs of the batch in hand were handed out (put back the rest), once.

        None when no batch is in hand or it was released already. Called with ``lock``
        held, and the put-back made under it, where a thread may put the batch back on
        stop meanwhile (a sync dispatcher's, with ``finish_batch`` False).
        """
        if self.released:
            return None
        self.released = True
        return self.given

    def forgettable(self) -> List[Job]:
        """The jobs of the batch just handed out whose data to forget (none without forget).

        The batch is out of hand after this.
        """
        jobs = self.jobs[: self.given] if self.forget else []
        with self.lock:
            self.claim, self.jobs = None, []
        return jobs

    # -- handler outcomes -----------------------------------------------------------------

    def handled_one(self) -> None:
        """Count a job whose handler returned."""
        self.handled += 1
        if self._prometheus is not None:
            self._prometheus.handled.inc()

    def failed_attempt(self, job: Job, attempts: int, exc: BaseException) -> bool:
        """Count and log a handler call that raised; whether the run waits for a retry.

        ``attempts`` is the run's failed attempts before this one. With retries left (and
        fewer than ``MAX_PENDING_RETRIES`` waiting), the run is queued for its next attempt
        after ``retry_delay`` and True returned (a failed attempt: ``retried`` counts it);
        else it failed for good (``failed`` counts it). The loop goes on either way.
        """
        attempts += 1
        exc_info = (type(exc), exc, exc.__traceback__)
        if attempts <= self.retries and len(self._retries) < MAX_PENDING_RETRIES:
            delay = self.retry_delay(attempts - 1)
            retry = Retry(job, attempts, exc)
            heapq.heappush(self._retries, (time.monotonic() + delay, next(self._order), retry))
            self.retried += 1
            if self._prometheus is not None:
                self._prometheus.retried.inc()
            logger.warning(
                "rache: the handler raised for job %r (due at %s), attempt %d of %d; "
                "retrying in %.1f s",
                job.get("id"),
                job.due_at,
                attempts,
                self.retries + 1,
                delay,
                exc_info=exc_info,
            )
            return True
        self.failed_for_good()
        if attempts <= self.retries:
            logger.error(
                "rache: the handler raised for job %r (due at %s), attempt %d; failed: "
                "%d retries wait already (MAX_PENDING_RETRIES)",
                job.get("id"),
                job.due_at,
                attempts,
                len(self._retries),
                exc_info=exc_info,
            )
        else:
            logger.error(
                "rache: the handler raised for job %r (due at %s)%s",
                job.get("id"),
                job.due_at,
                f", attempt {attempts} of {attempts}: failed" if attempts > 1 else "",
                exc_info=exc_info,
            )
        return False

    def failed_for_good(self) -> None:
        """Count a run failed for good."""
        self.failed += 1
        if self._prometheus is not None:
            self._prometheus.failed.inc()

    # -- retries ----------------------------------------------------------------------------

    def retry_delay(self, before: int) -> float:
        """The wait before a retry after ``before + 1`` failed attempts, seconds.

        Exponential with jitter: half to all of ``retry_backoff * 2**before``, at most
        ``MAX_RETRY_DELAY``. Jitter spreads the retries of runs that failed together (an
        outage of what the handler calls) instead of sending them back at once.
        """
        delay = min(MAX_RETRY_DELAY, self.retry_backoff * 2 ** min(before, 60))
        return random.uniform(delay / 2, delay)

    @property
    def pending_retries(self) -> int:
        """How many runs wait for a retry."""
        return len(self._retries)

    def next_retry(self) -> Optional[Retry]:
        """The next retry due now, taken off the queue; None if none is due, or stopping."""
        if self.stopping or not self._retries or self._retries[0][0] > time.monotonic():
            return None
        return heapq.heappop(self._retries)[2]

    def retry_wait(self) -> Optional[float]:
        """Seconds until the next retry falls due (0 if one is due), None if none waits."""
        if not self._retries:
            return None
        return max(0.0, self._retries[0][0] - time.monotonic())

    def abandon(self) -> List[Retry]:
        """Every retry still waiting, taken off the queue (a stop): earliest first.

        The shell records each run failed for good (its last error, and that the
        dispatcher stopped), and counts it in ``failed``.
        """
        waiting = [heapq.heappop(self._retries)[2] for _ in range(len(self._retries))]
        for _ in waiting:
            self.failed_for_good()
        return waiting

    def hook_failed(self, job: Job, exc: BaseException) -> None:
        """Log an on_error hook that raised itself."""
        logger.error(
            "rache: on_error raised for job %r",
            job.get("id"),
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    # -- live pollers -----------------------------------------------------------------------

    def announcement(self, force: bool = False) -> Optional[Poller]:
        """The loop as a :class:`Poller` to announce now; None if it announced lately.

        At most one every ``ANNOUNCE_EVERY`` seconds (a third of a shorter ttl); ``force``
        for the first of a run.
        """
        if not self.announcer.due(force):
            return None
        return self.announcer.poller(self.handled + self.failed + self.retried, self.failed)

    def announce_failed(self, exc: BaseException) -> None:
        """Log an announce refused (not a connection error): once, till one goes through."""
        if not self._announce_failing:
            logger.warning(
                "rache: cannot announce this poller (Scheduler.pollers() will not list it): %s: %s",
                type(exc).__name__,
                exc,
            )
        self._announce_failing = True

    def announced(self) -> None:
        """Note an announce that went through."""
        self._announce_failing = False

    # -- connection errors ----------------------------------------------------------------

    def disconnected(self, exc: BaseException) -> float:
        """Note a connection error; the seconds to back off before the next attempt.

        Capped exponential backoff with jitter (half to all of ``backoff * 2**n``, at most
        ``max_backoff``). The outage is logged once, when it begins; its end once too.
        """
        self.errors += 1
        if self._outage is None:
            self._outage = time.monotonic()
            if out_of_memory(exc):
                logger.warning("rache: Redis refuses writes (%s); retrying with backoff", exc)
            else:
                logger.warning("rache: Redis unreachable (%s); retrying with backoff", exc)
        else:
            logger.debug("rache: Redis still unreachable (%s)", exc)
        delay = min(self.max_backoff, self.backoff * 2 ** min(self._attempt, 30))
        self._attempt += 1
        return random.uniform(delay / 2, delay)

    def connected(self) -> None:
        """Note a call that went through: ends an outage, logged once."""
        if self._outage is not None:
            logger.warning(
                "rache: Redis reachable again after %.1f s (%d failed attempts)",
                time.monotonic() - self._outage,
                self._attempt,
            )
            self._outage = None
        self._attempt = 0


class _Prometheus:
    """The dispatchers' Prometheus metrics in one registry (the ``prometheus`` extra).

    One set per registry, shared by every dispatcher given it: a registry refuses a second
    metric of the same name.
    """

    _by_registry: ClassVar[weakref.WeakKeyDictionary[Any, _Prometheus]] = (
        weakref.WeakKeyDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, registry: Any) -> _Prometheus:
        """The metrics in ``registry`` (True: prometheus_client's default one), made once."""
        try:
            import prometheus_client
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise MissingExtra("metrics=", "prometheus_client", "prometheus") from None
        if registry is True:
            registry = prometheus_client.REGISTRY
        if not isinstance(registry, prometheus_client.CollectorRegistry):
            raise TypeError(
                "metrics must be a prometheus_client.CollectorRegistry or True (the default "
                f"registry), not {type(registry).__name__}"
            )
        with cls._lock:
            metrics = cls._by_registry.get(registry)
            if metrics is None:
                metrics = cls._by_registry[registry] = cls(registry)
            return metrics

    def __init__(self, registry: Any) -> None:
        import prometheus_client

        self.claimed = prometheus_client.Counter(
            "rache_dispatcher_claimed", "Jobs claimed by rache dispatchers", registry=registry
        )
        self.handled = prometheus_client.Counter(
            "rache_dispatcher_handled", "Jobs whose handler returned", registry=registry
        )
        self.failed = prometheus_client.Counter(
            "rache_dispatcher_failed",
            "Runs failed for good: the handler raised, no retry left",
            registry=registry,
        )
        self.retried = prometheus_client.Counter(
            "rache_dispatcher_retried",
            "Failed attempts whose run was queued for a retry",
            registry=registry,
        )
        self.lag = prometheus_client.Histogram(
            "rache_dispatcher_lag_seconds",
            "Claim time less due time, server clock",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
