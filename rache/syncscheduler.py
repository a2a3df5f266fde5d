"""The sync shell: ``Scheduler``, each method one operation's I/O over a redis-py client.

Only I/O: ``encode`` builds each operation's script call and ``decode`` reads its reply; a
claim and a paged reading are flows (``rache.claim``, ``rache.pages``) that it drives call by
call. Its twin is ``rache.asyncscheduler.AsyncScheduler``, the same methods in the same order
(tests/unit/test_twins.py); what they share without I/O is ``rache.basescheduler``.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any, Generator, Iterable, List, Mapping, Optional, Tuple

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


class Scheduler(BaseScheduler):
    """A schedule of jobs in one Redis under one key prefix, over a redis-py client.

    :param connection: a ``redis.Redis`` or ``redis.RedisCluster`` client
        (``decode_responses`` and protocol do not matter); None makes one from ``REDIS_URL``.
    :param prefix: the key prefix; None reads ``RACHE_REDIS_PREFIX`` (default ``rache:``).
    :param batch_size: jobs claimed or scheduled, or entries read, per script call.
    :param shards: how many key groups the schedule spreads over (Redis Cluster).
    :param name: this poller's name in the runs it hands out; None: ``host:pid``.
    :param history: runs kept per job, newest first (0 records none).
    :param run_timeout: a plain job's run reads ``unknown`` this long after its claim
        without an outcome (default an hour).
    :param call_record_ttl: how long a call that writes is remembered, so that a retry
        of it changes nothing (default 60 s, longer for a client that retries longer).
    :param history_ttl: the runs of a job no longer scheduled (a one-shot job handed out)
        stay at least this long after its last run (default 7 days), then go.
    """

    def _connect(self) -> Any:
        return config.client(config.redis_url(), self.call_record_ttl)

    def _run(self, call: Call) -> Any:
        if self._unchecked:
            self.check_layout()
        return self._send(call)

    def _send(self, call: Call) -> Any:
        """Make one script call, without the layout check first."""
        script, keys, args = call
        return script(self.connection, keys, args, self._record_ms)

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
        """Remove a job: its schedule entry, its data, its rule and its runs.

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

    def finish_run(
        self, occurrence_id: str, error: Optional[Error] = None, *, retrying: bool = False
    ) -> bool:
        """Record the outcome of the run ``occurrence_id`` (``Job.occurrence_id``).

        ``error`` None: it succeeded; an exception (stored as ``TypeName: message``) or a
        text: it failed, and joins the recent failures (``failures()``). ``retrying=True``
        records a failed attempt instead: ``attempts`` + 1, the error kept, the run still
        running. A run that has its outcome keeps it: the call changes nothing and returns
        True. One script call (two at most, for an id that reads two ways), exactly once
        across lost replies, safe from any process. Returns False for an unknown run (never
        handed out, put back, deleted, or dropped from the history kept), never raising.

        :raises TypeError: ``occurrence_id`` is not a str, or ``error`` not a str or an
            exception (nothing is written).
        """
        for call in encode.finish_run(self.layout, occurrence_id, error, retrying):
            if int(self._run(call)):
                return True
        return False

    def runs(self, job_id: str) -> List[Run]:
        """The runs of ``job_id`` kept (``Scheduler(history=...)``), newest first.

        One read-only script call; a running run past its deadline reads ``unknown``.
        """
        return decode.runs(raw_id(job_id), self._run(encode.runs(self.layout, job_id, MAX_HISTORY)))

    def failures(self, limit: Optional[int] = None) -> List[Run]:
        """The recent failed runs, newest first: at most ``limit`` (None: all kept).

        Each shard keeps its last ``FAILURES_KEPT`` (100); one read-only script call per shard.
        """
        calls = encode.failures(self.layout, limit)
        return decode.failures([self._run(call) for call in calls], limit)

    def stats(self, intervals: int = 60, interval: Seconds = 60) -> Stats:
        """The schedule's figures in one snapshot (one script call per shard).

        Total, due now, lag, next due time, how many jobs fall due in each of the next
        ``intervals`` intervals of ``interval`` seconds, and ``set_aside``: the jobs a claim
        set aside, their rule not parsing (see ``bad_rules``).
        """
        calls = encode.stats(self.layout, intervals, interval)
        length = float(calls[0].args[1])
        return decode.merged_stats([decode.stats(self._run(call), length) for call in calls])

    def announce(self, poller: Poller, ttl: Seconds = POLLER_TTL) -> float:
        """List ``poller`` as live for ``ttl`` seconds from now (one script call); its expiry.

        What the hand-out loops call (every Dispatcher, ``rache dispatch``, the Celery beat,
        the rq runners), at most every ``ANNOUNCE_EVERY`` seconds; a loop of your own calls
        it as often, with its :class:`rache.Poller` (``announced`` and ``expires`` are not
        sent). Another announce of the same name replaces the entry; ``withdraw`` removes
        it at once, and without either it lapses ``ttl`` seconds after the last (a process
        killed without a word). Entries that lapsed are dropped by the next announce of
        any poller, at most once a ``ttl``. Returns when the entry lapses, Unix seconds,
        server clock.
        """
        return int(self._run(encode.announce(self.layout, poller, ttl))) / 1000

    def withdraw(self, name: str) -> bool:
        """Remove the poller ``name`` from the live pollers now (a clean stop); whether listed."""
        return int(self._run(encode.withdraw(self.layout, name))) > 0

    def pollers(self) -> List[Poller]:
        """The live pollers of this schedule, by name: each as it last announced itself.

        One read-only script call, made without the layout check; an entry is live until
        its ``expires`` (server clock), so a poller killed without a word is gone from the
        list at most its ttl (``POLLER_TTL``, 60 s, by default) after its last announce.
        """
        return decode.pollers(self._send(encode.pollers(self.layout)))

    def health(
        self,
        late: Seconds = DEFAULT_LATE,
        *,
        stale_periods: int = DEFAULT_STALE_PERIODS,
        failed_in_a_row: int = DEFAULT_FAILED_IN_A_ROW,
    ) -> Health:
        """The schedule's verdict: ok, or the problems found, from one reading of it.

        Problems: jobs due and no live poller; the oldest due job more than ``late``
        seconds (or a timedelta) overdue; a recurring job that has not succeeded in
        ``stale_periods`` of its occurrences (counted after its last success; a job with
        none, after it was first due, so a new job is no problem), or whose newest
        ``failed_in_a_row`` runs with an outcome failed (0 turns either check off). A job
        whose outcomes are not reported (no ``finish_run``) is judged by its hand-outs.

        A few read-only calls: the figures (one per shard), the pollers, the oldest due
        job's id when it is late; for the recurring checks, the recurring ids (one call
        per shard), then the first ``HEALTH_JOBS`` (1,000) of them by id, each with its
        newest ``HEALTH_RUNS`` (10) runs, ``HEALTH_BATCH`` (100) jobs a call. Jobs past the
        first 1,000 are not judged (``Health.unexamined`` counts them).

        :raises ValueError: a negative or too large threshold (nothing is read).
        """
        threshold = health_rules.late_threshold(late)
        checks = health_rules.Checks.of(stale_periods, failed_in_a_row)
        figures = self.stats(intervals=0)
        found = self.pollers()
        oldest = self._oldest() if health_rules.is_late(figures, threshold) else None
        judged: List[health_rules.Judged] = []
        unexamined = 0
        if checks.stale_periods or checks.failed_in_a_row:
            ids, unexamined = health_rules.examined(list(self._recurring()))
            for call in encode.recurring_runs(self.layout, ids, checks.runs):
                reply = self._run(call)
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

    def _oldest(self) -> Any:
        """The id of the earliest due job (one page of one entry per shard)."""
        flow = pages.scheduled(self.layout, 1, False)
        while (call := flow.next_call()) is not None:
            entries = flow.take(self._run(call))
            if entries:
                return entries[0]
        return None

    def bad_rules(self) -> List[SetAside]:
        """The jobs a claim set aside because their stored rule does not parse.

        A rule value in Redis that rache did not write as such (written by hand or another
        program, cut short) never blocks a claim: the claim takes the job off the schedule
        into ``<prefix>aside`` and hands out the rest, logging a warning. Each comes with its
        id, its rule as stored and the due time it stood at; ``schedule_recurring`` (or
        ``schedule_job``) brings it back, ``delete_job`` removes it. One read-only script
        call per shard (the figures' without intervals).
        """
        calls = encode.set_aside(self.layout)
        replies = [decode.stats(self._run(call), 60.0) for call in calls]
        return [job for figures in replies for job in figures.set_aside]

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
            warn_batch(claim)
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
        except Exception as error:
            warn_unreleased(call, error)
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
