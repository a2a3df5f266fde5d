"""The asyncio dispatch loop: ``AsyncDispatcher``, the twin of ``Dispatcher``.

Over an ``AsyncScheduler``, its handler plain or a coroutine function; the sleep waits on an
``asyncio.Event`` that a Pub/Sub listener task or stop() sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any, Awaitable, Optional, Union

from . import config
from .basedispatcher import HEARTBEAT_EVERY, BaseDispatcher
from .errors import CONNECTION_ERRORS, TRANSIENT_ERRORS, transient
from .models import Job
from .scheduler import AsyncScheduler
from .signals import install_signals, restore_signals
from .wakeup import aclose, no_wakeup, pubsub_factory

logger = logging.getLogger("rache.dispatch")


class AsyncDispatcher(BaseDispatcher[AsyncScheduler]):
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
        """Run until stop(), SIGTERM or SIGINT, or with ``until_idle`` until nothing is due.

        As :meth:`Dispatcher.run`: the runs still waiting for a retry are recorded failed
        when it returns.
        """
        self.core.stopping = False
        self.stop_signal = None
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # signal.signal, not loop.add_signal_handler: the flag is set at once, even while
        # a sync handler holds the loop, so the batch in hand is the last.
        previous = install_signals(self._on_signal)
        try:
            await self._announce(force=True)
            while not self.core.stopping:
                self._beat()
                await self._announce()
                try:
                    await self._subscribe()
                    self._wake.clear()  # a message from now on is news for the next sleep
                    more = await self._round()
                except TRANSIENT_ERRORS as exc:
                    if not transient(exc):  # an error reply other than out of memory
                        raise
                    await self._drop_pubsub()
                    self._wake.clear()  # a backoff: only stop() cuts it short
                    await self._sleep(self.core.disconnected(exc), listen=False)
                    continue
                if until_idle and more > 0 and not self.core.pending_retries:
                    return
                if more:
                    await self._sleep(more)
        finally:
            restore_signals(previous)
            await self.abandon_retries()
            await self._drop_pubsub()
            self._loop = self._wake = None
            await self.withdraw()

    async def run_once(self) -> float:
        """One round of ``run()``; the seconds to wait. See :meth:`Dispatcher.run_once`."""
        self.core.stopping = False
        self._beat()
        await self._announce()
        try:
            return await self._round()
        except TRANSIENT_ERRORS as exc:
            if not transient(exc):  # an error reply other than out of memory
                raise
            return self.core.disconnected(exc)

    async def abandon_retries(self) -> int:
        """Record every run waiting for a retry failed; see :meth:`Dispatcher.abandon_retries`."""
        waiting = self.core.abandon()
        for retry in waiting:
            await self._finish(retry.job, self._abandoned(retry, len(waiting)))
            await self._on_error(retry.job, retry.error)
        if waiting:
            logger.warning(
                "rache: stopping: %d runs waiting for a retry recorded failed", len(waiting)
            )
        return len(waiting)

    async def _call(self, job: Job, attempts: int = 0) -> None:
        """Call the handler for one run; record the outcome. See Dispatcher._call."""
        try:
            await maybe_await(self.handler(job))
        except Exception as exc:
            if self.core.failed_attempt(job, attempts, exc):
                await self._finish(job, exc, retrying=True)
                return
            await self._finish(job, exc)
            await self._on_error(job, exc)
        else:
            self.core.handled_one()
            if not self.hand_off:
                await self._finish(job)

    async def _finish(self, job: Job, error: Any = None, *, retrying: bool = False) -> None:
        if not self.reports:
            return
        try:
            await self.scheduler.finish_run(job.occurrence_id, error, retrying=retrying)
        except Exception as exc:
            self._unreported(job, exc)

    async def _on_error(self, job: Job, exc: BaseException) -> None:
        if self.on_error is None:
            return
        try:
            await maybe_await(self.on_error(job, exc))
        except Exception as hook_exc:
            self.core.hook_failed(job, hook_exc)

    async def _retry_due(self) -> None:
        while (retry := self.core.next_retry()) is not None:
            await self._call(retry.job, retry.attempts)

    async def _round(self) -> float:
        """One claim handed out; the seconds to sleep after it. See Dispatcher._round."""
        core, scheduler = self.core, self.scheduler
        await self._retry_due()
        claim = self._claim()
        while (jobs := await scheduler.claim_batch(claim)) is not None:
            core.took(claim, jobs)
            try:
                while (job := core.next_job()) is not None:
                    await self._call(job)
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
            await self._announce()
            await self._retry_due()
        return core.sleep_after(claim)

    async def _announce(self, force: bool = False) -> None:
        """Announce this loop as a live poller, if due. See Dispatcher._announce."""
        poller = self.core.announcement(force)
        if poller is None:
            return
        try:
            await self.scheduler.announce(poller, self.core.announcer.ttl)
        except CONNECTION_ERRORS:
            return
        except Exception as exc:
            self.core.announce_failed(exc)
        else:
            self.core.announced()

    async def withdraw(self) -> None:
        """Remove this loop from the live pollers at once. See :meth:`Dispatcher.withdraw`."""
        name = self.core.announcer.withdrawn()
        if name is None:
            return
        try:
            await self.scheduler.withdraw(name)
        except Exception as exc:
            logger.info("rache: could not withdraw poller %r (it lapses by itself): %s", name, exc)

    async def _subscribe(self) -> None:
        if not self.wakeup or self._pubsub is not None:
            return
        factory = pubsub_factory(self)
        if factory is None:
            return
        if config.is_cluster(self.scheduler.connection):
            # redis-py's asyncio cluster Pub/Sub needs the slot map, read on first use.
            await self.scheduler.connection.initialize()
        pubsub = factory(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*self.channels)
        except CONNECTION_ERRORS:
            await aclose(pubsub)
            raise  # an outage: backed off, then subscribed again
        except Exception as exc:
            # Refused (ACL: see README, Least privilege) or unsupported by the client: the
            # wake-up is only a shortcut, so the loop goes on without it.
            await aclose(pubsub)
            no_wakeup(self, exc)
            return
        except BaseException:
            await aclose(pubsub)
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
            no_wakeup(self, exc)
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
                await aclose(pubsub)

    async def _sleep(self, seconds: float, listen: bool = True) -> None:
        assert self._wake is not None
        deadline = time.monotonic() + seconds
        while not self.core.stopping and not self._wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._beat()
            if listen:  # not in a backoff: Redis is away then
                await self._announce()
            with contextlib.suppress(asyncio.TimeoutError):  # in pieces, for the heartbeat
                await asyncio.wait_for(self._wake.wait(), min(left, HEARTBEAT_EVERY))
        if self._listener is not None and self._listener.done():
            await self._drop_pubsub()  # its connection broke: resubscribe before the claim


async def maybe_await(result: Union[Any, Awaitable[Any]]) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result
