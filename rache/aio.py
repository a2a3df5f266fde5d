"""The asyncio shell: ``AsyncScheduler`` and async twins of the module-level functions.

The same scripts and the same codec as the sync ``Scheduler`` (both build their calls in
``_BaseScheduler``); only the calls are awaited. ``pending_jobs`` and ``scheduled_jobs``
return async generators::

    async for job in rache.aio.pending_jobs(reschedule_in=60):
        ...

Cancellation: a task cancelled while it awaits a claim does not lose the batch. The claim
runs on (Redis has it already), and once its reply is in, its jobs are put back as they
were, in the background. If the event loop stops first, the batch is lost as a dead
worker's would be: gone without ``reschedule_in``, due again after N seconds with it.
An ``async for`` left early puts the rest of its batch back when the generator is closed:
at once with ``contextlib.aclosing`` (or ``await jobs.aclose()``), else when the event loop
finalizes it.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any, AsyncGenerator, Iterable, List, Mapping, Optional, Set, Tuple

import redis.asyncio

from . import codec, config, recurrence
from .codec import Args, Job, Keys
from .scheduler import Call, _BaseScheduler, _warn_unreleased
from .scripts import ADVANCE, CLAIM, DELETE, DETAILS, RELEASE, Script

__all__ = [
    "AsyncDispatcher",
    "AsyncScheduler",
    "delete_job",
    "export_jobs",
    "job_details",
    "pending_jobs",
    "schedule_job",
    "schedule_jobs",
    "schedule_recurring",
    "scheduled_jobs",
    "stats",
]


class AsyncScheduler(_BaseScheduler):
    """A schedule of jobs in one Redis under one key prefix, over a redis.asyncio client.

    :param connection: a ``redis.asyncio.Redis`` client (``decode_responses`` and protocol
        do not matter; its pool may be shared by many tasks); None makes one from
        ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed or scheduled, or entries read, per script call.
    """

    #: put-backs running after a cancellation (kept here, or the loop could drop them)
    _background: Optional[Set[asyncio.Future[Any]]] = None

    def _connect(self) -> Any:
        url = config.redis_url()
        config.client(url)  # the same clear error for a bad REDIS_URL; connects nowhere
        return redis.asyncio.Redis.from_url(url)

    async def _run(self, call: Call) -> Any:
        script, keys, args = call
        return await script.run_async(self.connection, keys, args)

    async def _checked_run(self, call: Call) -> Any:
        assert self._layout is not None
        self._check_layout(await AsyncScheduler._run(self, self._layout))
        return await AsyncScheduler._run(self, call)

    async def schedule_job(self, job_id: str, schedule_in: Any, **kwargs: Any) -> None:
        """Schedule ``job_id`` ``schedule_in`` seconds (or a timedelta) from now, with data.

        See :meth:`rache.Scheduler.schedule_job`.
        """
        await self._run(self._schedule(job_id, schedule_in, kwargs))

    async def schedule_recurring(
        self,
        job_id: str,
        *,
        every: Any = None,
        cron: Optional[str] = None,
        timezone: str = "UTC",
        misfire: str = recurrence.DEFAULT_MISFIRE,
        grace: Any = recurrence.DEFAULT_GRACE_MS / 1000,
        jitter: Any = 0,
        start: Any = None,
        data: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Make ``job_id`` recur. See :meth:`rache.Scheduler.schedule_recurring`."""
        await self._run(
            self._schedule_recurring(
                job_id, every, cron, timezone, misfire, grace, jitter, start, data
            )
        )

    async def schedule_jobs(self, jobs: Iterable[Tuple[Any, ...]], *, at: bool = False) -> int:
        """Schedule many ``(job_id, schedule_in[, data])`` jobs in batches; the job count.

        See :meth:`rache.Scheduler.schedule_jobs`.
        """
        calls, count = self._bulk(jobs, at)
        for call in calls:
            await self._run(call)
        return count

    async def stats(self, intervals: int = 60, interval: float = 60) -> codec.Stats:
        """The schedule's figures in one snapshot. See :meth:`rache.Scheduler.stats`."""
        replies = [await self._run(call) for call in self._stats(intervals, interval)]
        return codec.merge_stats([codec.parse_stats(reply, interval) for reply in replies])

    def pending_jobs(
        self, reschedule_in: Any = None, limit: Optional[int] = None
    ) -> AsyncGenerator[Job, None]:
        """Claim the due jobs, each for this caller only: an async generator.

        Arguments are checked here, at the call. See :meth:`rache.Scheduler.pending_jobs`.
        """
        return self._pending(self._claim_of(reschedule_in, limit))

    async def _pending(self, claim: codec.Claim) -> AsyncGenerator[Job, None]:
        jobs: List[Job] = []
        given = 0
        try:
            while (args := claim.next_args()) is not None:
                jobs, given = [], 0
                jobs = await self._claim_batch(claim, args)
                for job in jobs:
                    given += 1
                    yield job
        finally:
            putting_back = self._release(claim, len(jobs) - given)
            if putting_back is not None:
                # Shielded, as a claim is: a cancellation while the put-back is awaited
                # (a timeout around aclose(), a second cancel) must not drop it.
                await asyncio.shield(putting_back)

    async def _claim_batch(self, claim: codec.Claim, args: Args) -> List[Job]:
        """One batch of ``claim``: the claim script, then the advance of its cron jobs.

        Both calls are shielded: a cancellation puts their jobs back, never loses them.
        """
        jobs = claim.take(await self._claim(args, claim.keys))
        if (advance := claim.advance_args()) is not None:
            try:
                reply = await self._advance(claim, advance)
            except asyncio.CancelledError:
                raise  # the advance runs on: its done callback puts back the batch
            except BaseException:  # the batch's other jobs were claimed: put them back
                putting_back = self._release(claim, len(claim.unadvanced()))
                if putting_back is not None:
                    await asyncio.shield(putting_back)
                raise
            jobs = claim.advanced(reply)
        return jobs

    def _release(self, claim: codec.Claim, left: int) -> Optional[asyncio.Future[None]]:
        """Put back the ``left`` jobs of ``claim``'s batch never handed out, in the background."""
        release = claim.release_args(left)
        return None if release is None else self._in_background(release, left, claim.keys)

    async def _claim(self, args: Args, keys: Keys) -> Any:
        """One claim call that a cancellation cannot lose: its jobs then go back."""
        call = asyncio.ensure_future(self._run(self._on_rules(CLAIM, args, keys)))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(functools.partial(self._put_back, keys))
            raise

    async def _advance(self, claim: codec.Claim, args: Args) -> Any:
        """The advance of a batch's cron jobs, which a cancellation cannot lose either."""
        keys = claim.keys
        call = asyncio.ensure_future(self._run(self._on_rules(ADVANCE, args, keys)))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(lambda done: self._put_back_advanced(claim, keys, done))
            raise

    def _put_back_advanced(self, claim: codec.Claim, keys: Keys, call: asyncio.Future[Any]) -> None:
        """Done callback of an advance whose caller was cancelled: release what it held.

        Its cron jobs, if the advance failed, stay leased for the next claim to take up.
        """
        if call.cancelled() or call.exception() is not None:
            jobs = claim.unadvanced()
        else:
            jobs = claim.advanced(call.result())
        release = claim.release_args(len(jobs))
        if release is not None:
            self._in_background(release, len(jobs), keys)

    def _put_back(self, keys: Keys, call: asyncio.Future[Any]) -> None:
        """Done callback of a claim whose caller was cancelled: release all it claimed."""
        if call.cancelled() or call.exception() is not None:
            return  # no reply: nothing known to put back
        batch = codec.parse_claim(call.result())
        release = codec.release_args(keys, batch, 0)
        if release is not None:
            self._in_background(release, len(batch.jobs), keys)

    def _in_background(self, args: Args, count: int, keys: Keys) -> asyncio.Future[None]:
        """Put back ``count`` jobs in a task of its own, kept until done."""
        task = asyncio.ensure_future(self._release_quietly(args, count, keys))
        if self._background is None:
            self._background = set()
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _release_quietly(self, args: Args, count: int, keys: Keys) -> None:
        try:
            await self._run(self._on_rules(RELEASE, args, keys))
        except Exception:
            _warn_unreleased(count)

    async def delete_job(self, job_id: str) -> None:
        """Remove a job and its data. See :meth:`rache.Scheduler.delete_job`."""
        await self._run(self._on_job(DELETE, job_id))

    async def job_details(self, job_id: str) -> Job:
        """A job's id, due time and data. See :meth:`rache.Scheduler.job_details`."""
        return codec.parse_details(job_id, await self._run(self._on_job(DETAILS, job_id)))

    def scheduled_jobs(self, with_times: bool = False) -> AsyncGenerator[Any, None]:
        """Every scheduled job id, or (id, due time): an async generator.

        See :meth:`rache.Scheduler.scheduled_jobs`.
        """
        return self._scheduled(*self._pages(bool(with_times)))

    async def _scheduled(self, script: Script, pages: Any) -> AsyncGenerator[Any, None]:
        if isinstance(pages, codec.Merged):
            while True:
                while (call := pages.next_call()) is not None:
                    pages.take(await self._run(self._on_queue(script, call[1], call[0])))
                items = pages.items()
                if not items:
                    return
                for item in items:
                    yield item
        while (args := pages.next_args()) is not None:
            for item in pages.take(await self._run(self._on_queue(script, args, self.shards[0]))):
                yield item

    def export_jobs(self) -> AsyncGenerator[Tuple[Any, Any, Job], None]:
        """Every scheduled job as ``(job_id, due time, data)``: an async generator.

        See :meth:`rache.Scheduler.export_jobs`.
        """
        return self._scheduled(*self._exports())


