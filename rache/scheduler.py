"""The shells over the sans-IO codec: the part both share, and the synchronous Scheduler.

Each operation is built once here, as the script call to make (``_BaseScheduler``); the
sync shell below and the asyncio one (``rache.aio``) only make the calls, so that a rule
never exists twice.
"""

from __future__ import annotations

import logging
import operator
import random
import re
import sys
from typing import Any, Dict, Generator, Iterable, Iterator, List, Mapping, Optional, Tuple

import redis

from . import codec, config, recurrence
from .codec import Args, Job, Keys
from .constants import DEFAULT_BATCH_SIZE
from .errors import ConfigurationError
from .scripts import (
    ADVANCE,
    CLAIM,
    DELETE,
    DELETE_BULK,
    DETAILS,
    EXPORT,
    LAYOUT,
    PAGE,
    RELEASE,
    RESTORE_BULK,
    SCHEDULE,
    SCHEDULE_BULK,
    SCHEDULE_RECURRING,
    STATS,
    Script,
)

logger = logging.getLogger(__name__)

#: One script call: the script, its keys and its arguments.
Call = Tuple[Script, List[bytes], Args]


class _BaseScheduler:
    """What the sync and asyncio schedulers share: settings, keys, and every call to make.

    :param connection: a redis-py client (``decode_responses`` and protocol do not matter);
        None makes one from ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed or scheduled, or entries read, per script call.
    :param shards: how many key groups (each with a hash tag of its own) the schedule
        spreads over, so that on Redis Cluster it spreads over the nodes.
    """

    #: The call that records or checks a sharded schedule's layout, on first use.
    _layout: Optional[Call] = None
    #: How long (seconds) a claim holds a cron job while its poller computes the next
    #: occurrence: a poller that dies in between delays that occurrence by this much.
    recurring_lease: float = recurrence.DEFAULT_LEASE_MS / 1000

    def __init__(
        self,
        connection: Any = None,
        prefix: Optional[str] = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        shards: int = 1,
    ) -> None:
        prefix = config.prefix() if prefix is None else prefix
        #: The schedule's key prefix, as given (each shard's keys add a hash tag to it).
        self.keys = Keys(prefix)
        self.batch_size = codec.check_batch_size(batch_size)
        codec.check_shards(shards)
        try:
            #: The keys of each shard: the prefix's own keys for an unsharded schedule.
            self.shards = [Keys(p) for p in codec.shard_prefixes(prefix, shards)]
        except ValueError as exc:  # a hash tag in the prefix of a sharded schedule
            raise ConfigurationError(str(exc)) from None
        self.connection = self._connect() if connection is None else connection
        cluster = _is_cluster(self.connection)
        if cluster and shards == 1 and not codec.has_hash_tag(prefix):
            raise ConfigurationError(
                f"prefix {prefix!r} has no hash tag, and on Redis Cluster every key of a "
                "schedule must hash to one slot: use a prefix with one, such as "
                f"{codec.tagged(prefix)!r}, or shards (which add their own)"
            )
        if shards > 1:
            unsharded = b"" if cluster else self.keys.queue
            self._layout = (LAYOUT, [codec.layout_key(prefix)], [shards, unsharded])
            self._run = self._checked_run

    def _connect(self) -> Any:
        raise NotImplementedError

    def _checked_run(self, call: Call) -> Any:
        """``_run``'s stand-in until a sharded schedule's layout has been checked once."""
        raise NotImplementedError

    def _check_layout(self, recorded: bytes) -> None:
        """Raise unless the recorded layout (layout-1.lua's reply) is this scheduler's."""
        if int(recorded) != len(self.shards):
            raise ConfigurationError(
                f"the schedule under prefix {self.keys.prefix!r} is laid out in "
                f"{int(recorded)} shard(s), not {len(self.shards)}: pass shards="
                f"{int(recorded)}, or move it with rache.reshard() (or `rache reshard`)"
            )
        self.__dict__.pop("_run", None)  # checked: back to the plain calls

    def __repr__(self) -> str:
        name = type(self).__name__
        shards = f" shards={len(self.shards)}" if len(self.shards) > 1 else ""
        connection = _describe(self.connection)
        return f"<{name} prefix={self.keys.prefix!r}{shards} connection={connection}>"

    def _keys_of(self, raw_id: bytes) -> Keys:
        """The keys of the shard that holds the job ``raw_id``."""
        shards = self.shards
        return shards[0] if len(shards) == 1 else shards[codec.shard_of(raw_id, len(shards))]

    def _schedule(self, job_id: Any, schedule_in: Any, data: Any) -> Call:
        args = codec.schedule_args(job_id, schedule_in, data)
        keys = self._keys_of(args[0])  # type: ignore[arg-type]
        return SCHEDULE, [keys.queue, keys.job(args[0])], args  # type: ignore[arg-type]

    def _schedule_recurring(
        self,
        job_id: Any,
        every: Any,
        cron: Any,
        timezone: Any,
        misfire: Any,
        grace: Any,
        jitter: Any,
        start: Any,
        data: Any,
    ) -> Call:
        args = codec.schedule_recurring_args(
            job_id, every, cron, timezone, misfire, grace, jitter, start, data
        )
        keys = self._keys_of(args[0])  # type: ignore[arg-type]
        return SCHEDULE_RECURRING, [keys.queue, keys.job(args[0]), keys.recurring], args  # type: ignore[arg-type]

    def _bulk(self, jobs: Iterable[Tuple[Any, ...]], at: bool = False) -> Tuple[List[Call], int]:
        encoded = [codec.bulk_job_args(i, job, at) for i, job in enumerate(jobs)]
        groups: List[List[Args]] = [[] for _ in self.shards]
        if len(self.shards) == 1:
            groups[0] = encoded
        else:
            for job_args in encoded:
                groups[codec.shard_of(job_args[0], len(self.shards))].append(job_args)  # type: ignore[arg-type]
        calls: List[Call] = []
        for keys, group in zip(self.shards, groups):
            for start in range(0, len(group), self.batch_size):
                args: Args = [keys.job_prefix]
                for job_args in group[start : start + self.batch_size]:
                    args += job_args
                calls.append(self._on_queue(SCHEDULE_BULK, args, keys))
        return calls, len(encoded)

    def _claim_of(self, reschedule_in: Any, limit: Any) -> codec.Claim:
        reschedule = (
            None if reschedule_in is None else codec.encode_offset(reschedule_in, "reschedule_in")
        )
        # Each call of a sharded schedule starts at a shard of its own choosing, so that
        # pollers spread over the nodes and a limit does not always favour one shard.
        start = random.randrange(len(self.shards)) if len(self.shards) > 1 else 0
        lease_ms = max(1, round(self.recurring_lease * 1000))
        return codec.Claim(
            self.shards, self.batch_size, reschedule, codec.encode_limit(limit), start, lease_ms
        )

    def _on_queue(self, script: Script, args: Args, keys: Keys) -> Call:
        """A call of a script whose one key is a shard's queue (it derives job keys itself)."""
        return script, [keys.queue], args

    def _on_rules(self, script: Script, args: Args, keys: Keys) -> Call:
        """A call of a script whose keys are a shard's queue and recurrence rules."""
        return script, [keys.queue, keys.recurring], args

    def _on_job(self, script: Script, job_id: Any) -> Call:
        """A call of a script on one job: the queue, its hash and the rules; the id its argument."""
        raw_id = codec.encode_job_id(job_id)
        keys = self._keys_of(raw_id)
        return script, [keys.queue, keys.job(raw_id), keys.recurring], [raw_id]

    def _stats(self, intervals: int, interval: float) -> List[Call]:
        args = codec.stats_args(intervals, interval)
        return [self._on_queue(STATS, args, keys) for keys in self.shards]

    def _pages(self, with_times: bool) -> Tuple[Script, Any]:
        """What scheduled_jobs() reads: pages, merged across the shards of a sharded one."""
        if len(self.shards) == 1:
            return PAGE, codec.Pages(self.batch_size, with_times)
        pages = [codec.Pages(self.batch_size, True) for _ in self.shards]
        return PAGE, codec.Merged(self.shards, pages, None if with_times else _first)

    def _exports(self) -> Tuple[Script, Any]:
        """What export_jobs() reads: pages with data, merged across shards."""
        if len(self.shards) == 1:
            return EXPORT, codec.Exports(self.shards[0], self.batch_size)
        pages = [codec.Exports(keys, self.batch_size) for keys in self.shards]
        return EXPORT, codec.Merged(self.shards, pages)


