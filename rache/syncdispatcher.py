"""The blocking dispatch loop: ``Dispatcher``, over a ``Scheduler``.

It only does the I/O its core (``rache.dispatchloop.DispatchLoop``) asks for: a claim, the
handler calls, a sleep that a Pub/Sub message or stop() cuts short (in slices, so that a
signal or another thread's stop() is seen at once), and on stop the put-back of what it
holds. Its asyncio twin is ``rache.asyncdispatcher.AsyncDispatcher``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from .basedispatcher import BaseDispatcher
from .errors import CONNECTION_ERRORS, TRANSIENT_ERRORS, transient
from .models import Job
from .scheduler import Scheduler
from .signals import install_signals, restore_signals
from .wakeup import no_wakeup, pubsub_factory

logger = logging.getLogger("rache.dispatch")

#: The longest a sleep waits for a wake-up message or stop() in one piece (sync loop only:
#: stop() from a signal handler or another thread is seen within this; no Redis command).
_SLICE = 0.1
#: How often a stopping dispatcher's put-back thread looks at the stop flag (finish_batch=False).
_RELEASE_POLL = 0.05


class Dispatcher(BaseDispatcher[Scheduler]):
    """A blocking dispatch loop: claims due jobs and calls ``handler(job)`` for each.

    :param handler: called with each claimed :class:`rache.Job`; see ``rache.adapters``
        for rq, Celery and arq. Its outcome is the run's (``Scheduler.finish_run``): it
        returned, the run succeeded; it raised, the attempt failed, and the run is tried
        again later (``retries``) or failed for good, logged with the job's id and
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
        to register counters and a lag histogram in; needs prometheus_client, the
        ``prometheus`` extra (``pip install '.[prometheus]'`` from rache's checkout).
    :param finish_batch: on stop(), hand out the rest of the batch in hand (True), or put it
        back in the schedule at once (False: under ``run()`` a thread does it while a slow
        handler call finishes; ``run_once()`` does it when that call returns), so that a
        stop never waits for a whole batch.
    :param forget: delete a job's data once it is handed out (``forget_jobs``, after each
        batch), unless the job is scheduled again by then (rescheduled, recurring): one-shot
        jobs that leave nothing behind.
    :param heartbeat: called with no argument at most once a second while the loop turns
        (claims, sleeps, backoffs; not during a handler call): a liveness signal.
    :param kind: what it is, as ``Scheduler.pollers()`` lists it (``'dispatcher'``).
    :param poller_ttl: how long its entry there outlives its last announce (seconds, 60 by
        default): a process killed without a word is listed this long at most. While it
        runs it announces itself every few seconds (in claims and sleeps, not during a
        handler call: a call longer than this drops it from the list till it returns), and
        on a clean stop it withdraws at once.
    :param retries: how many times a run whose handler raised is tried again, in this
        process, with the same occurrence id (default 0). Each failed attempt is recorded
        with ``finish_run(occurrence, exc, retrying=True)``, the last with
        ``finish_run(occurrence, exc)``, and ``on_error`` is called then only. A retry
        waits in a queue of the loop, never in a sleep: other jobs and the next
        occurrences go out meanwhile. On stop, the retries still waiting are not made:
        their runs are recorded failed (the last error, and that the dispatcher stopped),
        to be found in ``Scheduler.failures()`` and scheduled again by hand.
    :param retry_backoff: the wait before the first retry, seconds or timedelta (default
        10 s), doubled for each further one, with jitter (half to all of it), at most
        ``rache.constants.MAX_RETRY_DELAY``.
    :param hand_off: the handler hands each run to a task queue, whose worker reports the
        outcome (``rache.adapters``' handlers say so themselves: the default, None, reads
        their mark): its return is then not recorded as a success; a raise still is a
        failed attempt.
    :param name: its poller name, in ``Scheduler.pollers()`` and in the runs its claims
        record (``Run.claimed_by``) alike; None: its scheduler's ``name``
        (``Scheduler(name=...)``, else ``host:pid``).
    """

    _scheduler_class = Scheduler
    _other = "rache.Scheduler (use rache.aio.AsyncDispatcher with an AsyncScheduler)"
    _pubsub: Any = None

    def run(self, *, until_idle: bool = False) -> None:
        """Run until stop(), SIGTERM or SIGINT, or (``until_idle``) until nothing is due.

        Round after round (see ``run_once``), sleeping in between until the next job is
        due. With ``until_idle``, returns after the first claim that finds fewer than
        ``batch`` jobs due (they are handed out first) once no retry waits.
        Signal handlers are installed for the run only, and only on the main thread.
        When it returns, the runs still waiting for a retry are recorded failed
        (``abandon_retries``).
        """
        self.core.stopping = False
        self.stop_signal = None
        previous = install_signals(self._on_signal)
        running = threading.Event()
        releaser = None
        if not self.finish_batch:
            running.set()
            releaser = threading.Thread(
                target=self._release_on_stop, args=(running,), name="rache-put-back", daemon=True
            )
            releaser.start()
        try:
            self._announce(force=True)
            while not self.core.stopping:
                self._beat()
                self._announce()
                try:
                    self._subscribe()
                    more = self._round()
                except TRANSIENT_ERRORS as exc:
                    if not transient(exc):  # an error reply other than out of memory
                        raise
                    self._drop_pubsub()
                    self._sleep(self.core.disconnected(exc), listen=False)
                    continue
                if until_idle and more > 0 and not self.core.pending_retries:
                    return
                if more:
                    self._sleep(more, listen=True)
        finally:
            restore_signals(previous)
            self.abandon_retries()
            if releaser is not None:
                running.clear()
                releaser.join()
            self._drop_pubsub()
            self.withdraw()

    def run_once(self) -> float:
        """One round of ``run()``: claim the jobs due now (up to ``batch``), hand each out.

        What a round of ``run()`` does, it does: the retries due are made, each job goes to
        the handler (its outcome recorded, its errors logged and counted, retried or
        ``on_error`` called), a stop() during the round (from the
        handler, another thread, a signal handler of yours) ends it after the batch in
        hand (with ``finish_batch=False``: after the handler call under way returns, the
        jobs of the batch not yet handed out put back then; only ``run()`` has a thread that
        puts them back while that call still runs), ``forget`` forgets, and the counts and
        metrics count. Like ``run()``, it clears a stop asked before it.
        It installs no signal handler, listens on no wake-up channel and never sleeps: the
        loop around it is yours (a Celery beat's ``tick`` is one round).

        Returns the seconds to wait before the next round: 0 after a full claim (more may
        be due), else until the earliest job left or retry falls due, at most
        ``max_sleep``. A Redis connection error is not raised: it returns the backoff delay
        (the outage logged once, when it begins, and once when it ends).
        """
        self.core.stopping = False
        self._beat()
        self._announce()
        try:
            return self._round()
        except TRANSIENT_ERRORS as exc:
            if not transient(exc):  # an error reply other than out of memory
                raise
            return self.core.disconnected(exc)

    def abandon_retries(self) -> int:
        """Record every run waiting for a retry failed for good; how many there were.

        ``run()`` does it when it returns (a stop); a loop of yours around ``run_once()``
        calls it when it ends, else those runs stay ``running`` (then ``unknown``).
        """
        waiting = self.core.abandon()
        for retry in waiting:
            self._finish(retry.job, self._abandoned(retry, len(waiting)))
            self._on_error(retry.job, retry.error)
        if waiting:
            logger.warning(
                "rache: stopping: %d runs waiting for a retry recorded failed", len(waiting)
            )
        return len(waiting)

    def _call(self, job: Job, attempts: int = 0) -> None:
        """Call the handler for one run (after ``attempts`` failed ones); record the outcome."""
        try:
            self.handler(job)
        except Exception as exc:
            if self.core.failed_attempt(job, attempts, exc):
                self._finish(job, exc, retrying=True)
                return
            self._finish(job, exc)
            self._on_error(job, exc)
        else:
            self.core.handled_one()
            if not self.hand_off:
                self._finish(job)

    def _finish(self, job: Job, error: Any = None, *, retrying: bool = False) -> None:
        """``finish_run`` for the run; an error recording it is logged, never raised."""
        if not self.reports:
            return
        try:
            self.scheduler.finish_run(job.occurrence_id, error, retrying=retrying)
        except Exception as exc:
            self._unreported(job, exc)

    def _on_error(self, job: Job, exc: BaseException) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(job, exc)
        except Exception as hook_exc:
            self.core.hook_failed(job, hook_exc)

    def _retry_due(self) -> None:
        """Make the retries due now, one by one (none once stopping)."""
        while (retry := self.core.next_retry()) is not None:
            self._call(retry.job, retry.attempts)

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
        BaseException from the handler), here or at once by the put-back thread. The
        retries due go first, and again between batches.
        """
        core, scheduler = self.core, self.scheduler
        self._retry_due()
        claim = self._claim()
        while (jobs := scheduler.claim_batch(claim)) is not None:
            core.took(claim, jobs)
            try:
                while (job := core.next_job()) is not None:
                    self._call(job)
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
            self._announce()
            self._retry_due()
        return core.sleep_after(claim)

    def _announce(self, force: bool = False) -> None:
        """Announce this loop as a live poller, if due (at most every few seconds).

        A failure is no reason to stop handing out jobs: a connection error is the claim's
        to meet, any other is logged once.
        """
        poller = self.core.announcement(force)
        if poller is None:
            return
        try:
            self.scheduler.announce(poller, self.core.announcer.ttl)
        except CONNECTION_ERRORS:
            return
        except Exception as exc:
            self.core.announce_failed(exc)
        else:
            self.core.announced()

    def withdraw(self) -> None:
        """Remove this loop from the live pollers at once (``run()`` does, as it returns).

        For a loop of ``run_once()`` calls (a Celery beat's close does it). Nothing if it
        never announced; an error is logged, not raised: its entry then lapses by itself.
        """
        name = self.core.announcer.withdrawn()
        if name is None:
            return
        try:
            self.scheduler.withdraw(name)
        except Exception as exc:
            logger.info("rache: could not withdraw poller %r (it lapses by itself): %s", name, exc)

    def _subscribe(self) -> None:
        if not self.wakeup or self._pubsub is not None:
            return
        factory = pubsub_factory(self)
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
            no_wakeup(self, exc)
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
            if listen:  # not in a backoff: Redis is away then
                self._announce()
            piece = min(left, _SLICE)
            if listen and self._pubsub is not None:
                try:
                    message = self._pubsub.get_message(timeout=piece)
                except CONNECTION_ERRORS:
                    self._drop_pubsub()  # resubscribed before the next claim
                    return
                except Exception as exc:  # SUBSCRIBE refused: its error is read here
                    self._drop_pubsub()
                    no_wakeup(self, exc)
                    return
                if message is not None:
                    while self._pubsub.get_message(timeout=0) is not None:
                        pass  # one claim answers every message queued
                    return
            else:
                time.sleep(piece)