#: The default scheduler of each event loop (a redis.asyncio client belongs to one loop).
_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncScheduler] = (
    weakref.WeakKeyDictionary()
)


def _scheduler(connection: Any = None) -> AsyncScheduler:
    """The running loop's default AsyncScheduler, or one over ``connection``."""
    if connection is not None:
        return AsyncScheduler(connection)
    loop = asyncio.get_running_loop()
    scheduler = _defaults.get(loop)
    if scheduler is None:
        scheduler = _defaults[loop] = AsyncScheduler()
    return scheduler


async def schedule_job(
    job_id: str, schedule_in: Any, connection: Any = None, **kwargs: Any
) -> None:
    """Schedule ``job_id`` in ``schedule_in`` seconds, attaching ``kwargs``."""
    await _scheduler(connection).schedule_job(job_id, schedule_in, **kwargs)


async def schedule_recurring(job_id: str, connection: Any = None, **rule: Any) -> None:
    """Make ``job_id`` recur (``every=`` or ``cron=``, ...), as Scheduler.schedule_recurring."""
    await _scheduler(connection).schedule_recurring(job_id, **rule)


async def schedule_jobs(
    jobs: Iterable[Tuple[Any, ...]], connection: Any = None, *, at: bool = False
) -> int:
    """Schedule many ``(job_id, schedule_in[, data])`` jobs in batches; the job count."""
    return await _scheduler(connection).schedule_jobs(jobs, at=at)