def _first(item: Tuple[Any, ...]) -> Any:
    return item[0]


def _warn_unreleased(left: int) -> None:
    logger.warning(
        "rache: could not put back %d claimed jobs that were never handed out", left, exc_info=True
    )


class Scheduler(_BaseScheduler):
    """A schedule of jobs in one Redis under one key prefix, over a redis-py client.

    :param connection: a ``redis.Redis`` client (``decode_responses`` and protocol do not
        matter); None makes one from ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed or scheduled, or entries read, per script call.
    """

    def _connect(self) -> Any:
        return config.client(config.redis_url())

    def _run(self, call: Call) -> Any:
        script, keys, args = call
        return script(self.connection, keys, args)

    def _checked_run(self, call: Call) -> Any:
        assert self._layout is not None
        self._check_layout(Scheduler._run(self, self._layout))
        return Scheduler._run(self, call)

    def schedule_job(self, job_id: str, schedule_in: Any, **kwargs: Any) -> None:
        """Schedule ``job_id`` ``schedule_in`` seconds (or a timedelta) from now, with data.

        Scheduling a job again moves it; its data merges, and a key given as None is removed.
        """
        self._run(self._schedule(job_id, schedule_in, kwargs))

    def schedule_recurring(
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
        """Make ``job_id`` recur: ``every`` N seconds (or a timedelta), or on a ``cron`` rule.

        Each occurrence is handed out once by ``pending_jobs``, carrying its own due time.
        ``start`` (a Unix timestamp or an aware datetime; default now, server clock) is the
        first occurrence of ``every``, and where a ``cron`` rule starts from. ``misfire``
        (``coalesce`` or ``skip``) and ``grace`` say what becomes of missed occurrences;
        ``jitter`` shifts the job's occurrences by a fixed offset below it, derived from the
        id. ``data`` merges into the job's data as ``schedule_job``'s keywords do.
        """
        self._run(
            self._schedule_recurring(
                job_id, every, cron, timezone, misfire, grace, jitter, start, data
            )
        )

    def schedule_jobs(self, jobs: Iterable[Tuple[Any, ...]], *, at: bool = False) -> int:
        """Schedule many jobs, ``batch_size`` of them per script call (one round trip).

        Each job is ``(job_id, schedule_in)`` or ``(job_id, schedule_in, data)``, meaning
        what ``schedule_job(job_id, schedule_in, **data)`` means; with ``at``, the second
        item is the due time itself, a Unix timestamp (kept to the millisecond), as an
        export gives it. Every job is checked before any is written; each batch is atomic,
        the whole call is not. Returns the job count.
        """
        calls, count = self._bulk(jobs, at)
        for call in calls:
            self._run(call)
        return count

    def stats(self, intervals: int = 60, interval: float = 60) -> codec.Stats:
        """The schedule's figures in one snapshot (one script call).

        Total, due now, lag, next due time, and how many jobs fall due in each of the next
        ``intervals`` intervals of ``interval`` seconds.
        """
        replies = [self._run(call) for call in self._stats(intervals, interval)]
        return codec.merge_stats([codec.parse_stats(reply, interval) for reply in replies])

    def pending_jobs(
        self, reschedule_in: Any = None, limit: Optional[int] = None
    ) -> Generator[Job, None, None]:
        """Claim the jobs due now, earliest first, as ``{'id': ..., **data}`` dicts.

        Each is removed from the schedule (its data stays), or with ``reschedule_in``
        rescheduled that many seconds from now, in the same atomic step that hands it out:
        no job goes to two pollers. Claims go by batches as the generator is consumed; jobs
        of a batch that it never hands out (the consumer stopped) are put back.
        """
        return self._pending(self._claim_of(reschedule_in, limit))

    def _pending(self, claim: codec.Claim) -> Generator[Job, None, None]:
        handing: Optional[Iterator[Job]] = None  # over the jobs of the current batch
        try:
            while (args := claim.next_args()) is not None:
                handing = None
                handing = iter(self._claim_batch(claim, args))
                yield from handing
        finally:
            # Closed early: what the iterator still holds was claimed but never handed out.
            self._release(claim, 0 if handing is None else operator.length_hint(handing))

    def _claim_batch(self, claim: codec.Claim, args: Args) -> List[Job]:
        """One batch of ``claim``: the claim script, then the advance of its cron jobs."""
        jobs = claim.take(self._run(self._on_rules(CLAIM, args, claim.keys)))
        if (advance := claim.advance_args()) is not None:
            try:
                reply = self._run(self._on_rules(ADVANCE, advance, claim.keys))
            except BaseException:  # the batch's other jobs were claimed: put them back
                self._release(claim, len(claim.unadvanced()))
                raise
            jobs = claim.advanced(reply)
        return jobs

    def _release(self, claim: codec.Claim, left: int) -> None:
        """Put back the ``left`` jobs of ``claim``'s batch never handed out; only logs errors."""
        release = claim.release_args(left)
        if release is not None:
            try:
                self._run(self._on_rules(RELEASE, release, claim.keys))
            except Exception:  # close() or garbage collection is no place to raise
                _warn_unreleased(left)

    def delete_job(self, job_id: str) -> None:
        """Remove a job: its schedule entry and its data. An unknown job is no error."""
        self._run(self._on_job(DELETE, job_id))

    def job_details(self, job_id: str) -> Job:
        """``{'id', 'schedule_at', **data}`` of a job; ``schedule_at`` is None if unscheduled.

        :raises JobNotFound: the job is neither scheduled nor has data.
        """
        return codec.parse_details(job_id, self._run(self._on_job(DETAILS, job_id)))

    def scheduled_jobs(self, with_times: bool = False) -> Generator[Any, None, None]:
        """Every scheduled job id, earliest first, or ``(id, due time)`` with ``with_times``.

        Reads the schedule in pages of ``batch_size``. A job rescheduled while the iteration
        runs may come twice or not at all; every other job comes exactly once.
        """
        return self._scheduled(*self._pages(bool(with_times)))

    def _scheduled(self, script: Script, pages: Any) -> Generator[Any, None, None]:
        if isinstance(pages, codec.Merged):
            while True:
                while (call := pages.next_call()) is not None:
                    pages.take(self._run(self._on_queue(script, call[1], call[0])))
                items = pages.items()
                if not items:
                    return
                yield from items
        while (args := pages.next_args()) is not None:
            yield from pages.take(self._run(self._on_queue(script, args, self.shards[0])))

    def export_jobs(self) -> Generator[Tuple[Any, Any, Job], None, None]:
        """Every scheduled job as ``(job_id, due time, data)``, earliest first.

        A page of ``batch_size`` jobs per script call; ``schedule_jobs(..., at=True)`` takes
        the tuples back, so this copies a schedule between two Redis servers.
        """
        return self._scheduled(*self._exports())


def reshard(
    connection: Any,
    prefix: Optional[str] = None,
    *,
    shards: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Move the schedule under ``prefix`` to ``shards`` shards; returns the jobs moved.

    Every job keeps its due time and data to the byte, scheduled or not, and its recurrence
    rule. Stop the pollers and writers of the schedule first: a job is copied, then removed
    from its old place, not in one atomic step. Safe to run again after a failure (a copy is
    the same job, not a second one); the new count is recorded last, so until it is,
    schedulers of the old count still start.

    :param connection: a sync redis-py client, ``redis.Redis`` or ``redis.RedisCluster``.
    """
    prefix = config.prefix() if prefix is None else prefix
    target = codec.check_shards(shards)
    layout = codec.layout_key(prefix)
    recorded = connection.hget(layout, "shards")
    current = int(recorded) if recorded else 1
    if current == target:
        return 0
    source = Scheduler(connection, prefix, batch_size=batch_size, shards=current)
    dest = Scheduler(connection, prefix, batch_size=batch_size, shards=target)
    for scheduler in (source, dest):  # the layout is what is changing: no check
        scheduler.__dict__.pop("_run", None)
    moved = 0
    for keys in source.shards:
        pages = codec.Exports(keys, batch_size)
        while (args := pages.next_args()) is not None:
            reply = source._run(source._on_queue(EXPORT, args, keys))
            pages.take(reply)  # only for the next page's anchor: the copy is of the raw reply
            leaving: Dict[bytes, Args] = {}  # new shard's prefix -> restoreBulk-1.lua args
            ids: List[bytes] = []
            i = 0
            while i < len(reply):
                raw_id, count = reply[i], reply[i + 2]
                end = i + 3 + 2 * count
                into = dest._keys_of(raw_id)
                if into.prefix != keys.prefix:
                    leaving.setdefault(into.job_prefix, [into.job_prefix]).extend(reply[i:end])
                    ids.append(raw_id)
                i = end
            for args in leaving.values():
                into = dest._keys_of(args[1])  # type: ignore[arg-type]
                dest._run(dest._on_queue(RESTORE_BULK, args, into))
            if ids:
                _move_rules(connection, keys, ids, dest)
                source._run(source._on_queue(DELETE_BULK, [keys.job_prefix, *ids], keys))
                moved += len(ids)
        moved += _move_unscheduled(connection, keys, dest)
    if target == 1:
        connection.delete(layout)
    else:
        connection.hset(layout, "shards", target)
    return moved


def _move_rules(connection: Any, keys: Keys, ids: List[bytes], dest: Scheduler) -> None:
    """Move the recurrence rules of the jobs ``ids`` from the shard ``keys`` to ``dest``'s."""
    rules = connection.hmget(keys.recurring, ids)
    for raw_id, rule in zip(ids, rules):
        if rule is not None:
            connection.hset(dest._keys_of(raw_id).recurring, raw_id, rule)
            connection.hdel(keys.recurring, raw_id)


def _move_unscheduled(connection: Any, keys: Keys, dest: Scheduler) -> int:
    """Move the data of the jobs under ``keys`` that have no schedule entry; their count."""
    moved = 0
    pattern = re.sub(rb"([*?\[\]\\])", rb"\\\1", keys.job_prefix) + b"*"
    for key in list(connection.scan_iter(match=pattern, count=1000)):
        key = key if isinstance(key, bytes) else key.encode()
        raw_id = key[len(keys.job_prefix) :]
        target = dest._keys_of(raw_id)
        if target.prefix == keys.prefix:
            continue
        data = connection.execute_command("HGETALL", key, NEVER_DECODE=True)  # bytes as they are
        if data:
            connection.hset(target.job(raw_id), mapping=data)
        connection.delete(key)
        moved += 1
    return moved


def _is_cluster(connection: Any) -> bool:
    """True for a redis-py Redis Cluster client, sync or asyncio."""
    if isinstance(connection, redis.RedisCluster):
        return True
    aio = sys.modules.get("redis.asyncio.cluster")  # loaded if such a client exists
    return aio is not None and isinstance(connection, aio.RedisCluster)


def _describe(connection: Any) -> str:
    """The client's class and where it connects, never its credentials.

    Not ``repr(connection)``: redis-py 6.x to 7.3 list every connection setting in a
    client's repr, password included (fixed in 7.4).
    """
    kind = type(connection)
    name = f"{kind.__module__}.{kind.__qualname__}"
    pool = getattr(connection, "connection_pool", None)
    settings = getattr(pool, "connection_kwargs", None)
    if not isinstance(settings, dict):
        return f"<{name}>"
    db = settings.get("db", 0)
    if "path" in settings:
        return f"<{name} unix://{settings['path']}?db={db}>"
    if "host" not in settings:
        return f"<{name} db={db}>"
    classes = getattr(getattr(pool, "connection_class", object), "__mro__", ())
    scheme = "rediss" if any(c.__name__ == "SSLConnection" for c in classes) else "redis"
    return f"<{name} {scheme}://{settings['host']}:{settings.get('port', 6379)}/{db}>"
