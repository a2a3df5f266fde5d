"""The synchronous shell: each method encodes its arguments, calls one script, decodes."""

from __future__ import annotations

import logging
import operator
from typing import Any, Generator, Iterable, Iterator, Optional, Tuple, Union

import redis

from . import codec, config
from .codec import Job, Keys
from .constants import DEFAULT_BATCH_SIZE
from .scripts import CLAIM, DELETE, DETAILS, PAGE, RELEASE, SCHEDULE, SCHEDULE_BULK

logger = logging.getLogger(__name__)

#: What ``scheduled_jobs(with_times=True)`` yields: (job id, due time in Unix seconds).
Timed = Tuple[Union[str, bytes], Union[int, float]]


class Scheduler:
    """A schedule of jobs in one Redis under one key prefix.

    :param connection: a redis-py client (``decode_responses`` and protocol do not matter);
        None makes one from ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed, or entries read, per script call (one round trip).
    """

    def __init__(
        self,
        connection: Any = None,
        prefix: Optional[str] = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.keys = Keys(config.prefix() if prefix is None else prefix)
        self.batch_size = codec.check_batch_size(batch_size)
        self.connection = config.client(config.redis_url()) if connection is None else connection

    def __repr__(self) -> str:
        return f"<Scheduler prefix={self.keys.prefix!r} connection={_describe(self.connection)}>"

    def schedule_job(self, job_id: str, schedule_in: Any, **kwargs: Any) -> None:
        """Schedule ``job_id`` ``schedule_in`` seconds (or a timedelta) from now, with data.

        Scheduling a job again moves it; its data merges, and a key given as None is removed.
        """
        args = codec.schedule_args(job_id, schedule_in, kwargs)
        SCHEDULE(self.connection, [self.keys.queue, self.keys.job(args[0])], args)  # type: ignore[arg-type]

    def schedule_jobs(self, jobs: Iterable[Tuple[Any, ...]]) -> int:
        """Schedule many jobs, ``batch_size`` of them per script call (one round trip).

        Each job is ``(job_id, schedule_in)`` or ``(job_id, schedule_in, data)``, meaning
        what ``schedule_job(job_id, schedule_in, **data)`` means. Every job is checked before
        any is written; each batch is atomic, the whole call is not. Returns the job count.
        """
        encoded = [codec.bulk_job_args(i, job) for i, job in enumerate(jobs)]
        for start in range(0, len(encoded), self.batch_size):
            args: codec.Args = [self.keys.job_prefix]
            for job_args in encoded[start : start + self.batch_size]:
                args += job_args
            SCHEDULE_BULK(self.connection, [self.keys.queue], args)
        return len(encoded)

    def pending_jobs(
        self, reschedule_in: Any = None, limit: Optional[int] = None
    ) -> Generator[Job, None, None]:
        """Claim the jobs due now, earliest first, as ``{'id': ..., **data}`` dicts.

        Each is removed from the schedule (its data stays), or with ``reschedule_in``
        rescheduled that many seconds from now, in the same atomic step that hands it out:
        no job goes to two pollers. Claims go by batches as the generator is consumed; jobs
        of a batch that it never hands out (the consumer stopped) are put back.
        """
        reschedule = (
            None if reschedule_in is None else codec.encode_offset(reschedule_in, "reschedule_in")
        )
        return self._claim(reschedule, codec.encode_limit(limit))

    def _claim(
        self, reschedule: Optional[Tuple[int, bytes]], limit: Optional[int]
    ) -> Generator[Job, None, None]:
        remaining = limit
        cutoff = b""
        batch: Optional[codec.Claimed] = None
        handing: Optional[Iterator[Job]] = None  # over the jobs of the current batch
        try:
            while remaining is None or remaining > 0:
                count = self.batch_size if remaining is None else min(self.batch_size, remaining)
                args = codec.claim_args(self.keys, count, cutoff, reschedule)
                handing = None
                batch = codec.parse_claim(CLAIM(self.connection, [self.keys.queue], args))
                cutoff = batch.cutoff
                handing = iter(batch.jobs)
                yield from handing
                if len(batch.jobs) < count:
                    return
                if remaining is not None:
                    remaining -= count
        finally:
            # Closed early: what the iterator still holds was claimed but never handed out.
            left = 0 if handing is None else operator.length_hint(handing)
            if left and batch is not None:
                self._release(batch, len(batch.jobs) - left)

    def _release(self, batch: codec.Claimed, given: int) -> None:
        """Put back the jobs of ``batch`` after the first ``given``, never handed out."""
        try:
            RELEASE(self.connection, [self.keys.queue], codec.release_args(self.keys, batch, given))
        except Exception:  # close() or garbage collection is no place to raise
            logger.warning(
                "rache: could not put back %d claimed jobs that were never handed out",
                len(batch.jobs) - given,
                exc_info=True,
            )

    def delete_job(self, job_id: str) -> None:
        """Remove a job: its schedule entry and its data. An unknown job is no error."""
        raw_id = codec.encode_job_id(job_id)
        DELETE(self.connection, [self.keys.queue, self.keys.job(raw_id)], [raw_id])

    def job_details(self, job_id: str) -> Job:
        """``{'id', 'schedule_at', **data}`` of a job; ``schedule_at`` is None if unscheduled.

        :raises JobNotFound: the job is neither scheduled nor has data.
        """
        raw_id = codec.encode_job_id(job_id)
        reply = DETAILS(self.connection, [self.keys.queue, self.keys.job(raw_id)], [raw_id])
        return codec.parse_details(job_id, reply)

    def scheduled_jobs(self, with_times: bool = False) -> Generator[Any, None, None]:
        """Every scheduled job id, earliest first, or ``(id, due time)`` with ``with_times``.

        Reads the schedule in pages of ``batch_size``. A job rescheduled while the iteration
        runs may come twice or not at all; every other job comes exactly once.
        """
        return self._scheduled(bool(with_times))

    def _scheduled(self, with_times: bool) -> Generator[Any, None, None]:
        anchor = (b"", b"")
        count = self.batch_size
        while True:
            reply = PAGE(self.connection, [self.keys.queue], codec.page_args(count, anchor))
            for raw_id, due in codec.parse_page(reply, anchor):
                job_id = codec.decode_text(raw_id)
                yield (job_id, codec.decode_time(due)) if with_times else job_id
            if len(reply) - 1 < 2 * count:
                return
            anchor = (reply[-2], reply[-1])


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
    tls = issubclass(getattr(pool, "connection_class", object), redis.SSLConnection)
    scheme = "rediss" if tls else "redis"
    return f"<{name} {scheme}://{settings['host']}:{settings.get('port', 6379)}/{db}>"
