"""The dispatch loop: claim due jobs, hand each to a handler, sleep until the next is due.

One core without I/O (:class:`rache.dispatchloop.DispatchLoop`) makes every decision: how
long to sleep after a claim, how long to back off after a connection error, what to count
and log. The sync :class:`Dispatcher` and the asyncio :class:`AsyncDispatcher` only do the
I/O it asks for, and claim through the schedulers' public claim seam (``claim``,
``claim_batch``, ``put_back``).

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

from . import config, encode
from .claim import Claim
from .constants import DEFAULT_BATCH_SIZE
from .dispatchloop import DispatchLoop
from .errors import CONNECTION_ERRORS
from .models import Job, Seconds
from .scheduler import AsyncScheduler, BaseScheduler, Scheduler
from .scripts import Call

logger = logging.getLogger(__name__)

__all__ = ["AsyncDispatcher", "DispatchLoop", "Dispatcher", "forget_call"]

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


def forget_call(claim: Claim, jobs: List[Job]) -> Optional[Call]:
    """The forget-2.lua call deleting the data of ``jobs`` (of ``claim``'s last batch).

    A job scheduled again by then (recurring, rescheduled, or by someone else) keeps its
    data: the script checks each id's queue entry in the same atomic step. None for none.
    """
    if not jobs:
        return None
    # a batch comes from one shard: these keys share a slot
    return encode.forget(claim.keys, [job.raw_id for job in jobs])


class _InHand:
    """The batch being handed out, shared with the thread that puts it back on stop().

    ``given`` counts the jobs handed to the handler (the one being handled included);
    ``released`` says the rest went back already. The lock orders the two threads.
    """

    __slots__ = ("claim", "given", "lock", "released")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claim: Optional[Claim] = None
        self.given = 0
        self.released = False


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
        if reschedule_in is not None:
            millis, _ = encode.offset(reschedule_in, "reschedule_in")
            if millis <= 0:
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
        )
        self.handler = handler
        self.scheduler: S = scheduler
        self.reschedule_in = reschedule_in
        self.on_error = on_error
        self.wakeup = bool(wakeup)
        self.finish_batch = bool(finish_batch)
        self.forget = bool(forget)
        self.heartbeat = heartbeat
        #: the signal (SIGTERM, SIGINT) that stopped the last run, None if none did
        self.stop_signal: Optional[signal.Signals] = None
        self._beaten = float("-inf")  # when heartbeat() was last called (monotonic)
        self._hand = _InHand()
        #: the channels the schedule scripts publish on when the head of the schedule moves
        #: earlier: ``<prefix>wakeup``, one per shard of a sharded schedule
        self.channels = [keys.wakeup.decode() for keys in scheduler.shards]
        self.channel = ", ".join(self.channels)
        self._stopping = False

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
        self._stopping = True

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
        """Whether stop() was called (or SIGTERM/SIGINT received) since run() began."""
        return self._stopping

    def _claim(self) -> Claim:
        scheduler: BaseScheduler = self.scheduler
        return scheduler.claim(self.reschedule_in, self.core.batch)

    def _failed(self, job: Job, exc: Exception) -> Optional[Any]:
        """Count and log a failed job; the on_error hook's call, to run (or await) if any."""
        self.core.failed_one(job, exc)
        return None if self.on_error is None else self.on_error


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
    :param forget: delete a job's data once it is handed out (forget-2.lua, after each
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

        With ``until_idle``, returns after the first claim that finds fewer than ``batch``
        jobs due (they are handed out first).
        Signal handlers are installed for the run only, and only on the main thread.
        """
        self._stopping = False
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
            while not self._stopping:
                self._beat()
                try:
                    self._subscribe()
                    more = self._batch()
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

    def _release_on_stop(self, running: threading.Event) -> None:
        """Once stop() is called, put back at once the jobs of the batch not yet handed out.

        Runs beside the loop (``finish_batch=False``), so that a slow handler call does not
        hold the rest of its batch: the loop, when that call returns, hands out no more.
        It polls the stop flag, as a signal handler may set no lock.
        """
        hand = self._hand
        while running.is_set():
            if self._stopping:
                with hand.lock:
                    if hand.claim is not None and not hand.released:
                        back = self.scheduler.put_back(hand.claim, hand.given)
                        hand.released = True
                        self.core.put_back += back
                        if back:
                            logger.info("rache: stopping: put back %d claimed jobs at once", back)
            time.sleep(_RELEASE_POLL)

    def _batch(self) -> float:
        """One claim of up to ``batch`` jobs handed out; the seconds to sleep after it.

        A sharded schedule's claim takes from each shard in turn, as pending_jobs does.
        """
        claim = self._claim()
        while (jobs := self.scheduler.claim_batch(claim)) is not None:
            self.core.took(claim, jobs)
            handed = self._hand_out(claim, jobs)
            if self.forget:
                self._forget(claim, jobs[:handed])
            if self._stopping:
                break
            self._beat()
        return self.core.sleep_after(claim)

    def _hand_out(self, claim: Claim, jobs: List[Job]) -> int:
        """Hand the batch's jobs to the handler, one by one; how many it was given.

        The whole batch, even once stop() was called, unless ``finish_batch`` is False.
        What was not handed out goes back (a stop, or a BaseException from the handler),
        here or at once by the put-back thread.
        """
        hand = self._hand
        lock, finish = hand.lock, self.finish_batch
        with lock:
            hand.claim, hand.given, hand.released = claim, 0, False
        try:
            for job in jobs:
                with lock:  # inline: a method call per job costs more than the lock
                    if hand.released or (self._stopping and not finish):
                        break
                    hand.given += 1
                try:
                    self.handler(job)
                except Exception as exc:
                    hook = self._failed(job, exc)
                    if hook is not None:
                        try:
                            hook(job, exc)
                        except Exception as hook_exc:
                            self.core.hook_failed(job, hook_exc)
                else:
                    self.core.handled_one()
        finally:
            with hand.lock:
                if not hand.released:
                    self.core.put_back += self.scheduler.put_back(claim, hand.given)
                hand.claim = None
        return hand.given

    def _forget(self, claim: Claim, jobs: List[Job]) -> None:
        """Delete the data of the jobs handed out, unless scheduled again (forget-2.lua)."""
        call = forget_call(claim, jobs)
        if call is not None:
            script, keys, args = call
            script(self.scheduler.connection, keys, args)

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
        while not self._stopping:
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
        self._stopping = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
                loop.call_soon_threadsafe(wake.set)

    async def run(self, *, until_idle: bool = False) -> None:
        """Run until stop(), SIGTERM or SIGINT, or with ``until_idle`` until nothing is due."""
        self._stopping = False
        self.stop_signal = None
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # signal.signal, not loop.add_signal_handler: the flag is set at once, even while
        # a sync handler holds the loop, so the batch in hand is the last.
        previous = _install_signals(self._on_signal)
        try:
            while not self._stopping:
                self._beat()
                try:
                    await self._subscribe()
                    more = await self._batch()
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

    async def _batch(self) -> float:
        claim = self._claim()
        assert self._wake is not None
        self._wake.clear()  # a message from now on is news for the next sleep
        while (jobs := await self.scheduler.claim_batch(claim)) is not None:
            self.core.took(claim, jobs)
            given = 0
            try:
                for job in jobs:
                    if self._stopping and not self.finish_batch:
                        break  # between two awaited calls: the rest goes back below
                    given += 1
                    try:
                        await _maybe_await(self.handler(job))
                    except Exception as exc:
                        hook = self._failed(job, exc)
                        if hook is not None:
                            try:
                                await _maybe_await(hook(job, exc))
                            except Exception as hook_exc:
                                self.core.hook_failed(job, hook_exc)
                    else:
                        self.core.handled_one()
            finally:
                # Cancelled, a stop, or a BaseException from the handler: the rest goes back.
                self.core.put_back += await self.scheduler.put_back(claim, given)
            if self.forget and given:
                call = forget_call(claim, jobs[:given])
                if call is not None:
                    await call.script.run_async(self.scheduler.connection, call.keys, call.args)
            if self._stopping:
                break
            self._beat()
        return self.core.sleep_after(claim)

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
        while not self._stopping and not self._wake.is_set():
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
