"""The decisions of a dispatch loop, without I/O: how long to sleep, back off, what to count.

Shared by :class:`rache.Dispatcher` and :class:`rache.aio.AsyncDispatcher`, so that a rule
exists once; they only do the I/O it asks for.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from typing import Any, ClassVar, List, Optional

from . import encode
from .claim import Claim
from .constants import MAX_BATCH_SIZE
from .errors import MissingExtra
from .models import Job, Seconds

logger = logging.getLogger("rache.dispatch")

#: Slept past a due time, so that a claim at the due time finds the job due on the server.
MARGIN = 0.0005


class DispatchLoop:
    """The decisions of a dispatch loop, without I/O: sleeps, backoff, counts and logs.

    Shared by :class:`Dispatcher` and :class:`AsyncDispatcher`, so that a rule exists once.
    """

    def __init__(
        self,
        *,
        batch: int,
        max_sleep: Seconds,
        backoff: Seconds,
        max_backoff: Seconds,
        metrics: Any = None,
    ) -> None:
        self.batch = encode.count(batch, "batch", 1, MAX_BATCH_SIZE)
        self.max_sleep = encode.positive_seconds(max_sleep, "max_sleep")
        self.backoff = encode.positive_seconds(backoff, "backoff")
        self.max_backoff = encode.positive_seconds(max_backoff, "max_backoff")
        if self.max_backoff < self.backoff:
            raise ValueError(
                f"max_backoff ({max_backoff!r}) must not be less than backoff ({backoff!r})"
            )
        #: jobs claimed, handed to the handler without error, and whose handler raised
        self.claimed = 0
        self.handled = 0
        self.failed = 0
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
        self._outage: Optional[float] = None  # when the current outage began (monotonic)
        self._attempt = 0  # failed attempts in a row
        self._prometheus = _Prometheus.of(metrics) if metrics is not None else None

    # -- claims ---------------------------------------------------------------------------

    def took(self, claim: Claim, jobs: List[Job]) -> None:
        """Count a claim's jobs and their lag (cutoff less due time)."""
        self.claims += 1
        self.connected()
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
        if claim.remaining is not None and claim.remaining <= 0:
            return 0.0
        wait = claim.next_wait()
        if wait is None:
            return self.max_sleep
        wait += MARGIN
        return min(self.max_sleep, max(MARGIN, wait))

    # -- handler outcomes -----------------------------------------------------------------

    def handled_one(self) -> None:
        """Count a job whose handler returned."""
        self.handled += 1
        if self._prometheus is not None:
            self._prometheus.handled.inc()

    def failed_one(self, job: Job, exc: BaseException) -> None:
        """Count and log a job whose handler raised: the loop goes on."""
        self.failed += 1
        if self._prometheus is not None:
            self._prometheus.failed.inc()
        logger.error(
            "rache: the handler raised for job %r (due at %s)",
            job.get("id"),
            job.due_at,
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    def hook_failed(self, job: Job, exc: BaseException) -> None:
        """Log an on_error hook that raised itself."""
        logger.error(
            "rache: on_error raised for job %r",
            job.get("id"),
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    # -- connection errors ----------------------------------------------------------------

    def disconnected(self, exc: BaseException) -> float:
        """Note a connection error; the seconds to back off before the next attempt.

        Capped exponential backoff with jitter (half to all of ``backoff * 2**n``, at most
        ``max_backoff``). The outage is logged once, when it begins; its end once too.
        """
        self.errors += 1
        if self._outage is None:
            self._outage = time.monotonic()
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
    """The dispatchers' Prometheus metrics in one registry (``rache[prometheus]``).

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
            "rache_dispatcher_failed", "Jobs whose handler raised", registry=registry
        )
        self.lag = prometheus_client.Histogram(
            "rache_dispatcher_lag_seconds",
            "Claim time less due time, server clock",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
