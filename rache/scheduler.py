"""The shells over the sans-IO codec: the part both share, and the synchronous Scheduler.

Each operation is built once here, as the script call to make (``_BaseScheduler``); the
sync shell below and the asyncio one (``rache.aio``) only make the calls, so that a rule
never exists twice.
"""

from __future__ import annotations

import logging
import operator
import sys
from typing import Any, Generator, Iterable, Iterator, List, Mapping, Optional, Tuple

import redis

from . import codec, config, recurrence
from .codec import Args, Job, Keys
from .constants import DEFAULT_BATCH_SIZE
from .errors import ConfigurationError
from .scripts import (
    ADVANCE,
    CLAIM,
    DELETE,
    DETAILS,
    EXPORT,
    PAGE,
    RELEASE,
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
    """

    #: How long (seconds) a claim holds a cron job while its poller computes the next
    #: occurrence: a poller that dies in between delays that occurrence by this much.
    recurring_lease: float = recurrence.DEFAULT_LEASE_MS / 1000

    def __init__(
        self,
        connection: Any = None,
        prefix: Optional[str] = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.keys = Keys(config.prefix() if prefix is None else prefix)
        self.batch_size = codec.check_batch_size(batch_size)
        self.connection = self._connect() if connection is None else connection
        if _is_cluster(self.connection) and not codec.has_hash_tag(self.keys.prefix):
            raise ConfigurationError(
                f"prefix {self.keys.prefix!r} has no hash tag, and on Redis Cluster every key "
                "of a schedule must hash to one slot: use a prefix with one, such as "
                f"{codec.tagged(self.keys.prefix)!r}"
            )

    def _connect(self) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"<{name} prefix={self.keys.prefix!r} connection={_describe(self.connection)}>"

    def _schedule(self, job_id: Any, schedule_in: Any, data: Any) -> Call:
        args = codec.schedule_args(job_id, schedule_in, data)
        return SCHEDULE, [self.keys.queue, self.keys.job(args[0])], args  # type: ignore[arg-type]

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
        keys = [self.keys.queue, self.keys.job(args[0]), self.keys.recurring]  # type: ignore[arg-type]
        return SCHEDULE_RECURRING, keys, args

    def _bulk(self, jobs: Iterable[Tuple[Any, ...]], at: bool = False) -> Tuple[List[Call], int]:
        encoded = [codec.bulk_job_args(i, job, at) for i, job in enumerate(jobs)]
        calls: List[Call] = []
        for start in range(0, len(encoded), self.batch_size):
            args: Args = [self.keys.job_prefix]
            for job_args in encoded[start : start + self.batch_size]:
                args += job_args
            calls.append(self._on_queue(SCHEDULE_BULK, args))
        return calls, len(encoded)

    def _claim_of(self, reschedule_in: Any, limit: Any) -> codec.Claim:
        reschedule = (
            None if reschedule_in is None else codec.encode_offset(reschedule_in, "reschedule_in")
        )
        lease_ms = max(1, round(self.recurring_lease * 1000))
        return codec.Claim(
            self.keys, self.batch_size, reschedule, codec.encode_limit(limit), lease_ms
        )

    def _on_queue(self, script: Script, args: Args) -> Call:
        """A call of a script whose one key is the queue (it derives job keys itself)."""
        return script, [self.keys.queue], args

    def _on_rules(self, script: Script, args: Args) -> Call:
        """A call of a script whose keys are the queue and the recurrence rules."""
        return script, [self.keys.queue, self.keys.recurring], args

    def _on_job(self, script: Script, job_id: Any) -> Call:
        """A call of a script on one job: the queue, its hash and the rules; the id its argument."""
        raw_id = codec.encode_job_id(job_id)
        return script, [self.keys.queue, self.keys.job(raw_id), self.keys.recurring], [raw_id]

    def _stats(self, intervals: int, interval: float) -> Call:
        return self._on_queue(STATS, codec.stats_args(intervals, interval))


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
        return codec.parse_stats(self._run(self._stats(intervals, interval)), interval)

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
                jobs = claim.take(self._run(self._on_rules(CLAIM, args)))
                if (advance := claim.advance_args()) is not None:
                    jobs = claim.advanced(self._run(self._on_rules(ADVANCE, advance)))
                handing = iter(jobs)
                yield from handing
        finally:
            # Closed early: what the iterator still holds was claimed but never handed out.
            left = 0 if handing is None else operator.length_hint(handing)
            release = claim.release_args(left)
            if release is not None:
                try:
                    self._run(self._on_rules(RELEASE, release))
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
        return self._scheduled(PAGE, codec.Pages(self.batch_size, bool(with_times)))

    def _scheduled(self, script: Script, pages: codec.Pages) -> Generator[Any, None, None]:
        while (args := pages.next_args()) is not None:
            yield from pages.take(self._run(self._on_queue(script, args)))

    def export_jobs(self) -> Generator[Tuple[Any, Any, Job], None, None]:
        """Every scheduled job as ``(job_id, due time, data)``, earliest first.

        A page of ``batch_size`` jobs per script call; ``schedule_jobs(..., at=True)`` takes
        the tuples back, so this copies a schedule between two Redis servers.
        """
        return self._scheduled(EXPORT, codec.Exports(self.keys, self.batch_size))


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
