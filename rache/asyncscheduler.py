"""The asyncio shell: ``AsyncScheduler``, the twin of ``Scheduler`` over a redis.asyncio client.

The same methods in the same order as ``rache.syncscheduler.Scheduler``
(tests/unit/test_twins.py), each awaited; what differs is only how the I/O is waited for,
and that a claim outlives a cancelled task (its jobs go back in the background).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, AsyncGenerator, Iterable, List, Mapping, Optional, Set, Tuple

import redis

from . import config, decode, encode, moves, pages
from . import health as health_rules
from .arguments import raw_id
from .basescheduler import (
    BaseScheduler,
    Entry,
    Progress,
    Start,
    When,
    warn_batch,
    warn_unreleased,
)
from .claim import Claim
from .constants import (
    DEFAULT_FAILED_IN_A_ROW,
    DEFAULT_LATE,
    DEFAULT_STALE_PERIODS,
    MAX_HISTORY,
    POLLER_TTL,
)
from .keys import SHARDS_FIELD, Keys
from .models import Error, Exported, Health, Job, Poller, Run, Seconds, SetAside, Stats, Time, Value
from .rules import Rule
from .scripts import Call
from .wire import decode_time


class AsyncScheduler(BaseScheduler):
    """A schedule of jobs in one Redis under one key prefix, over a redis.asyncio client.

    The twin of :class:`Scheduler`, its methods awaited (``pending_jobs``,
    ``scheduled_jobs`` and ``export_jobs`` return async generators). A task cancelled
    while it awaits a claim loses nothing: the claim runs on, and its jobs go back in the
    background once its reply is in.

    :param connection: a ``redis.asyncio.Redis`` or ``RedisCluster`` client (its pool may
        be shared by many tasks); None makes one from ``REDIS_URL``.
    """

    #: put-backs running in the background (kept here, or the loop could drop them)
    _background: Optional[Set[asyncio.Future[Any]]] = None

    def _connect(self) -> Any:
        return config.async_client(config.redis_url(), self.call_record_ttl)

    async def _run(self, call: Call) -> Any:
        if self._unchecked:
            await self.check_layout()
        return await self._send(call)

    async def _send(self, call: Call) -> Any:
        """Make one script call, without the layout check first."""
        script, keys, args = call
        return await script.run_async(self.connection, keys, args, self._record_ms)

    async def check_layout(self) -> int:
        """Check the schedule's shard count. See :meth:`Scheduler.check_layout`."""
        if self._layout_check is None:
            return len(self.shards)
        return self._accept_layout(await self._send(self._layout_check))

    async def recorded_shards(self) -> Optional[int]:
        """The shard count the schedule records. See :meth:`Scheduler.recorded_shards`."""
        probe = encode.layout_probe(self.layout, self._cluster)
        recorded = await self._send(probe.recorded)
        if int(recorded) != 1 or probe.unsharded is None:
            return decode.recorded_shards(recorded, None)
        return decode.recorded_shards(recorded, await self._send(probe.unsharded))

    async def server_time(self) -> float:
        """The Redis server's clock, Unix seconds. See :meth:`Scheduler.server_time`."""
        return decode.clock(await self._send(encode.clock(self.layout)))

    async def schedule_job(
        self, job_id: str, schedule_in: Seconds, **kwargs: Optional[Value]
    ) -> Time:
        """Schedule ``job_id`` ``schedule_in`` from now. See :meth:`Scheduler.schedule_job`."""
        call = encode.schedule(self.layout, job_id, schedule_in, kwargs)
        return decode_time(await self._run(call))

    async def schedule_job_at(
        self, job_id: str, at: When, *, data: Optional[Mapping[str, Optional[Value]]] = None
    ) -> Time:
        """Schedule ``job_id`` at ``at``. See :meth:`Scheduler.schedule_job_at`."""
        call = encode.schedule_at(self.layout, job_id, at, data)
        return decode_time(await self._run(call))

    async def schedule_recurring(
        self,
        job_id: str,
        rule: Rule,
        *,
        start: Start = None,
        data: Optional[Mapping[str, Optional[Value]]] = None,
    ) -> Time:
        """Make ``job_id`` recur on ``rule``. See :meth:`Scheduler.schedule_recurring`."""
        declaration = encode.schedule_recurring(self.layout, job_id, rule, start, data)
        clock = None if declaration.clock is None else await self._run(declaration.clock)
        return decode_time(await self._run(declaration.call(clock)))

    async def schedule_jobs(
        self,
        jobs: Iterable[Tuple[Any, ...]],
        *,
        at: bool = False,
        progress: Optional[Progress] = None,
    ) -> int:
        """Schedule many jobs in batches; the job count. See :meth:`Scheduler.schedule_jobs`."""
        bulk = encode.schedule_bulk(self.layout, jobs, at, self.batch_size)
        for call in bulk:
            done = await self._run(call)
            if progress is not None:
                progress(int(done))
        return bulk.count

    async def delete_job(self, job_id: str) -> bool:
        """Remove a job; whether it existed. See :meth:`Scheduler.delete_job`."""
        return int(await self._run(encode.delete(self.layout, job_id))) > 0

    async def job_details(self, job_id: str) -> Job:
        """A job's id, due time and data. See :meth:`Scheduler.job_details`."""
        call = encode.details(self.layout, job_id)
        return decode.details(job_id, await self._run(call))

    async def finish_run(
        self, occurrence_id: str, error: Optional[Error] = None, *, retrying: bool = False
    ) -> bool:
        """Record a run's outcome; False if unknown. See :meth:`Scheduler.finish_run`."""
        for call in encode.finish_run(self.layout, occurrence_id, error, retrying):
            if int(await self._run(call)):
                return True
        return False

    async def runs(self, job_id: str) -> List[Run]:
        """A job's runs, newest first. See :meth:`Scheduler.runs`."""
        call = encode.runs(self.layout, job_id, MAX_HISTORY)
        return decode.runs(raw_id(job_id), await self._run(call))

    async def failures(self, limit: Optional[int] = None) -> List[Run]:
        """The recent failed runs, newest first. See :meth:`Scheduler.failures`."""
        calls = encode.failures(self.layout, limit)
        return decode.failures([await self._run(call) for call in calls], limit)

    async def stats(self, intervals: int = 60, interval: Seconds = 60) -> Stats:
        """The schedule's figures in one snapshot. See :meth:`Scheduler.stats`."""
        calls = encode.stats(self.layout, intervals, interval)
        length = float(calls[0].args[1])
        return decode.merged_stats([decode.stats(await self._run(call), length) for call in calls])

    async def announce(self, poller: Poller, ttl: Seconds = POLLER_TTL) -> float:
        """List ``poller`` as live for ``ttl`` seconds. See :meth:`Scheduler.announce`."""
        return int(await self._run(encode.announce(self.layout, poller, ttl))) / 1000

    async def withdraw(self, name: str) -> bool:
        """Remove the poller ``name`` now. See :meth:`Scheduler.withdraw`."""
        return int(await self._run(encode.withdraw(self.layout, name))) > 0

    async def pollers(self) -> List[Poller]:
        """The live pollers, by name. See :meth:`Scheduler.pollers`."""
        return decode.pollers(await self._send(encode.pollers(self.layout)))

    async def health(
        self,
        late: Seconds = DEFAULT_LATE,
        *,
        stale_periods: int = DEFAULT_STALE_PERIODS,
        failed_in_a_row: int = DEFAULT_FAILED_IN_A_ROW,
    ) -> Health:
        """The schedule's verdict. See :meth:`Scheduler.health`."""
        threshold = health_rules.late_threshold(late)
        checks = health_rules.Checks.of(stale_periods, failed_in_a_row)
        figures = await self.stats(intervals=0)
        found = await self.pollers()
        oldest = await self._oldest() if health_rules.is_late(figures, threshold) else None
        judged: List[health_rules.Judged] = []
        unexamined = 0
        if checks.stale_periods or checks.failed_in_a_row:
            ids, unexamined = health_rules.examined([job async for job in self._recurring()])
            for call in encode.recurring_runs(self.layout, ids, checks.runs):
                reply = await self._run(call)
                readings = decode.recurring_runs(encode.recurring_ids(call), reply)
                judged += health_rules.judge_all(readings, checks.stale_periods)
        return health_rules.verdict(
            figures,
            found,
            late=threshold,
            oldest=oldest,
            judged=judged,
            checks=checks,
            unexamined=unexamined,
        )

    async def _oldest(self) -> Any:
        """The id of the earliest due job (one page of one entry per shard)."""
        flow = pages.scheduled(self.layout, 1, False)
        while (call := flow.next_call()) is not None:
            entries = flow.take(await self._run(call))
            if entries:
                return entries[0]
        return None

    async def bad_rules(self) -> List[SetAside]:
        """The jobs set aside, their rule not parsing. See :meth:`Scheduler.bad_rules`."""
        calls = encode.set_aside(self.layout)
        replies = [decode.stats(await self._run(call), 60.0) for call in calls]
        return [job for figures in replies for job in figures.set_aside]

    async def claim_batch(self, claim: Claim) -> Optional[List[Job]]:
        """The next batch of ``claim``; None when it is over. See :meth:`Scheduler.claim_batch`.

        Each call is shielded: a task cancelled while awaiting one loses nothing, for once
        the reply is in, the batch goes back in the background.
        """
        while (call := claim.next_call()) is not None:
            running = asyncio.ensure_future(self._run(call))
            try:
                reply = await asyncio.shield(running)
            except asyncio.CancelledError:
                running.add_done_callback(functools.partial(self._put_back_late, claim))
                raise
            except BaseException:
                await self.put_back(claim)
                raise
            jobs = claim.take(reply)
            warn_batch(claim)
            if jobs is not None:
                return jobs
        return None

    async def put_back(self, claim: Claim, handed: int = 0) -> int:
        """Put back the batch's jobs after the first ``handed``. See :meth:`Scheduler.put_back`.

        Shielded: a cancellation while it is awaited (a timeout around ``aclose()``, a
        second cancel) does not stop it.
        """
        call = claim.put_back(handed)
        if call is None:
            return 0
        return await asyncio.shield(self._in_background(call))

    def _put_back_late(self, claim: Claim, running: asyncio.Future[Any]) -> None:
        """Done callback of a call whose caller was cancelled: put back what it claimed.

        A claim that failed claimed nothing; an advance that failed leaves its cron jobs
        leased, for the next claim after the lease to take up.
        """
        if not running.cancelled() and running.exception() is None:
            claim.take(running.result())
        call = claim.put_back()
        if call is not None:
            self._in_background(call)

    def _in_background(self, call: Call) -> asyncio.Future[int]:
        """Run a put-back in a task of its own, kept until done."""
        task = asyncio.ensure_future(self._put_back_quietly(call))
        if self._background is None:
            self._background = set()
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _put_back_quietly(self, call: Call) -> int:
        try:
            return int(await self._run(call))
        except Exception as error:
            warn_unreleased(call, error)
            return 0

    async def forget_jobs(self, jobs: Iterable[Any]) -> int:
        """Delete the data of jobs handed out, unless scheduled again; how many went.

        See :meth:`Scheduler.forget_jobs`.
        """
        calls = encode.forget_jobs(self.layout, jobs, self.batch_size)
        return sum([len(await self._run(call)) for call in calls])

    def pending_jobs(
        self, reschedule_in: Optional[Seconds] = None, limit: Optional[int] = None
    ) -> AsyncGenerator[Job, None]:
        """Claim the due jobs, each for this caller only: an async generator.

        Arguments are checked here, at the call. See :meth:`Scheduler.pending_jobs`.
        """
        return self._pending(self.claim(reschedule_in, limit))

    async def _pending(self, claim: Claim) -> AsyncGenerator[Job, None]:
        batch: Optional[List[Job]] = None
        handed = 0
        try:
            while True:
                # A batch whose call fails puts itself back; one whose caller is cancelled
                # meanwhile goes back once its reply is in (claim_batch sees to both).
                batch = None
                batch = await self.claim_batch(claim)
                if batch is None:
                    return
                handed = 0
                for job in batch:
                    handed += 1
                    yield job
        finally:
            if batch is not None:
                await self.put_back(claim, handed)

    def scheduled_jobs(self, with_times: bool = False) -> AsyncGenerator[Entry, None]:
        """Every scheduled job id, or (id, due time): an async generator.

        See :meth:`Scheduler.scheduled_jobs`.
        """
        return self._read(pages.scheduled(self.layout, self.batch_size, bool(with_times)))

    def recurring_jobs(self) -> AsyncGenerator[Any, None]:
        """The id of every recurring job: an async generator.

        See :meth:`Scheduler.recurring_jobs`.
        """
        return self._recurring()

    async def _recurring(self) -> AsyncGenerator[Any, None]:
        for call in encode.recurring_jobs(self.layout):
            for job_id in decode.ids(await self._run(call)):
                yield job_id

    def export_jobs(self) -> AsyncGenerator[Exported, None]:
        """Every scheduled job with all it has: an async generator.

        See :meth:`Scheduler.export_jobs`.
        """
        return self._read(pages.exported(self.layout, self.batch_size))

    def orphaned_jobs(self, delete: bool = False) -> AsyncGenerator[Any, None]:
        """The ids of jobs with data and no schedule entry: an async generator.

        See :meth:`Scheduler.orphaned_jobs`.
        """
        return self._orphans(bool(delete))

    async def _orphans(self, delete: bool) -> AsyncGenerator[Any, None]:
        for keys in self.shards:
            await self._can_scan(keys, "orphans")
            async for page in self._scan(keys, self.batch_size):
                call = encode.forget(keys, moves.raw_ids(keys, page), delete)
                for job_id in decode.ids(await self._run(call)):
                    yield job_id

    async def reshard(self) -> int:
        """Move the schedule to this scheduler's shard count. See :meth:`Scheduler.reshard`."""
        recorded = int(await self._send(encode.layout_probe(self.layout, self._cluster).recorded))
        plan = moves.Reshard(self.layout, recorded, self.batch_size)
        if not plan.needed:
            return 0
        for keys in plan.source.shards:
            await self._can_scan(keys, "reshard")
        for keys in plan.source.shards:
            await self._drive(plan.scheduled(keys))
            async for page in self._scan(keys, 1000):
                await self._drive(plan.unscheduled(keys, page))
        key, count = self._record_layout(plan)
        if count is None:
            await self.connection.delete(key)
        else:
            await self.connection.hset(key, SHARDS_FIELD, count)
        return plan.moved

    async def _drive(self, flow: moves.Flow) -> None:
        while (call := flow.next_call()) is not None:
            flow.take(await self._send(call))

    async def _scan(self, keys: Keys, count: int) -> AsyncGenerator[List[Any], None]:
        """The job hashes under ``keys`` (SCAN), in pages of up to ``batch_size``."""
        page: List[Any] = []
        async for key in self.connection.scan_iter(match=moves.pattern(keys), count=count):
            page.append(key)
            if len(page) == self.batch_size:
                yield page
                page = []
        if page:
            yield page

    async def _can_scan(self, keys: Keys, what: str) -> None:
        try:
            await self.connection.scan(0, match=moves.pattern(keys), count=1)
        except redis.exceptions.NoPermissionError as error:
            raise moves.scan_refused(what, error) from None

    async def _read(self, flow: pages.Flow) -> AsyncGenerator[Any, None]:
        while (call := flow.next_call()) is not None:
            for entry in flow.take(await self._run(call)):
                yield entry
