"""What both dispatchers share without I/O: settings, the loop's core, stop() and signals.

``BaseDispatcher`` checks the options and builds the core (``rache.dispatchloop.DispatchLoop``)
that makes every decision; ``rache.syncdispatcher.Dispatcher`` and
``rache.asyncdispatcher.AsyncDispatcher`` build on it and only do the I/O it asks for.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any, Callable, ClassVar, Generic, Optional, Type, TypeVar, cast

from .constants import (
    DEFAULT_BACKOFF,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_SLEEP,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    HAND_OFF_ATTRIBUTE,
    POLLER_TTL,
)
from .dispatchloop import DispatchLoop, Retry
from .durations import seconds
from .models import Job, Seconds
from .scheduler import AsyncScheduler, BaseScheduler, Claim, Scheduler

logger = logging.getLogger("rache.dispatch")

#: A handler: called with each claimed job (an AsyncDispatcher also awaits what it returns).
Handler = Callable[[Job], Any]
#: An error hook: ``on_error(job, exc)`` after the handler raised ``exc`` for ``job``.
ErrorHook = Callable[[Job, BaseException], Any]

#: The fewest seconds between two heartbeat calls.
HEARTBEAT_EVERY = 1.0

#: The scheduler a dispatcher claims from: a Scheduler, or an AsyncScheduler.
S = TypeVar("S", Scheduler, AsyncScheduler)


class BaseDispatcher(Generic[S]):
    """What both dispatchers share: settings, the loop's core, stop(), signal handling."""

    #: The scheduler class this dispatcher claims from, and the error for another one.
    _scheduler_class: ClassVar[Type[BaseScheduler]]
    _other: ClassVar[str]

    def __init__(
        self,
        handler: Handler,
        *,
        scheduler: Optional[S] = None,
        reschedule_in: Optional[Seconds] = None,
        batch: int = DEFAULT_BATCH_SIZE,
        max_sleep: Seconds = DEFAULT_MAX_SLEEP,
        on_error: Optional[ErrorHook] = None,
        wakeup: bool = True,
        backoff: Seconds = DEFAULT_BACKOFF,
        max_backoff: Seconds = DEFAULT_MAX_BACKOFF,
        metrics: Any = None,
        finish_batch: bool = True,
        forget: bool = False,
        heartbeat: Optional[Callable[[], Any]] = None,
        kind: str = "dispatcher",
        poller_ttl: Seconds = POLLER_TTL,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: Seconds = DEFAULT_RETRY_BACKOFF,
        hand_off: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> None:
        if scheduler is None:
            scheduler = cast(S, self._scheduler_class())
        elif not isinstance(scheduler, self._scheduler_class):
            raise TypeError(f"scheduler must be a {self._other}, not {type(scheduler).__name__}")
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable or None, not {type(on_error).__name__}")
        if heartbeat is not None and not callable(heartbeat):
            raise TypeError(f"heartbeat must be callable or None, not {type(heartbeat).__name__}")
        scheduler.claim(reschedule_in, None, name=name)  # its checks (a claim sends nothing)
        if reschedule_in is not None and round(seconds(reschedule_in, "reschedule_in") * 1000) <= 0:
            raise ValueError(
                "reschedule_in must be more than 0 for a dispatcher (a job due again at "
                f"once would be claimed in a loop), not {reschedule_in!r}"
            )
        self.core = DispatchLoop(
            batch=batch,
            max_sleep=max_sleep,
            backoff=backoff,
            max_backoff=max_backoff,
            metrics=metrics,
            finish_batch=finish_batch,
            forget=forget,
            kind=kind,
            poller_ttl=poller_ttl,
            retries=retries,
            retry_backoff=retry_backoff,
            # One name in pollers() and in the runs its claims record: the one given, else
            # the scheduler's (its Scheduler(name=...), else host:pid read at each use).
            name=name if name is not None else (lambda: scheduler.name),
        )
        #: the poller name given (None: the scheduler's), in its claims and its announces
        self.name = name
        self.handler = handler
        #: whether the handler hands each run to a task queue whose worker reports its
        #: outcome (then a return is not a success: only a raise is reported, as a failure)
        if hand_off is None:
            hand_off = bool(getattr(handler, HAND_OFF_ATTRIBUTE, False))
        self.hand_off = bool(hand_off)
        #: whether outcomes are recorded: not under ``Scheduler(history=0)``, which keeps
        #: no run (a finish_run would find none: a round trip a job for nothing)
        self.reports = getattr(scheduler, "history", None) != 0
        self.retries = self.core.retries
        self.retry_backoff = self.core.retry_backoff
        self.scheduler: S = scheduler
        self.reschedule_in = reschedule_in
        self.on_error = on_error
        self.wakeup = bool(wakeup)
        self.finish_batch = self.core.finish_batch
        self.forget = self.core.forget
        self.heartbeat = heartbeat
        #: the signal (SIGTERM, SIGINT) that stopped the last run, None if none did
        self.stop_signal: Optional[signal.Signals] = None
        self._beaten = float("-inf")  # when heartbeat() was last called (monotonic)
        #: the channels the schedule scripts publish on when the head of the schedule moves
        #: earlier: ``<prefix>wakeup``, one per shard of a sharded schedule
        self.channels = [keys.wakeup.decode() for keys in scheduler.shards]
        self.channel = ", ".join(self.channels)

    # The counts, as attributes of the dispatcher itself.
    @property
    def claimed(self) -> int:
        """Jobs claimed so far."""
        return self.core.claimed

    @property
    def handled(self) -> int:
        """Jobs whose handler returned."""
        return self.core.handled

    @property
    def failed(self) -> int:
        """Runs failed for good: the handler raised with no retry left (or on stop)."""
        return self.core.failed

    @property
    def retried(self) -> int:
        """Failed attempts whose run was queued for a retry."""
        return self.core.retried

    @property
    def pending_retries(self) -> int:
        """Runs waiting in this dispatcher for a retry."""
        return self.core.pending_retries

    @property
    def lag(self) -> Optional[float]:
        """The dispatch lag of the last job claimed: claim time less due time, seconds."""
        return self.core.lag

    @property
    def max_lag(self) -> float:
        """The largest dispatch lag seen, seconds."""
        return self.core.max_lag

    @property
    def put_back(self) -> int:
        """Jobs claimed and put back, never handed out (a stop with ``finish_batch=False``)."""
        return self.core.put_back

    def stop(self) -> None:
        """Ask the loop to stop: it hands out the batch in hand, then ``run()`` returns.

        With ``finish_batch=False``, the jobs of the batch not yet handed to the handler go
        back to the schedule at once instead (a handler call begun finishes first).
        Safe from a signal handler, another thread or the handler itself.
        """
        self.core.stopping = True

    def _on_signal(self, signum: int, frame: Any = None) -> None:
        """SIGTERM or SIGINT: note which, and stop (no I/O and no lock: a signal handler)."""
        self.stop_signal = signal.Signals(signum)
        self.stop()

    def _beat(self) -> None:
        """Call the heartbeat, at most once a second: the loop is turning."""
        if self.heartbeat is None:
            return
        now = time.monotonic()
        if now - self._beaten < HEARTBEAT_EVERY:
            return
        self._beaten = now
        try:
            self.heartbeat()
        except Exception:
            logger.warning("rache: the heartbeat raised", exc_info=True)

    @property
    def stopping(self) -> bool:
        """Whether stop() was called (or a signal received) since run() or run_once() began."""
        return self.core.stopping

    def _unreported(self, job: Job, exc: BaseException) -> None:
        """Log an outcome that could not be recorded: the run stays running, then unknown."""
        logger.warning(
            "rache: the outcome of %s could not be recorded (%s: %s); it shows as running, "
            "then unknown once its run_timeout passes",
            job.occurrence_id,
            type(exc).__name__,
            exc,
        )

    @staticmethod
    def _abandoned(retry: Retry, waiting: int) -> str:
        """The error recorded for a run whose retry was waiting when the dispatcher stopped."""
        error = retry.error
        return (
            f"{type(error).__name__}: {error} (attempt {retry.attempts}; not retried: the "
            f"dispatcher stopped with {waiting} retr{'y' if waiting == 1 else 'ies'} waiting)"
        )

    def _claim(self) -> Claim:
        scheduler: BaseScheduler = self.scheduler
        return scheduler.claim(self.reschedule_in, self.core.batch, name=self.name)