def export_jobs(connection: Any = None) -> AsyncGenerator[Tuple[Any, Any, Job], None]:
    """Every job as ``(job_id, due time, data)`` (call it inside a running loop)."""
    return _scheduler(connection).export_jobs()


async def stats(intervals: int = 60, interval: float = 60, connection: Any = None) -> codec.Stats:
    """The schedule's figures in one snapshot."""
    return await _scheduler(connection).stats(intervals, interval)


def pending_jobs(
    reschedule_in: Any = None, limit: Optional[int] = None, connection: Any = None
) -> AsyncGenerator[Job, None]:
    """Claim the due jobs, each for this caller only (call it inside a running loop)."""
    return _scheduler(connection).pending_jobs(reschedule_in, limit)


async def delete_job(job_id: str, connection: Any = None) -> None:
    """Remove a job and its data."""
    await _scheduler(connection).delete_job(job_id)


async def job_details(job_id: str, connection: Any = None) -> Job:
    """A job's id, due time and data."""
    return await _scheduler(connection).job_details(job_id)


def scheduled_jobs(with_times: bool = False, connection: Any = None) -> AsyncGenerator[Any, None]:
    """Every scheduled job id, or (id, due time) (call it inside a running loop)."""
    return _scheduler(connection).scheduled_jobs(with_times)


from .dispatch import AsyncDispatcher  # noqa: E402  (it builds on AsyncScheduler, above)
