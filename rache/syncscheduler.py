"""The shells: ``Scheduler`` (sync) and ``AsyncScheduler`` (asyncio), the same methods in order.

Both only do I/O. ``encode`` builds each operation's script call and ``decode`` reads its
reply; a claim and a paged reading are flows (``rache.claim``, ``rache.pages``) that the
shells drive call by call. What they share without I/O is ``BaseScheduler``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import operator
import random
from datetime import datetime
from typing import (
    Any,
    AsyncGenerator,
    Callable,
    Generator,
    Iterable,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

import redis

from . import config, decode, encode, moves, pages, wire
from .claim import Claim as Claim  # the type claim() returns, public from here
from .constants import DEFAULT_BATCH_SIZE, DEFAULT_LEASE_MS
from .errors import LayoutMismatch, UntaggedPrefix
from .keys import SHARDS_FIELD, Keys, Layout, has_hash_tag, tagged
from .models import Exported, Job, Seconds, Stats, Time, Value
from .rules import Rule
from .scripts import Call
from .wire import decode_time

logger = logging.getLogger(__name__)

#: ``start`` of a recurring job: a Unix timestamp or an aware datetime; None for now.
Start = Any
#: A due time given as a moment: a Unix timestamp or an aware datetime (``schedule_job_at``).
When = Union[int, float, datetime]
#: An entry of ``scheduled_jobs``: an id, or ``(id, due time)`` with ``with_times``.
Entry = Any
#: Called after each batch of ``schedule_jobs`` with the number of jobs it scheduled.
Progress = Callable[[int], Any]


class BaseScheduler:
    """What both shells share, without I/O: the settings, the layout, and each claim's start.

    :param connection: a redis-py client (``decode_responses`` and protocol do not matter);
        None makes one from ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed or scheduled, or entries read, per script call.
    :param shards: how many key groups (each with a hash tag of its own) the schedule
        spreads over, so that on Redis Cluster it spreads over the nodes.
    """

    #: How long (seconds) a claim holds a cron job while its poller computes the next
    #: occurrence: a poller that dies in between delays that occurrence by this much.
    recurring_lease: float = DEFAULT_LEASE_MS / 1000

    def __init__(
        self,
        connection: Any = None,
        prefix: Optional[str] = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        shards: int = 1,
    ) -> None:
        prefix = config.prefix() if prefix is None else prefix
        Keys(prefix)  # the prefix's own errors before the other settings'
        self.batch_size = encode.batch_size(batch_size)
        #: The schedule's key groups, and which one holds a job.
        self.layout = Layout(prefix, shards)
        #: The keys of the prefix itself; ``shards``: those of each shard.
        self.keys = self.layout.keys
        self.shards = self.layout.shards
        self.connection = self._connect() if connection is None else connection
        cluster = config.is_cluster(self.connection)
        if cluster and shards == 1 and not has_hash_tag(prefix):
            raise UntaggedPrefix(prefix, tagged(prefix))
        #: The layout check (encode.layout_check), made once, before the first call: a
        #: scheduler of another shard count than the schedule's refuses to run. None when
        #: there is nothing to check.
        self._layout_check = encode.layout_check(self.layout, cluster)
        self._cluster = cluster
        self._unchecked = self._layout_check is not None

    def _connect(self) -> Any:
        raise NotImplementedError

    def _accept_layout(self, recorded: bytes) -> int:
        """Raise unless the recorded shard count (layout-2.lua's reply) is this scheduler's."""
        if int(recorded) != len(self.shards):
            raise LayoutMismatch(self.keys.prefix, int(recorded), len(self.shards))
        self._unchecked = False
        return int(recorded)

    def claim(self, reschedule_in: Optional[Seconds] = None, limit: Optional[int] = None) -> Claim:
        """Start a claim of the jobs due now: a flow of batches, for ``claim_batch``.

        Arguments are checked here; nothing is sent. A sharded schedule's claim starts at
        a shard of its own choosing, so that pollers spread over the nodes.
        """
        start = random.randrange(len(self.shards)) if len(self.shards) > 1 else 0
        lease_ms = max(1, round(self.recurring_lease * 1000))
        return Claim(
            self.layout, self.batch_size, reschedule_in, limit, start=start, lease_ms=lease_ms
        )

    def _record_layout(self, plan: moves.Reshard) -> Tuple[bytes, Optional[int]]:
        """The last step of a reshard: the layout key, and the count to record (None: delete)."""
        self._unchecked = False
        return self.layout.layout_key, None if plan.target.count == 1 else plan.target.count

    def __repr__(self) -> str:
        name = type(self).__name__
        shards = f" shards={len(self.shards)}" if len(self.shards) > 1 else ""
        connection = config.describe(self.connection)
        return f"<{name} prefix={self.keys.prefix!r}{shards} connection={connection}>"


def due_time(at: When, name: str = "at") -> Time:
    """The due time ``schedule_job_at(job_id, at)`` sets, checked as it checks ``at``; no I/O.

    For a caller that must refuse a bad time before writing anything of its own
    (``rache.rq`` saves an rq job before its rache job): the same ``TypeError`` or
    ``ValueError``, naming the argument ``name``. Unix seconds, an int when whole.
    """
    ms, _ = encode.moment(at, name)
    return decode_time(wire.time_text(ms))


def _warn_unreleased(call: Call) -> None:
    left = (len(call.args) - 4) // 3
    logger.warning(
        "rache: could not put back %d claimed jobs that were never handed out", left, exc_info=True
    )


def _warn_unevaluated(claim: Claim) -> None:
    for job, exc in claim.unevaluated:
        logger.warning(
            "rache: cannot evaluate the cron rule of job %r here; it stays leased for "
            "another poller to take up",
            job["id"],
            exc_info=(type(exc), exc, exc.__traceback__),
        )


class Scheduler(BaseScheduler):
    """A schedule of jobs in one Redis under one key prefix, over a redis-py client.

    :param connection: a ``redis.Redis`` or ``redis.RedisCluster`` client
        (``decode_responses`` and protocol do not matter); None makes one from ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed or scheduled, or entries read, per script call.
    :param shards: how many key groups the schedule spreads over (Redis Cluster).
    """

    def _connect(self) -> Any:
        return config.client(config.redis_url())

    def _run(self, call: Call) -> Any:
        if self._unchecked:
            self.check_layout()
        return self._send(call)

    def _send(self, call: Call) -> Any:
        """Make one script call, without the layout check first."""
        script, keys, args = call
        return script(self.connection, keys, args)

    def check_layout(self) -> int:
        """Check the schedule's shard count against this scheduler's (a sharded one records it).

        Done by itself before the scheduler's first call; the shard count.
        :raises LayoutMismatch: the schedule is laid out in another count (a scheduler
            without shards over a sharded schedule too).
        """
        if self._layout_check is None:
            return len(self.shards)
        return self._accept_layout(self._send(self._layout_check))

    def recorded_shards(self) -> Optional[int]:
        """The shard count the schedule under this prefix is laid out in, read without writing.

        The count a sharded schedule recorded; else 1 when an unsharded schedule holds jobs;
        else None: nothing there fixes a count yet, and a scheduler of any count may start
        (a sharded one records its own on its first call). One or two read-only script
        calls, made without the layout check (which may record a count): for a dashboard or
        a tool that must not write. Unlike ``check_layout``, it raises nothing on a mismatch.
        """
        probe = encode.layout_probe(self.layout, self._cluster)
        recorded = self._send(probe.recorded)
        if int(recorded) != 1 or probe.unsharded is None:
            return decode.recorded_shards(recorded, None)
        return decode.recorded_shards(recorded, self._send(probe.unsharded))

    def server_time(self) -> float:
        """The Redis server's clock, Unix seconds (to the microsecond): the clock of due times.

        Every due time is set and compared on this clock, not the caller's; one read-only
        script call (on Redis Cluster, to the node of the first shard), made without the
        layout check.
        """
        return decode.clock(self._send(encode.clock(self.layout)))

    def schedule_job(self, job_id: str, schedule_in: Seconds, **kwargs: Optional[Value]) -> Time:
        """Schedule ``job_id`` ``schedule_in`` seconds (or a timedelta) from now, with data.

        Scheduling a job again moves it; its data merges, and a key given as None is
        removed. Returns the due time set (Unix seconds, server clock).
        """
        call = encode.schedule(self.layout, job_id, schedule_in, kwargs)
        return decode_time(self._run(call))

    def schedule_job_at(
        self, job_id: str, at: When, *, data: Optional[Mapping[str, Optional[Value]]] = None
    ) -> Time:
        """Schedule ``job_id`` at ``at``: a Unix timestamp or an aware datetime.

        What ``schedule_job`` does, at a time rather than in a delay: one script call, the
        job moved if it was scheduled, a new run (a new occurrence id), and ``data``
        merged into its data (a key given as None is removed). ``data`` is a mapping rather
        than keywords, as every keyword of ``schedule_job`` is a data field. The due time is
        kept to the millisecond; a time in the past makes the job due at once. Returns the
        due time set.

        :raises ValueError: a naive datetime (it names no instant), or a time more than
            ``10**10`` seconds from 1970.
        """
        call = encode.schedule_at(self.layout, job_id, at, data)
        return decode_time(self._run(call))

    def schedule_recurring(
        self,
        job_id: str,
        rule: Rule,
        *,
        start: Start = None,
        data: Optional[Mapping[str, Optional[Value]]] = None,
    ) -> Time:
        """Make ``job_id`` recur on ``rule``: a :class:`rache.Every` or a :class:`rache.Cron`.

        Each occurrence is handed out once by ``pending_jobs``, carrying its own due time.
        ``start`` (a Unix timestamp or an aware datetime; default now, server clock) is the
        first occurrence of an ``Every`` rule, and where a ``Cron`` rule starts from. The
        rule's options (misfire, grace, jitter) are on the rule. ``data`` merges into the
        job's data as ``schedule_job``'s keywords do. Returns the time from which the rule
        resumes (the job's due time): a new rule's first occurrence, at which the job
        stands from now on. A cron rule without ``start`` costs one more round trip: its
        first occurrence is computed here, from the server's clock.

        :raises TypeError: ``rule`` is not an ``Every`` or a ``Cron``.
        """
        declaration = encode.schedule_recurring(self.layout, job_id, rule, start, data)
        clock = None if declaration.clock is None else self._run(declaration.clock)
        return decode_time(self._run(declaration.call(clock)))

    def schedule_jobs(
        self,
        jobs: Iterable[Tuple[Any, ...]],
        *,
        at: bool = False,
        progress: Optional[Progress] = None,
    ) -> int:
        """Schedule many jobs, ``batch_size`` of them per script call (one round trip).

        Each job is ``(job_id, schedule_in)`` or ``(job_id, schedule_in, data)``, meaning
        what ``schedule_job(job_id, schedule_in, **data)`` means; with ``at``, the second
        item is the due time itself, a Unix timestamp (kept to the millisecond), as an
        export gives it. A list or tuple is checked whole before any job is written; any
        other iterable is a stream, checked and written batch by batch in bounded memory
        (a bad job raises after the batches before its own were written). Each batch is
        atomic, the whole call is not. ``progress(n)`` is called after each batch of n jobs.
        Returns the job count.
        """
        bulk = encode.schedule_bulk(self.layout, jobs, at, self.batch_size)
        for call in bulk:
            done = self._run(call)
            if progress is not None:
                progress(int(done))
        return bulk.count

    def delete_job(self, job_id: str) -> bool:
        """Remove a job: its schedule entry, its data and its rule.

        Returns whether there was anything to remove (False for an unknown job, which is
        no error; rache 0.3.1 returned None).
        """
        return int(self._run(encode.delete(self.layout, job_id))) > 0

    def job_details(self, job_id: str) -> Job:
        """``{'id', 'schedule_at', **data}`` of a job; ``schedule_at`` is None if unscheduled.

        :raises JobNotFound: the job is neither scheduled nor has data.
        """
        call = encode.details(self.layout, job_id)
        return decode.details(job_id, self._run(call))

    def stats(self, intervals: int = 60, interval: Seconds = 60) -> Stats:
        """The schedule's figures in one snapshot (one script call per shard).

        Total, due now, lag, next due time, and how many jobs fall due in each of the next
        ``intervals`` intervals of ``interval`` seconds.
        """
        calls = encode.stats(self.layout, intervals, interval)
        length = float(calls[0].args[1])
        return decode.merged_stats([decode.stats(self._run(call), length) for call in calls])

    def claim_batch(self, claim: Claim) -> Optional[List[Job]]:
        """The next batch of ``claim`` (see ``claim()``), each job for this caller only.

        None when the claim is over. A call that fails part-way puts the batch's jobs
        back before the error is raised.
        """
        while (call := claim.next_call()) is not None:
            try:
                jobs = claim.take(self._run(call))
            except BaseException:
                self.put_back(claim)
                raise
            if claim.unevaluated:
                _warn_unevaluated(claim)
            if jobs is not None:
                return jobs
        return None

    def put_back(self, claim: Claim, handed: int = 0) -> int:
        """Put back the jobs of ``claim``'s last batch after the first ``handed``.

        For a consumer that stopped early: the jobs claimed but never handed out are due
        again as they were (a job changed since the claim is left as it is). Returns how
        many went back; an error is logged, not raised (this runs on close and cleanup).
        """
        call = claim.put_back(handed)
        if call is None:
            return 0
        try:
            return int(self._run(call))
        except Exception:
            _warn_unreleased(call)
            return 0

    def forget_jobs(self, jobs: Iterable[Any]) -> int:
        """Delete the data of jobs handed out, unless they are scheduled again; how many went.

        Each of ``jobs`` is a job id or a :class:`Job` as a claim handed it out. A job in
        the schedule (rescheduled, recurring, or scheduled anew by anyone since) keeps its
        data: each script call reads the schedule and deletes in one atomic step, so no
        write in between is lost. For one-shot jobs that leave nothing behind (a
        Dispatcher's ``forget=True``). Every id is checked before anything is sent; one
        call per shard and ``batch_size`` jobs. Returns the count of jobs whose data went.
        """
        return sum(
            len(self._run(call)) for call in encode.forget_jobs(self.layout, jobs, self.batch_size)
        )

    def pending_jobs(
        self, reschedule_in: Optional[Seconds] = None, limit: Optional[int] = None
    ) -> Generator[Job, None, None]:
        """Claim the jobs due now, earliest first, as ``{'id': ..., **data}`` dicts.

        Each is removed from the schedule (its data stays), or with ``reschedule_in``
        rescheduled that many seconds from now, in the same atomic step that hands it out:
        no job goes to two pollers. Claims go by batches as the generator is consumed; jobs
        of a batch that it never hands out (the consumer stopped) are put back.
        """
        return self._pending(self.claim(reschedule_in, limit))

    def _pending(self, claim: Claim) -> Generator[Job, None, None]:
        jobs: Optional[List[Job]] = None
        handing: Any = None  # over the jobs of the batch in hand
        try:
            while True:
                jobs = None  # a batch that fails puts itself back
                jobs = self.claim_batch(claim)
                if jobs is None:
                    return
                handing = iter(jobs)
                yield from handing
        finally:  # closed early: what the iterator still holds was never handed out
            if jobs is not None:
                self.put_back(claim, len(jobs) - operator.length_hint(handing))

    def scheduled_jobs(self, with_times: bool = False) -> Generator[Entry, None, None]:
        """Every scheduled job id, earliest first, or ``(id, due time)`` with ``with_times``.

        Reads the schedule in pages of ``batch_size``. A job rescheduled while the iteration
        runs may come twice or not at all; every other job comes exactly once.
        """
        return self._read(pages.scheduled(self.layout, self.batch_size, bool(with_times)))

    def recurring_jobs(self) -> Generator[Any, None, None]:
        """The id of every recurring job, shard by shard, in no particular order.

        One script call per shard reads all its recurring ids (a rule is short); ids come as
        ``scheduled_jobs`` gives them (str, or bytes when not UTF-8).
        """
        return self._recurring()

    def _recurring(self) -> Generator[Any, None, None]:
        for call in encode.recurring_jobs(self.layout):
            yield from decode.ids(self._run(call))

    def export_jobs(self) -> Generator[Exported, None, None]:
        """Every scheduled job with all it has, earliest first: ``(job_id, due, data, run, rule)``.

        A page of ``batch_size`` jobs per script call; ``schedule_jobs(..., at=True)`` takes
        the tuples (:class:`~rache.Exported`) back, so this copies a schedule between two
        Redis servers or prefixes: each copy keeps its due time, data, run (its
        ``occurrence_id``) and recurrence rule.
        """
        return self._read(pages.exported(self.layout, self.batch_size))

    def orphaned_jobs(self, delete: bool = False) -> Generator[Any, None, None]:
        """The ids of jobs that have data and no schedule entry; with ``delete``, deleted too.

        Such data stays after a claim without ``reschedule_in`` (rache 0.3.1 kept it, for a
        worker to schedule the job again). The job hashes are listed with SCAN,
        ``batch_size`` at a time, and each page goes to one script call that checks each
        id's schedule entry and deletes in the same atomic step: a job scheduled again
        meanwhile keeps its data. Ids come as ``scheduled_jobs`` gives them.

        :raises ConfigurationError: this Redis user may not SCAN.
        """
        return self._orphans(bool(delete))

    def _orphans(self, delete: bool) -> Generator[Any, None, None]:
        size = self.batch_size
        for keys in self.shards:
            self._can_scan(keys, "orphans")
            found = self.connection.scan_iter(match=moves.pattern(keys), count=size)
            while page := list(itertools.islice(found, size)):
                call = encode.forget(keys, moves.raw_ids(keys, page), delete)
                yield from decode.ids(self._run(call))

    def reshard(self) -> int:
        """Move the schedule under this scheduler's prefix to its shard count; the jobs moved.

        The count the schedule is laid out in is read from Redis; every job whose shard
        changes is moved with all it has, scheduled or not: its due time and data to the
        byte, its run (the same ``occurrence_id``) and its recurrence rule. Stop the
        pollers and writers of the schedule first: a job is copied, then removed from its
        old place, not in one atomic step. Safe to run again after a failure (a copy is the
        same job, not a second one); the new count is recorded last, so until it is,
        schedulers of the old count still start. This scheduler may be used afterwards.

        :raises ConfigurationError: this Redis user may not SCAN (nothing was moved).
        """
        recorded = int(self._send(encode.layout_probe(self.layout, self._cluster).recorded))
        plan = moves.Reshard(self.layout, recorded, self.batch_size)
        if not plan.needed:
            return 0
        for keys in plan.source.shards:  # SCAN refused (an ACL): say so before moving anything
            self._can_scan(keys, "reshard")
        for keys in plan.source.shards:
            self._drive(plan.scheduled(keys))
            found = self.connection.scan_iter(match=moves.pattern(keys), count=1000)
            while page := list(itertools.islice(found, self.batch_size)):
                self._drive(plan.unscheduled(keys, page))
        key, count = self._record_layout(plan)
        if count is None:
            self.connection.delete(key)
        else:
            self.connection.hset(key, SHARDS_FIELD, count)
        return plan.moved

    def _drive(self, flow: moves.Flow) -> None:
        while (call := flow.next_call()) is not None:
            flow.take(self._send(call))

    def _can_scan(self, keys: Keys, what: str) -> None:
        try:
            self.connection.scan(0, match=moves.pattern(keys), count=1)
        except redis.exceptions.NoPermissionError as error:
            raise moves.scan_refused(what, error) from None

    def _read(self, flow: pages.Flow) -> Generator[Any, None, None]:
        while (call := flow.next_call()) is not None:
            yield from flow.take(self._run(call))


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
        import redis.asyncio

        url = config.redis_url()
        config.client(url)  # the same clear error for a bad REDIS_URL; connects nowhere
        return redis.asyncio.Redis.from_url(url)

    async def _run(self, call: Call) -> Any:
        if self._unchecked:
            await self.check_layout()
        return await self._send(call)

    async def _send(self, call: Call) -> Any:
        """Make one script call, without the layout check first."""
        script, keys, args = call
        return await script.run_async(self.connection, keys, args)

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

    async def stats(self, intervals: int = 60, interval: Seconds = 60) -> Stats:
        """The schedule's figures in one snapshot. See :meth:`Scheduler.stats`."""
        calls = encode.stats(self.layout, intervals, interval)
        length = float(calls[0].args[1])
        return decode.merged_stats([decode.stats(await self._run(call), length) for call in calls])

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
            if claim.unevaluated:
                _warn_unevaluated(claim)
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
        except Exception:
            _warn_unreleased(call)
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
