"""What rache hands out and takes in: jobs, a schedule's figures, and the types of arguments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from .wire import decode_time

#: A duration: seconds as an int or float, or a timedelta (every ``*_in``, ``every``,
#: ``grace``, ``jitter`` and dispatcher timing argument takes one).
Seconds = Union[int, float, timedelta]
#: A value a job's data may hold when scheduled (None removes the key).
Value = Union[str, bytes, int, float]
#: A value as rache returns it: ASCII decimal integers as int, text as str, other bytes as is.
Decoded = Union[int, str, bytes]
#: A due time as rache returns it: Unix seconds, int when whole (as rache 0.3.1 gave them).
Time = Union[int, float]
#: A run's failure as ``finish_run`` takes it: an exception or a text.
Error = Union[BaseException, str]


def text(raw: bytes) -> Union[str, bytes]:
    """An id or a name read back from Redis: UTF-8 text as str, other bytes as they are.

    rache's one rule (0.2.1's) for job ids and data field names, wherever they come from:
    a claim, a page of the schedule, the ids of orphaned data.
    """
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


class Job(Dict[str, Any]):
    """A job as rache hands it out: ``{'id': ..., **data}``, plus the due time it was claimed for.

    A dict, so ``job == {'id': ..., **data}`` holds as in rache 0.3.1; the due time rides
    along as an attribute, never as a key that could hide the job's own data.
    """

    __slots__ = ("raw_due", "raw_run")
    #: The due time as the script read it (Unix seconds as text), None if unscheduled; set
    #: on every job rache hands out, and decoded only when asked (``due_at``).
    raw_due: Optional[bytes]
    #: The run token of a plain job (``<prefix>runs``; see ``occurrence_id``), None if none.
    raw_run: Optional[bytes]

    @property
    def due_at(self) -> Optional[Time]:
        """The due time this job was handed out for (Unix seconds), None if unscheduled."""
        raw = getattr(self, "raw_due", None)
        return None if raw is None else decode_time(raw)

    @property
    def occurrence_id(self) -> str:
        """The name of this one run of the job, the same whoever hands it out.

        ``<id>:<due time>`` for a recurring job's occurrence; ``<id>:<due time>:<run>`` for a
        plain job, ``<run>`` 16 hex digits that each schedule of the job draws anew (so a
        job scheduled again, even to the same due time, is another run); ``<id>:<due time>``
        for a job scheduled before rache 1.0 drew runs. A task queue's job id: one run
        handed out twice (a lost reply, a put-back, a lease) cannot enqueue twice.
        """
        run = getattr(self, "raw_run", None)
        if run is None:
            return f"{self['id']}:{self.due_at}"
        return f"{self['id']}:{self.due_at}:{run.hex()}"

    @property
    def raw_id(self) -> bytes:
        """The job's id as the script sent it (a str id was UTF-8; bytes ids stay bytes)."""
        job_id = self["id"]
        return job_id.encode() if isinstance(job_id, str) else bytes(job_id)


class Exported(NamedTuple):
    """One job of ``export_jobs``, with everything it has: ``schedule_jobs(at=True)`` takes it back.

    A tuple, ``(job_id, due, data, run, rule)``. A copy made from it is the same job: the same
    due time, data, run (so the same ``occurrence_id`` when it is handed out) and rule.
    """

    #: The job's id (str; bytes if it is not UTF-8).
    job_id: Any
    #: Its due time, Unix seconds.
    due: Time
    #: Its data, as a claim hands it out (without the id).
    data: Dict[str, Any]
    #: Its run token, 16 hex digits (see ``Job.occurrence_id``); None for a recurring job,
    #: or a job scheduled before rache drew runs.
    run: Optional[str] = None
    #: Its recurrence rule and state, as stored (text to take back as it is, not to read);
    #: None for a job that does not recur.
    rule: Optional[str] = None


class Run(NamedTuple):
    """One run of a job: a hand-out, named by its occurrence id, and its outcome once known.

    ``Scheduler.runs(job_id)`` gives a job's runs newest first, ``Scheduler.failures()`` the
    recent failed runs. Times are Unix seconds on the Redis server's clock.
    """

    #: The run's name: ``Job.occurrence_id`` of the job handed out.
    occurrence_id: str
    #: The job's id (str; bytes if it is not UTF-8).
    job_id: Any
    #: The due time it was handed out for.
    due: Time
    #: When a claim handed it out (None for a run not handed out: skipped).
    claimed_at: Optional[float]
    #: The name of the poller that claimed it (``Scheduler(name=...)``, default ``host:pid``).
    claimed_by: Optional[str]
    #: ``'running'`` (no outcome yet), ``'succeeded'``, ``'failed'``, ``'skipped'``, or
    #: ``'unknown'``: running past its deadline (its run timeout) without an outcome.
    state: str
    #: When its outcome came (``finish_run``), None while it has none.
    finished_at: Optional[float]
    #: The error text of a failure (while running after failed attempts: the last one's);
    #: for a skipped run, the reason. None when there is none.
    error: Optional[str]
    #: Failed attempts recorded with ``finish_run(..., retrying=True)``.
    attempts: int
    #: When a running run becomes unknown (Unix seconds), None if it has no deadline.
    deadline: Optional[float] = None


