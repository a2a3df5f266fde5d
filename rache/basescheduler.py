"""What both shells share without I/O: ``BaseScheduler`` (settings, layout, a claim's start).

Beside it, what the two shells' methods have in common that is not a method: the argument
types of their signatures, ``due_time`` (the check of ``schedule_job_at``'s ``at``), and the
warnings both log when a claim could not be put back or a cron rule not evaluated.
``rache.syncscheduler`` and ``rache.asyncscheduler`` build on it; ``rache.scheduler`` names
all three.
"""

from __future__ import annotations

import logging
import math
import random
import weakref
from datetime import datetime
from typing import Any, Callable, Optional, Tuple, Union

from redis.exceptions import ResponseError

from . import arguments, config, encode, moves, wire
from .claim import Claim, put_back_ids
from .constants import (
    CALL_RECORD_TTL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_HISTORY,
    DEFAULT_LEASE_MS,
    DEFAULT_RUN_TIMEOUT,
    HISTORY_TTL,
    MAX_CALL_RECORD_TTL,
    RECORD_MARGIN,
)
from .errors import LayoutMismatch, UntaggedPrefix
from .keys import Keys, Layout, has_hash_tag, tagged
from .models import Seconds, Time
from .scripts import Call
from .wire import decode_time

logger = logging.getLogger("rache.scheduler")

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
    :param name: this poller's name, recorded in each run it hands out (``Run.claimed_by``);
        None: ``host:pid``, the pid read at each claim (so forks differ).
    :param history: runs kept per job, newest first (0 records none).
    :param run_timeout: how long a plain job's run may go without an outcome before it
        reads ``unknown`` (seconds or a timedelta).
    :param call_record_ttl: how long a call that writes is remembered (seconds or a
        timedelta), so that redis-py's retry of it (its reply lost) changes nothing: a retry
        later than this runs the call again. None: 60 s, or twice as long as the client
        given may go on retrying (``rache.config.RetryPolicy.worst``). The client made from
        ``REDIS_URL`` times out and retries well within it; a client given that may retry
        later is warned about, once (logger ``rache.scheduler``).
    :param history_ttl: how long the runs of a job no longer scheduled stay at least
        (seconds or a timedelta; default 7 days): the claims' sweep drops them after.
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
        name: Optional[str] = None,
        history: int = DEFAULT_HISTORY,
        run_timeout: Seconds = DEFAULT_RUN_TIMEOUT,
        call_record_ttl: Optional[Seconds] = None,
        history_ttl: Seconds = HISTORY_TTL,
    ) -> None:
        prefix = config.prefix() if prefix is None else prefix
        Keys(prefix)  # the prefix's own errors before the other settings'
        self.batch_size = arguments.batch_size(batch_size)
        self._name = None if name is None else arguments.poller_name(name)
        #: Runs kept per job (``Scheduler(history=...)``).
        self.history = arguments.history(history)
        self._run_timeout_ms = arguments.run_timeout(run_timeout)
        self._history_ttl_ms = arguments.history_ttl(history_ttl)
        #: The schedule's key groups, and which one holds a job.
        self.layout = Layout(prefix, shards)
        #: The keys of the prefix itself; ``shards``: those of each shard.
        self.keys = self.layout.keys
        self.shards = self.layout.shards
        given_ms = None if call_record_ttl is None else arguments.call_record_ttl(call_record_ttl)
        if connection is None:
            self._record_ms = CALL_RECORD_TTL * 1000 if given_ms is None else given_ms
            self.connection = self._connect()
        else:
            self._record_ms = record_life(connection, given_ms)
            self.connection = connection
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

    @property
    def call_record_ttl(self) -> float:
        """How long a call that writes is remembered, seconds (``call_record_ttl=``)."""
        return self._record_ms / 1000

    @property
    def name(self) -> str:
        """The poller's name as recorded in its runs: as given, else ``host:pid`` (now)."""
        return (self._name or arguments.default_poller_name()).decode()

    def _accept_layout(self, recorded: bytes) -> int:
        """Raise unless the recorded shard count (layout-2.lua's reply) is this scheduler's."""
        if int(recorded) != len(self.shards):
            raise LayoutMismatch(self.keys.prefix, int(recorded), len(self.shards))
        self._unchecked = False
        return int(recorded)

    def claim(
        self,
        reschedule_in: Optional[Seconds] = None,
        limit: Optional[int] = None,
        *,
        name: Optional[str] = None,
    ) -> Claim:
        """Start a claim of the jobs due now: a flow of batches, for ``claim_batch``.

        Arguments are checked here; nothing is sent. A sharded schedule's claim starts at
        a shard of its own choosing, so that pollers spread over the nodes. ``name``: the
        poller name its runs record, instead of this scheduler's (a Dispatcher's own name).
        """
        given = self._name if name is None else arguments.poller_name(name)
        start = random.randrange(len(self.shards)) if len(self.shards) > 1 else 0
        lease_ms = max(1, round(self.recurring_lease * 1000))
        return Claim(
            self.layout,
            self.batch_size,
            reschedule_in,
            limit,
            start=start,
            lease_ms=lease_ms,
            history=self.history,
            name=given or arguments.default_poller_name(),
            run_timeout_ms=self._run_timeout_ms,
            history_ttl_ms=self._history_ttl_ms,
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


#: The clients warned about already (once each): weakly, so that a client can go.
_warned: weakref.WeakSet[Any] = weakref.WeakSet()


def record_life(connection: Any, given_ms: Optional[int]) -> int:
    """How long (ms) a scheduler over a client given keeps its call records; warns once.

    ``given_ms``: ``call_record_ttl`` as given; None: ``CALL_RECORD_TTL``, or
    ``RECORD_MARGIN`` times the client's worst case if longer. A client that may retry a
    call after its record expired (no socket timeout and retries, or a worst case longer
    than the life) is warned about, naming what to change: its retry would run the call
    again. Warned, not refused: redis-py before 8 makes clients without a socket timeout
    by default, and a lost reply that late is rare; the warning says what it costs.
    """
    policy = config.retry_policy(connection)
    worst = policy.worst
    if given_ms is None:
        if worst * RECORD_MARGIN <= CALL_RECORD_TTL:
            return CALL_RECORD_TTL * 1000
        if worst * RECORD_MARGIN <= MAX_CALL_RECORD_TTL:
            return math.ceil(worst * RECORD_MARGIN * 1000)
        life_ms = CALL_RECORD_TTL * 1000 if math.isinf(worst) else MAX_CALL_RECORD_TTL * 1000
        if worst <= life_ms / 1000:
            return life_ms
    else:
        life_ms = given_ms
        if worst <= life_ms / 1000:
            return life_ms
    _warn_outwaits(connection, policy, life_ms)
    return life_ms


def _warn_outwaits(connection: Any, policy: config.RetryPolicy, life_ms: int) -> None:
    try:
        if connection in _warned:
            return
        _warned.add(connection)
    except TypeError:  # not weakly referable: warned each time
        pass
    worst = "without bound" if math.isinf(policy.worst) else f"up to {policy.worst:g} s"
    logger.warning(
        "rache: the client %s may retry a call %s after it was sent (%s), and a retry "
        "after the call's record expired (call_record_ttl=%g s) runs the call again: a job "
        "scheduled or handed out twice, a delete of a job scheduled since. Give the client "
        "a socket_timeout and socket_connect_timeout (redis-py 8's 5 s) and a Retry whose "
        "attempts x (socket_connect_timeout + socket_timeout + longest backoff) is well "
        "within call_record_ttl (rache.config.client_options gives rache's own), or raise "
        "Scheduler(call_record_ttl=...) above it",
        config.describe(connection),
        worst,
        policy.describe(),
        life_ms / 1000,
    )


def due_time(at: When, name: str = "at") -> Time:
    """The due time ``schedule_job_at(job_id, at)`` sets, checked as it checks ``at``; no I/O.

    For a caller that must refuse a bad time before writing anything of its own
    (``rache.rq`` saves an rq job before its rache job): the same ``TypeError`` or
    ``ValueError``, naming the argument ``name``. Unix seconds, an int when whole.
    """
    ms, _ = arguments.moment(at, name)
    return decode_time(wire.time_text(ms))


def warn_unreleased(call: Call, error: BaseException) -> None:
    """Log a put-back that raised ``error``: how many jobs, which, and whether it may have run.

    Reached once the client gave up: redis-py retries a call whose reply was lost with the
    same call id, and a retry that gets through is answered from the call's record, so no
    warning. An error reply (a refused script, a permission) means the call did not put
    anything back; any other failure (a connection lost, a timeout) may have come after the
    script ran, so the jobs may be back: the warning says so rather than "could not". A job
    not put back stays as the claim left it (removed, or rescheduled by ``reschedule_in``;
    a recurring one at its next occurrence, or leased until its lease ends).
    """
    plain, again = put_back_ids(call)
    ids = plain + again
    shown = ", ".join(repr(job_id) for job_id in ids[:5])
    if len(ids) > 5:
        shown += f" and {len(ids) - 5} more"
    jobs = f"{len(ids)} claimed jobs that were never handed out ({len(plain)} plain, "
    jobs += f"{len(again)} recurring: {shown})"
    failure = f"{type(error).__name__}: {error}"
    if isinstance(error, ResponseError):
        logger.warning(
            "rache: could not put back %s: Redis refused the call (%s)",
            jobs,
            failure,
            exc_info=(type(error), error, error.__traceback__),
        )
        return
    logger.warning(
        "rache: may not have put back %s: the call failed before its reply came (%s), so it "
        "may have run; those it did not put back stay as the claim left them",
        jobs,
        failure,
        exc_info=(type(error), error, error.__traceback__),
    )


def warn_batch(claim: Claim) -> None:
    """Log what a claim's batch did not hand out, and why (each is rare; none costs nothing).

    A cron rule this poller cannot evaluate; a job set aside, its rule not parsing; jobs
    left where they were, Redis refusing the writes that add memory.
    """
    for job_id, rule in claim.set_aside:
        logger.warning(
            "rache: job %r has a recurrence rule that does not parse (%r): set aside, off the "
            "schedule (Scheduler.bad_rules() lists it; schedule_recurring brings it back)",
            job_id,
            rule,
        )
    if claim.left:
        shown = ", ".join(repr(job_id) for job_id in claim.left[:5])
        more = f" and {len(claim.left) - 5} more" if len(claim.left) > 5 else ""
        logger.warning(
            "rache: Redis refuses writes that add memory (maxmemory reached, noeviction): "
            "the claim handed out the plain jobs it could remove and left %d due jobs where "
            "they are (%s%s), recurring or to reschedule, for a later claim",
            len(claim.left),
            shown,
            more,
        )
    for job, exc in claim.unevaluated:
        logger.warning(
            "rache: cannot evaluate the cron rule of job %r here; it stays leased for "
            "another poller to take up",
            job["id"],
            exc_info=(type(exc), exc, exc.__traceback__),
        )
