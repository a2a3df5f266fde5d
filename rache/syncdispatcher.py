"""The dispatch loop: claim due jobs, hand each to a handler, sleep until the next is due.

One core without I/O (:class:`rache.dispatchloop.DispatchLoop`) makes every decision: how
long to sleep after a claim, how long to back off after a connection error, what to count
and log. The sync :class:`Dispatcher` and the asyncio :class:`AsyncDispatcher` only do the
I/O it asks for, and claim through the schedulers' public claim seam (``claim``,
``claim_batch``, ``put_back``, ``forget_jobs``). ``run_once()`` is one round of that loop
(one claim handed out), public, for a loop of your own: the Celery beat's ticks are such.

Wake-up: each claim's reply carries the earliest due time left in the schedule (read by the
same script, no extra round trip), so the loop sleeps exactly until then, at most
``max_sleep``. The scripts that add jobs (schedule, bulk schedule, put-back) PUBLISH on the
channel ``<prefix>wakeup`` when they move the head of the schedule earlier, and a sleeping
dispatcher, subscribed to it, wakes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import threading
import time
from typing import (
    Any,
    Awaitable,
    Callable,
    ClassVar,
    Generic,
    List,
    Optional,
    Type,
    TypeVar,
    Union,
    cast,
)

from . import config
from .constants import DEFAULT_BATCH_SIZE
from .dispatchloop import DispatchLoop
from .durations import seconds
from .errors import CONNECTION_ERRORS
from .models import Job, Seconds
from .scheduler import AsyncScheduler, BaseScheduler, Claim, Scheduler

logger = logging.getLogger(__name__)

__all__ = ["AsyncDispatcher", "DispatchLoop", "Dispatcher"]

#: A handler: called with each claimed job (an AsyncDispatcher also awaits what it returns).
Handler = Callable[[Job], Any]
#: An error hook: ``on_error(job, exc)`` after the handler raised ``exc`` for ``job``.
ErrorHook = Callable[[Job, BaseException], Any]

#: The longest a sleep waits for a wake-up message or stop() in one piece (sync loop only:
#: stop() from a signal handler or another thread is seen within this; no Redis command).
_SLICE = 0.1


#: How often a stopping dispatcher's put-back thread looks at the stop flag (finish_batch=False).
_RELEASE_POLL = 0.05
#: The fewest seconds between two heartbeat calls.
HEARTBEAT_EVERY = 1.0

#: The scheduler a dispatcher claims from: a Scheduler, or an AsyncScheduler.
S = TypeVar("S", Scheduler, AsyncScheduler)


class _BaseDispatcher(Generic[S]):
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
        max_sleep: Seconds = 30.0,
        on_error: Optional[ErrorHook] = None,
        wakeup: bool = True,
        backoff: Seconds = 0.1,
        max_backoff: Seconds = 30.0,
        metrics: Any = None,
        finish_batch: bool = True,
        forget: bool = False,
        heartbeat: Optional[Callable[[], Any]] = None,
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
        scheduler.claim(reschedule_in, None)  # its checks (a claim sends nothing)
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
        )
        self.handler = handler
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
        """Jobs whose handler raised."""
        return self.core.failed

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

    def _claim(self) -> Claim:
        scheduler: BaseScheduler = self.scheduler
        return scheduler.claim(self.reschedule_in, self.core.batch)


class Dispatcher(_BaseDispatcher[Scheduler]):
    """A blocking dispatch loop: claims due jobs and calls ``handler(job)`` for each.

    :param handler: called with each claimed :class:`rache.Job`; see ``rache.adapters``
        for rq, Celery and arq. An exception it raises is logged with the job's id and
        counted, and the loop goes on: with ``reschedule_in`` the job is due again then,
        without it the job is off the schedule, and ``on_error(job, exc)`` decides (it may
        schedule it again).
    :param scheduler: the :class:`rache.Scheduler` to claim from (default: one from
        ``REDIS_URL``).
    :param reschedule_in: as in ``pending_jobs``: claimed jobs are due again after this
        (seconds or timedelta, more than 0), instead of leaving the schedule.
    :param batch: the most jobs per claim (one script call; the scheduler's ``batch_size``
        caps it).
    :param max_sleep: the longest sleep between claims, seconds: the only Redis traffic of
        an idle dispatcher is one claim this often.
    :param on_error: ``on_error(job, exc)``, called after the handler raised.
    :param wakeup: listen on ``<prefix>wakeup`` to wake when an earlier job is scheduled;
        False sleeps until the next due time or ``max_sleep`` only.
    :param backoff: the first delay after a connection error; doubles to ``max_backoff``.
    :param metrics: a ``prometheus_client.CollectorRegistry`` (or True for the default one)
        to register counters and a lag histogram in; needs ``rache[prometheus]``.
    :param finish_batch: on stop(), hand out the rest of the batch in hand (True), or put it
        back in the schedule at once (False: a thread does it while a slow handler call
        finishes), so that a stop never waits for a whole batch.
    :param forget: delete a job's data once it is handed out (``forget_jobs``, after each
        batch), unless the job is scheduled again by then (rescheduled, recurring): one-shot
        jobs that leave nothing behind.
    :param heartbeat: called with no argument at most once a second while the loop turns
        (claims, sleeps, backoffs; not during a handler call): a liveness signal.
    """

    _scheduler_class = Scheduler
    _other = "rache.Scheduler (use rache.aio.AsyncDispatcher with an AsyncScheduler)"
    _pubsub: Any = None

    def run(self, *, until_idle: bool = False) -> None:
        """Run until stop(), SIGTERM or SIGINT, or (``until_idle``) until nothing is due.

        Round after round (see ``run_once``), sleeping in between until the next job is
        due. With ``until_idle``, returns after the first claim that finds fewer than
        ``batch`` jobs due (they are handed out first).
        Signal handlers are installed for the run only, and only on the main thread.
        """
        self.core.stopping = False
        self.stop_signal = None
        previous = _install_signals(self._on_signal)
        running = threading.Event()
        releaser = None
        if not self.finish_batch:
            running.set()
            releaser = threading.Thread(
                target=self._release_on_stop, args=(running,), name="rache-put-back", daemon=True
            )
            releaser.start()
        try:
            while not self.core.stopping:
                self._beat()
                try:
                    self._subscribe()
                    more = self._round()
                except CONNECTION_ERRORS as exc:
                    self._drop_pubsub()
                    self._sleep(self.core.disconnected(exc), listen=False)
                    continue
                if until_idle and more > 0:
                    return
                if more:
                    self._sleep(more, listen=True)
        finally:
            _restore_signals(previous)
            if releaser is not None:
                running.clear()
                releaser.join()
            self._drop_pubsub()

    def run_once(self) -> float:
        """One round of ``run()``: claim the jobs due now (up to ``batch``), hand each out.

        What a round of ``run()`` does, it does: each job goes to the handler (its errors
        logged and counted, ``on_error`` called), a stop() during the round (from the
        handler, another thread, a signal handler of yours) ends it after the batch in
        hand (with ``finish_batch=False``: at once, the rest put back), ``forget`` forgets,
        and the counts and metrics count. Like ``run()``, it clears a stop asked before it.
        It installs no signal handler, listens on no wake-up channel and never sleeps: the
        loop around it is yours (a Celery beat's ``tick`` is one round).

        Returns the seconds to wait before the next round: 0 after a full claim (more may
        be due), else until the earliest job left falls due, at most ``max_sleep``. A Redis
        connection error is not raised: it returns the backoff delay (the outage logged
        once, when it begins, and once when it ends).
        """
        self.core.stopping = False
        self._beat()
        try:
            return self._round()
        except CONNECTION_ERRORS as exc:
            return self.core.disconnected(exc)

    def _release_on_stop(self, running: threading.Event) -> None:
        """Once stop() is called, put back at once the jobs of the batch not yet handed out.

        Runs beside the loop (``finish_batch=False``), so that a slow handler call does not
        hold the rest of its batch: the loop, when that call returns, hands out no more.
        It polls the stop flag, as a signal handler may set no lock.
        """
        core = self.core
        while running.is_set():
            if core.stopping:
                with core.lock:
                    handed = core.release()
                    if handed is not None and core.claim is not None:
                        back = self.scheduler.put_back(core.claim, handed)
                        core.put_back += back
                        if back:
                            logger.info("rache: stopping: put back %d claimed jobs at once", back)
            time.sleep(_RELEASE_POLL)

    def _round(self) -> float:
        """One claim of up to ``batch`` jobs handed out; the seconds to sleep after it.

        The core (DispatchLoop) decides which job goes next, what goes back and what is
        forgotten; this does the calls. A sharded schedule's claim takes from each shard in
        turn, as pending_jobs does. What was not handed out goes back (a stop, or a
        BaseException from the handler), here or at once by the put-back thread.
        """
        core, scheduler, handler, on_error = self.core, self.scheduler, self.handler, self.on_error
        claim = self._claim()
        while (jobs := scheduler.claim_batch(claim)) is not None:
            core.took(claim, jobs)
            try:
                while (job := core.next_job()) is not None:
                    try:
                        handler(job)
                    except Exception as exc:
                        core.failed_one(job, exc)
                        if on_error is not None:
                            try:
                                on_error(job, exc)
                            except Exception as hook_exc:
                                core.hook_failed(job, hook_exc)
                    else:
                        core.handled_one()
            finally:
                with core.lock:
                    handed = core.release()
                    if handed is not None:
                        core.put_back += scheduler.put_back(claim, handed)
            forgotten = core.forgettable()
            if forgotten:
                scheduler.forget_jobs(forgotten)
            if core.stopping:
                break
            self._beat()
        return core.sleep_after(claim)

    def _subscribe(self) -> None:
        if not self.wakeup or self._pubsub is not None:
            return
        factory = _pubsub_factory(self)
        if factory is None:
            return
        pubsub = factory(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self.channels)
        except CONNECTION_ERRORS:
            pubsub.close()
            raise  # an outage: backed off, then subscribed again
        except Exception as exc:
            # Refused (ACL: see README, Least privilege) or unsupported by the client: the
            # wake-up is only a shortcut, so the loop goes on without it.
            pubsub.close()
            _no_wakeup(self, exc)
            return
        except BaseException:
            pubsub.close()
            raise
        self._pubsub = pubsub

    def _drop_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to save
                self._pubsub.close()
            self._pubsub = None

    def _sleep(self, seconds: float, *, listen: bool) -> None:
        """Sleep ``seconds``, or less: a wake-up message (if ``listen``), or stop()."""
        deadline = time.monotonic() + seconds
        while not self.core.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._beat()
            piece = min(left, _SLICE)
            if listen and self._pubsub is not None:
                try:
                    message = self._pubsub.get_message(timeout=piece)
                except CONNECTION_ERRORS:
                    self._drop_pubsub()  # resubscribed before the next claim
                    return
                except Exception as exc:  # SUBSCRIBE refused: its error is read here
                    self._drop_pubsub()
                    _no_wakeup(self, exc)
                    return
                if message is not None:
                    while self._pubsub.get_message(timeout=0) is not None:
                        pass  # one claim answers every message queued
                    return
            else:
                time.sleep(piece)


class AsyncDispatcher(_BaseDispatcher[AsyncScheduler]):
    """The asyncio dispatch loop: :class:`Dispatcher`'s twin over an ``AsyncScheduler``.

    ``handler(job)`` may be a plain function or a coroutine function (awaited), and so may
    ``on_error``. The options are the Dispatcher's. ``await run()`` returns on stop(),
    SIGTERM or SIGINT (handlers installed for the run, when it runs on the main thread).
    """

    _scheduler_class = AsyncScheduler
    _other = "rache.aio.AsyncScheduler (use rache.Dispatcher with a Scheduler)"
    _wake: Optional[asyncio.Event] = None
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _listener: Optional[asyncio.Task[None]] = None
    _pubsub: Any = None

    def stop(self) -> None:
        """Ask the loop to stop after the batch in hand; safe from any thread or a signal."""
        self.core.stopping = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
                loop.call_soon_threadsafe(wake.set)

    async def run(self, *, until_idle: bool = False) -> None:
        """Run until stop(), SIGTERM or SIGINT, or with ``until_idle`` until nothing is due."""
        self.core.stopping = False
        self.stop_signal = None
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # signal.signal, not loop.add_signal_handler: the flag is set at once, even while
        # a sync handler holds the loop, so the batch in hand is the last.
        previous = _install_signals(self._on_signal)
        try:
            while not self.core.stopping:
                self._beat()
                try:
                    await self._subscribe()
                    self._wake.clear()  # a message from now on is news for the next sleep
                    more = await self._round()
                except CONNECTION_ERRORS as exc:
                    await self._drop_pubsub()
                    self._wake.clear()  # a backoff: only stop() cuts it short
                    await self._sleep(self.core.disconnected(exc))
                    continue
                if until_idle and more > 0:
                    return
                if more:
                    await self._sleep(more)
        finally:
            _restore_signals(previous)
            await self._drop_pubsub()
            self._loop = self._wake = None

    async def run_once(self) -> float:
        """One round of ``run()``; the seconds to wait. See :meth:`Dispatcher.run_once`."""
        self.core.stopping = False
        self._beat()
        try:
            return await self._round()
        except CONNECTION_ERRORS as exc:
            return self.core.disconnected(exc)

    async def _round(self) -> float:
        """One claim handed out; the seconds to sleep after it. See Dispatcher._round."""
        core, scheduler, handler, on_error = self.core, self.scheduler, self.handler, self.on_error
        claim = self._claim()
        while (jobs := await scheduler.claim_batch(claim)) is not None:
            core.took(claim, jobs)
            try:
                while (job := core.next_job()) is not None:
                    try:
                        await _maybe_await(handler(job))
                    except Exception as exc:
                        core.failed_one(job, exc)
                        if on_error is not None:
                            try:
                                await _maybe_await(on_error(job, exc))
                            except Exception as hook_exc:
                                core.hook_failed(job, hook_exc)
                    else:
                        core.handled_one()
            finally:
                # Cancelled, a stop, or a BaseException from the handler: the rest goes back
                # (no other thread puts back here: no lock held across the await).
                handed = core.release()
                if handed is not None:
                    core.put_back += await scheduler.put_back(claim, handed)
            forgotten = core.forgettable()
            if forgotten:
                await scheduler.forget_jobs(forgotten)
            if core.stopping:
                break
            self._beat()
        return core.sleep_after(claim)

    async def _subscribe(self) -> None:
        if not self.wakeup or self._pubsub is not None:
            return
        factory = _pubsub_factory(self)
        if factory is None:
            return
        if config.is_cluster(self.scheduler.connection):
            # redis-py's asyncio cluster Pub/Sub needs the slot map, read on first use.
            await self.scheduler.connection.initialize()
        pubsub = factory(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*self.channels)
        except CONNECTION_ERRORS:
            await _aclose(pubsub)
            raise  # an outage: backed off, then subscribed again
        except Exception as exc:
            # Refused (ACL: see README, Least privilege) or unsupported by the client: the
            # wake-up is only a shortcut, so the loop goes on without it.
            await _aclose(pubsub)
            _no_wakeup(self, exc)
            return
        except BaseException:
            await _aclose(pubsub)
            raise
        self._pubsub = pubsub
        self._listener = asyncio.ensure_future(self._listen(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        """Set the wake event on every message; on a broken connection, set it and end."""
        assert self._wake is not None
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._wake.set()
        except CONNECTION_ERRORS:
            self._wake.set()  # the loop sees this task done, and subscribes anew
        except Exception as exc:  # SUBSCRIBE refused: its error is read here
            _no_wakeup(self, exc)
            self._wake.set()

    async def _drop_pubsub(self) -> None:
        listener, pubsub = self._listener, self._pubsub
        self._listener = self._pubsub = None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        if pubsub is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to save
                await _aclose(pubsub)

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        deadline = time.monotonic() + seconds
        while not self.core.stopping and not self._wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._beat()
            with contextlib.suppress(asyncio.TimeoutError):  # in pieces, for the heartbeat
                await asyncio.wait_for(self._wake.wait(), min(left, HEARTBEAT_EVERY))
        if self._listener is not None and self._listener.done():
            await self._drop_pubsub()  # its connection broke: resubscribe before the claim


async def _maybe_await(result: Union[Any, Awaitable[Any]]) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


def _no_wakeup(dispatcher: _BaseDispatcher[Any], exc: BaseException) -> None:
    """Turn the wake-up off for good, said once: the loop then wakes on its timer."""
    logger.warning(
        "rache: cannot SUBSCRIBE to %r (%r): waking on the next due time or max_sleep only",
        dispatcher.channel,
        exc,
    )
    dispatcher.wakeup = False


def _pubsub_factory(dispatcher: _BaseDispatcher[Any]) -> Any:
    """The client's ``pubsub`` method; None (and wakeup turned off, said once) if it has none.

    Older redis-py's asyncio RedisCluster has no Pub/Sub: its dispatchers wake on their timer.
    """
    factory = getattr(dispatcher.scheduler.connection, "pubsub", None)
    if factory is None:
        logger.warning(
            "rache: %s has no Pub/Sub: waking on the next due time or max_sleep only",
            type(dispatcher.scheduler.connection).__name__,
        )
        dispatcher.wakeup = False
    return factory


async def _aclose(pubsub: Any) -> None:
    """Close a redis.asyncio PubSub: ``aclose()`` from redis-py 5.0.1, ``reset()`` before."""
    close = getattr(pubsub, "aclose", None) or pubsub.reset
    await close()


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _install_signals(on_signal: Callable[[int, Any], None]) -> Optional[List[Any]]:
    """SIGTERM and SIGINT call ``on_signal`` (main thread only); the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = [signal.getsignal(sig) for sig in _SIGNALS]
    for sig in _SIGNALS:
        signal.signal(sig, on_signal)
    return previous


def _restore_signals(previous: Optional[List[Any]]) -> None:
    if previous is None:
        return
    for sig, handler in zip(_SIGNALS, previous):
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