class SetAside(NamedTuple):
    """A job a claim set aside because its stored rule does not parse (``Scheduler.bad_rules``).

    Off the schedule, its rule and data kept as they were, so that nothing is lost and no
    claim is blocked by it: ``schedule_recurring`` (a new rule) or ``schedule_job`` brings
    it back, ``delete_job`` removes it (rache/lua/README.md, "Set-aside jobs").
    """

    #: The job's id (str; bytes if it is not UTF-8).
    job_id: Any
    #: The rule as stored, raw (text to read, not to parse: it does not).
    rule: str
    #: The due time it stood at when set aside, Unix seconds.
    due: Time


class Stats(NamedTuple):
    """The figures of a schedule at one instant (times are Unix seconds, server clock)."""

    #: the server's time of the snapshot
    now: float
    #: jobs scheduled
    total: int
    #: jobs due now (at or before ``now``)
    due: int
    #: the earliest due time, None for an empty schedule
    earliest: Optional[Time]
    #: the first due time after ``now``, None if nothing is to come
    next_due: Optional[Time]
    #: jobs falling due in each coming interval: (now, now + interval], ...
    coming: List[int]
    #: the length of those intervals, seconds
    interval: float
    #: jobs set aside by a claim, their rule not parsing (``Scheduler.bad_rules``)
    set_aside: Tuple[SetAside, ...] = ()

    @property
    def lag(self) -> float:
        """How overdue the oldest due job is, seconds (0 when none is due)."""
        if self.earliest is None or self.earliest > self.now:
            return 0.0
        return self.now - self.earliest


class Poller(NamedTuple):
    """A live poller of a schedule, as it last announced itself (``Scheduler.pollers()``).

    Every Dispatcher, AsyncDispatcher, ``rache dispatch``, Celery beat (``rache.celery``) and
    rq runner (``rache.rq``) announces itself while it runs, every few seconds at most; its
    entry goes once it stops, or within its time to live after its process dies.
    """

    #: who it is: ``host:pid`` unless given, unique among a schedule's pollers
    name: str
    #: what it is: ``'dispatcher'``, ``'rache dispatch'``, ``'celery beat'``, ``'rq runner'``...
    kind: str
    #: its host name and process id
    host: str
    pid: int
    #: the rache version it runs
    version: str
    #: when it started, Unix seconds (its own clock)
    started: float
    #: when it last claimed (whatever the claim found), Unix seconds, server clock; None if
    #: it has not claimed yet
    last_claim: Optional[float]
    #: jobs it handed to its handler, and those whose handler raised
    handed_out: int
    failures: int
    #: when it last announced itself and when its entry lapses unless it announces again
    #: (Unix seconds, server clock); None in a value not read back from Redis
    announced: Optional[float] = None
    expires: Optional[float] = None


class Problem(NamedTuple):
    """One thing wrong with a schedule (``Health.problems``): a kind, a job, a sentence."""

    #: what is wrong: ``'no live poller'``, ``'late'`` (``rache.health`` names them)
    kind: str
    #: the job it is about, None when it is about the schedule as a whole
    job_id: Any
    #: what is wrong, in a sentence a person reads
    message: str


class RecurringRuns(NamedTuple):
    """What ``Scheduler.health()`` read of one recurring job's newest runs (``Health.recurring``).

    Read from the newest runs kept (``HEALTH_RUNS`` of them, or the failures in a row asked
    for if more), so a success older than those reads as none.
    """

    #: the job's id (str, or bytes if not UTF-8)
    job_id: Any
    #: when its newest successful run finished (Unix seconds, server clock); None if none
    #: of the runs read succeeded
    last_success: Optional[float]
    #: its newest runs with an outcome that failed, up to the newest success (runs without
    #: an outcome, running, unknown or skipped, are passed over)
    failed_in_a_row: int
    #: when its newest run was handed out (Unix seconds, server clock); None if no run is kept
    last_run: Optional[float]
    #: how many of its occurrences fell due after its last success (or, none known, after
    #: it was first due; for a job whose outcomes are not reported, after its newest
    #: run's), counted up to the ``stale_periods`` asked for
    missed: int


class Health(NamedTuple):
    """The verdict on a schedule (``Scheduler.health()``), from one reading of it.

    ``ok`` is True when ``problems`` is empty. The figures it was judged on come with it,
    so that ``rache doctor``, the dashboard and the Prometheus gauges say the same thing.
    """

    ok: bool
    problems: List[Problem]
    #: the schedule's figures (due jobs, the oldest due time, the server's now)
    stats: Stats
    #: its live pollers
    pollers: List[Poller]
    #: the recurring jobs examined (at most ``HEALTH_JOBS``, the first by id), by id
    recurring: Tuple[RecurringRuns, ...] = ()
    #: how many recurring jobs were not examined (those after the first ``HEALTH_JOBS``)
    unexamined: int = 0
