"""Build each operation's script call, its arguments checked first (by ``rache.arguments``).

Nothing is sent before every argument of a call passed its check, so bad input changes
nothing. The shells send what these build; ``rache.decode`` reads the replies.
"""

from __future__ import annotations

import json
import re
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from . import recurrence, scripts, wire
from .arguments import (
    count,
    data,
    due_at,
    error_text,
    exact_due,
    mapping,
    moment,
    offset,
    raw_id,
    rule,
    run_token,
    start,
    stored_rule,
)
from .constants import (
    BULK_MAX_ARGS,
    FAILURES_KEPT,
    HEALTH_BATCH,
    MAX_OFFSET_SECONDS,
    MAX_POLLER_TEXT,
)
from .durations import finite, seconds, shown
from .keys import Keys, Layout, has_hash_tag
from .models import Job, Poller
from .rules import Cron, Placed
from .scripts import Args, Call

# -- the calls -------------------------------------------------------------------------------


def schedule(
    layout: Layout, job_id: object, schedule_in: object, fields: Mapping[str, object]
) -> Call:
    """schedule-4.lua: schedule one job ``schedule_in`` from now, merging ``fields``."""
    raw = raw_id(job_id)
    ms, precision = offset(schedule_in, "schedule_in")
    return _schedule(layout, raw, ms, precision, data(fields))


def schedule_at(layout: Layout, job_id: object, at: object, fields: object) -> Call:
    """schedule-4.lua: schedule one job at ``at`` (see ``moment``), merging ``fields``.

    ``fields`` is a mapping (None: no data), not keywords: every keyword of
    ``schedule_job`` is a data field, as in rache 0.3.1.
    """
    raw = raw_id(job_id)
    ms, precision = moment(at, "at")
    return _schedule(layout, raw, ms, precision, data(mapping(fields)))


def _schedule(
    layout: Layout, raw: bytes, ms: int, precision: bytes, fields: Tuple[List[bytes], List[bytes]]
) -> Call:
    sets, deletes = fields
    keys = layout.of(raw)
    args: Args = [keys.wakeup, raw, ms, precision, len(sets) // 2, *sets, *deletes]
    return Call(scripts.SCHEDULE, [keys.queue, keys.job(raw), keys.runs, keys.call_prefix], args)


def schedule_recurring(
    layout: Layout, job_id: object, recurring: object, first: object, fields: object
) -> Declaration:
    """scheduleRecurring-5.lua: store a job's rule, set when it resumes, merge its data.

    Every argument is checked here (the rule, when it was built); the call itself comes
    from the declaration, once it knows the server's time if a cron rule without a start
    needs it (see ``Declaration``).
    """
    raw = raw_id(job_id)
    given = mapping(fields)
    placed = rule(recurring).place(str(job_id))
    start_ms = start(first)
    sets, deletes = data(given)
    keys = layout.of(raw)
    args: Args = [
        keys.wakeup,
        raw,
        placed.rule.tag.encode(),
        b"" if start_ms is None else start_ms,
        placed.encode_tail(),
        placed.start_ms,  # every-N: the jitter shift; cron: its first occurrence, below
        len(sets) // 2,
        *sets,
        *deletes,
    ]
    named = [keys.queue, keys.job(raw), keys.recurring, keys.runs, keys.call_prefix]
    call = Call(scripts.SCHEDULE_RECURRING, named, args)
    return Declaration(call, placed, start_ms, keys)


#: Where the first occurrence goes in scheduleRecurring-5.lua's arguments (its ARGV[6]).
_FIRST = 5


class Declaration:
    """schedule_recurring's script call, made once the first occurrence is known.

    An every-N rule's first occurrence is its start (the script reads its clock for a start
    of now). A cron rule's is the first at or after its start, which only Python can
    compute (Lua has no cron): from the start given, or else from the server's time, which
    ``clock`` reads first (one more round trip, read-only, on the job's shard; declarations
    are rare). So a new cron job stands at its next occurrence from the start, and every
    view of the schedule tells the truth before any poller runs.
    """

    __slots__ = ("_call", "clock", "placed", "start_ms")

    def __init__(self, call: Call, placed: Placed, start_ms: Optional[int], keys: Keys) -> None:
        self._call = call
        self.placed = placed
        self.start_ms = start_ms
        #: The call whose reply gives the server's time (stats-3.lua, no intervals), to
        #: make before ``call()``; None when none is needed.
        self.clock: Optional[Call] = None
        if isinstance(placed.rule, Cron) and start_ms is None:
            self.clock = Call(scripts.STATS, _stats_keys(keys), [0, b"60.0"])

    def call(self, clock_reply: Optional[Sequence[Any]] = None) -> Call:
        """scheduleRecurring-5.lua's call; ``clock_reply`` is the reply of ``clock``'s call."""
        if not isinstance(self.placed.rule, Cron):
            return self._call
        if self.start_ms is not None:
            since = self.start_ms
        elif clock_reply is not None:
            since = wire.now_ms(clock_reply[0])
        else:
            raise ValueError("a cron rule without a start needs the reply of the clock call")
        args = list(self._call.args)
        args[_FIRST] = recurrence.next_at_or_after(self.placed, since)
        return self._call._replace(args=args)


def bulk_job(index: int, job: object, at: bool = False) -> Args:
    """One job of scheduleBulk-3.lua: id, offset, precision, n set, n deleted, fields...

    ``job`` is ``(job_id, schedule_in)`` or ``(job_id, schedule_in, data)``, or with
    ``at`` ``(job_id, due time as a Unix timestamp[, data])``; errors say which job (by
    position) was wrong. (A job with a run and a rule, as ``export_jobs`` gives it, goes to
    ``restored_job``.)
    """
    if not isinstance(job, tuple) or len(job) not in ((2, 3, 4, 5) if at else (2, 3)):
        second = "due time" if at else "schedule_in"
        more = f", or (job_id, {second}, data, run, rule) as export_jobs gives it" if at else ""
        raise TypeError(
            f"jobs[{index}] must be a (job_id, {second}) or (job_id, {second}, data) "
            f"tuple{more}, not {type(job).__name__}"
        )
    try:
        fields = mapping(job[2]) if len(job) == 3 else {}
        raw = raw_id(job[0])
        ms, precision = due_at(job[1]) if at else offset(job[1], "schedule_in")
        sets, deletes = data(fields)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"jobs[{index}]: {exc}") from None
    return [raw, ms, precision, len(sets) // 2, len(deletes), *sets, *deletes]


def restored_job(index: int, job: Tuple[Any, ...]) -> Args:
    """One job of restoreBulk-4.lua: id, due time, run token, rule, n, field/value pairs.

    ``job`` is ``(job_id, due time, data, run, rule)`` as ``export_jobs`` gives it: the due
    time kept exactly (not to the millisecond), the run a token of 16 hex digits or None, the
    rule as exported or None. The copy is the job as exported: its run and rule replace any.
    """
    try:
        raw = raw_id(job[0])
        due = exact_due(job[1])
        fields = mapping(job[2])
        run = job[3] if len(job) > 3 else None
        rule = job[4] if len(job) > 4 else None
        token = b"" if run is None else run_token(run)
        stored = b"" if rule is None else stored_rule(rule)
        sets, deletes = data(fields)
        if deletes:
            raise ValueError(
                f"data {deletes[0].decode()!r} is None: a job copied with its run and rule "
                "sets data, it removes none"
            )
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"jobs[{index}]: {exc}") from None
    return [raw, due, token, stored, len(sets) // 2, *sets]


def schedule_bulk(layout: Layout, jobs: Iterable[Tuple[Any, ...]], at: bool, size: int) -> Bulk:
    """scheduleBulk-3.lua calls of ``size`` jobs each, per shard, as ``Bulk`` makes them."""
    return Bulk(layout, jobs, at, size)


#: A job of a ``Bulk`` as encoded: whether it is restored (restoreBulk-4.lua), and its args.
_Encoded = Tuple[bool, Args]


def _encoded(index: int, job: object, at: bool) -> _Encoded:
    if at and isinstance(job, tuple) and len(job) in (4, 5):
        return True, restored_job(index, job)
    return False, bulk_job(index, job, at)


class Bulk:
    """The scheduleBulk-3.lua calls of a ``schedule_jobs``: iterate for them, in bounded memory.

    A list or tuple is checked whole here, before any call is made: a bad job raises now,
    and nothing is sent. Any other iterable (a generator, an export) is taken as a stream,
    checked job by job as the calls are made: a call holds ``size`` jobs of one shard and
    is made when they are in (or sooner, at ``BULK_MAX_ARGS`` arguments: jobs with much data
    cost more time), so at most about ``size`` jobs per shard are held at once; a
    bad job raises from the iteration, after the calls before it (the full batches of the
    jobs before it) and before its own. ``count`` is the number of jobs taken so far.

    A job with a run and a rule (``export_jobs``' five items, with ``at``) is copied as it
    was by restoreBulk-4.lua calls instead; a shard's call in the making is sent first when
    the next job is of the other kind, so jobs are written in the order given.
    """

    __slots__ = ("_encoded", "_layout", "_size", "count")

    def __init__(
        self, layout: Layout, jobs: Iterable[Tuple[Any, ...]], at: bool, size: int
    ) -> None:
        self._layout, self._size = layout, size
        self.count = 0
        encoded = (_encoded(i, job, at) for i, job in enumerate(jobs))
        self._encoded: Iterable[_Encoded] = (
            list(encoded) if isinstance(jobs, (list, tuple)) else encoded
        )

    def __iter__(self) -> Iterator[Call]:
        shards = self._layout.shards
        groups: List[Args] = [[] for _ in shards]  # each shard's call in the making
        kinds = [False] * len(shards)  # whether it restores
        filled = [0] * len(shards)
        single = len(shards) == 1
        for restore, job_args in self._encoded:
            self.count += 1
            index = 0 if single else self._layout.index_of(job_args[0])  # type: ignore[arg-type]
            if filled[index] and kinds[index] != restore:
                yield self._call(index, groups[index], kinds[index])
                groups[index], filled[index] = [], 0
            kinds[index] = restore
            groups[index] += job_args
            filled[index] += 1
            if filled[index] == self._size or len(groups[index]) >= BULK_MAX_ARGS:
                yield self._call(index, groups[index], restore)
                groups[index], filled[index] = [], 0
        for index, group in enumerate(groups):
            if filled[index]:
                yield self._call(index, group, kinds[index])

    def _call(self, index: int, group: Args, restore: bool) -> Call:
        keys = self._layout.shards[index]
        if restore:
            return restore_call(keys, group)
        named = [keys.queue, keys.runs, keys.call_prefix]
        return Call(scripts.SCHEDULE_BULK, named, [keys.job_prefix, keys.wakeup, *group])


def restore_call(keys: Keys, jobs: Args) -> Call:
    """restoreBulk-4.lua on the group ``keys``: ``jobs`` as ``restored_job`` encodes them."""
    named = [keys.queue, keys.recurring, keys.runs, keys.call_prefix]
    return Call(scripts.RESTORE_BULK, named, [keys.job_prefix, keys.wakeup, *jobs])


def delete(layout: Layout, job_id: object) -> Call:
    """delete-7.lua: remove one job's schedule entry, data, run token, rule and runs."""
    raw = raw_id(job_id)
    keys = layout.of(raw)
    named = [
        keys.queue,
        keys.job(raw),
        keys.recurring,
        keys.runs,
        keys.last_runs,
        keys.history(raw),
        keys.call_prefix,
    ]
    return Call(scripts.DELETE, named, [raw])


# -- runs ------------------------------------------------------------------------------------

#: A run token in an occurrence id (``Job.occurrence_id``), and a due time as Python writes
#: it there (``decode_time``: an int, or a float's repr).
_TOKEN = re.compile(r"[0-9a-f]{16}")
_DUE = re.compile(r"-?[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?")
#: Due times further from 1970 than this are no due time rache gives (MAX_OFFSET_SECONDS
#: from now, at most): a 16-digit token is never read as one.
_LATEST_DUE = 10 * MAX_OFFSET_SECONDS


def _due(text: str) -> bool:
    return bool(_DUE.fullmatch(text)) and abs(float(text)) <= _LATEST_DUE


def occurrences(occurrence_id: object) -> List[Tuple[bytes, bytes, bytes]]:
    """The readings of an occurrence id as (job id, due time, run token or b""), likeliest first.

    ``<id>:<due>:<16 hex>`` (a plain job's run) or ``<id>:<due>`` (a recurring job's
    occurrence, or a run from before tokens); an id may hold ``:``, so a text may read
    both ways (rarely: a job id ending in a number). None: no reading (an unknown run).
    """
    if not isinstance(occurrence_id, str):
        raise TypeError(f"occurrence_id must be a str, not {type(occurrence_id).__name__}")
    readings: List[Tuple[bytes, bytes, bytes]] = []
    parts = occurrence_id.rsplit(":", 2)
    if len(parts) == 3 and parts[0] and _TOKEN.fullmatch(parts[2]) and _due(parts[1]):
        token = bytes.fromhex(parts[2])
        readings.append((wire.utf8(parts[0], "occurrence_id"), parts[1].encode(), token))
    parts = occurrence_id.rsplit(":", 1)
    if len(parts) == 2 and parts[0] and _due(parts[1]):
        readings.append((wire.utf8(parts[0], "occurrence_id"), parts[1].encode(), b""))
    return readings


def finish_run(
    layout: Layout, occurrence_id: object, error: object, retrying: object
) -> List[Call]:
    """finishRun-6.lua: the outcome of a run, one call per reading of its occurrence id.

    The shell makes them in turn until one answers 1 (almost always one call; none for a
    text that names no run). Every argument is checked first.
    """
    raw_error = error_text(error)
    if not isinstance(retrying, bool):
        raise TypeError(f"retrying must be a bool, not {type(retrying).__name__}")
    outcome = wire.ATTEMPT if retrying else wire.FAILED if error is not None else wire.SUCCEEDED
    calls = []
    for raw, due, token in occurrences(occurrence_id):
        keys = layout.of(raw)
        named = [keys.last_runs, keys.history(raw), keys.failures, keys.queue, keys.recurring]
        named.append(keys.call_prefix)
        args: Args = [raw, due, token, outcome, raw_error, FAILURES_KEPT, keys.wakeup]
        calls.append(Call(scripts.FINISH_RUN, named, args))
    return calls


def runs(layout: Layout, job_id: object, limit: int) -> Call:
    """listRuns-2.lua on a job's runs: its newest, then its list, at most ``limit``."""
    raw = raw_id(job_id)
    keys = layout.of(raw)
    return Call(scripts.LIST_RUNS, [keys.history(raw), keys.last_runs], [max(1, limit), raw])


def failures(layout: Layout, limit: object) -> List[Call]:
    """listRuns-2.lua on each shard's failures: the most recent, at most ``limit`` each."""
    most = FAILURES_KEPT if limit is None else count(limit, "limit", 0, 10**6)
    most = min(max(most, 1), FAILURES_KEPT)
    return [
        Call(scripts.LIST_RUNS, [keys.failures, keys.last_runs], [most, b""])
        for keys in layout.shards
    ]


def details(layout: Layout, job_id: object) -> Call:
    """details-3.lua: one job's due time, data and rule, in one snapshot."""
    raw = raw_id(job_id)
    keys = layout.of(raw)
    return Call(scripts.DETAILS, [keys.queue, keys.job(raw), keys.recurring], [raw])


def forget(keys: Keys, raw_ids: Sequence[bytes], delete: bool = True, runs: bool = False) -> Call:
    """forget-3.lua on the group ``keys``: the data of those of ``raw_ids`` not scheduled.

    Deleted with ``delete``, else only listed (the reply is their ids either way); their
    runs too with ``runs`` (a reshard's move), else they stay for the claims' sweep.
    """
    mode = (b"2" if runs else b"1") if delete else b"0"
    args: Args = [keys.job_prefix, mode, keys.history_prefix, *raw_ids]
    return Call(scripts.FORGET, [keys.queue, keys.last_runs, keys.call_prefix], args)


def forget_jobs(layout: Layout, jobs: Iterable[object], size: int) -> List[Call]:
    """The ``forget`` calls deleting the data of ``jobs`` unless scheduled: per shard, ``size`` ids.

    Each job is a job id (a str) or a :class:`~rache.Job` as a claim handed it out (its id
    as the script sent it). Every one is checked before a call is built.
    """
    if isinstance(jobs, (str, bytes, Mapping)):  # one id or one Job: not its letters or keys
        raise TypeError(
            f"jobs must be an iterable of job ids or Jobs, not a {type(jobs).__name__} "
            "(for one job, pass [job])"
        )
    groups: Dict[int, List[bytes]] = {}
    sharded = layout.count > 1
    for job in jobs:
        raw = job.raw_id if isinstance(job, Job) else raw_id(job)
        groups.setdefault(layout.index_of(raw) if sharded else 0, []).append(raw)
    return [
        forget(layout.shards[index], ids[start : start + size])
        for index, ids in groups.items()
        for start in range(0, len(ids), size)
    ]


def stats(layout: Layout, intervals: object, interval: object) -> List[Call]:
    """stats-3.lua on each shard: how many coming intervals to count, and their length."""
    intervals = count(intervals, "intervals", 0, 1440)
    length = seconds(interval, "interval")
    if not finite(length) or not 0 < length <= MAX_OFFSET_SECONDS:
        raise ValueError(f"interval must be a positive number of seconds, not {shown(interval)}")
    args: Args = [intervals, repr(float(length)).encode()]
    return [Call(scripts.STATS, _stats_keys(keys), args) for keys in layout.shards]


def set_aside(layout: Layout) -> List[Call]:
    """stats-3.lua on each shard without intervals: its reply holds the jobs set aside."""
    return [Call(scripts.STATS, _stats_keys(keys), [0, b"60.0"]) for keys in layout.shards]


def _stats_keys(keys: Keys) -> List[bytes]:
    """The keys of stats-3.lua: the queue, the jobs set aside, the rules."""
    return [keys.queue, keys.aside, keys.recurring]


def clock(layout: Layout) -> Call:
    """stats-3.lua without intervals on the first shard: its reply starts with the server's time.

    Read-only and cheap (a few O(log n) reads of the queue), so the clock needs no script
    of its own; on Redis Cluster it is the clock of the node holding the first shard.
    """
    return Call(scripts.STATS, _stats_keys(layout.shards[0]), [0, b"60.0"])


def recurring_jobs(layout: Layout) -> List[Call]:
    """recurringJobs-1.lua on each shard: the ids of its recurring jobs."""
    return [Call(scripts.RECURRING_JOBS, [keys.recurring], []) for keys in layout.shards]


def recurring_runs(layout: Layout, raw_ids: Sequence[bytes], most: int) -> List[Call]:
    """recurringRuns-3.lua: ``raw_ids``' rules, due times and newest ``most`` runs.

    Grouped by shard, ``HEALTH_BATCH`` ids a call; each call's ids are its args after the
    second (``recurring_ids`` gives them back).
    """
    groups: Dict[int, List[bytes]] = {}
    for raw in raw_ids:
        groups.setdefault(layout.index_of(raw) if layout.count > 1 else 0, []).append(raw)
    calls = []
    for index, ids in groups.items():
        keys = layout.shards[index]
        for first in range(0, len(ids), HEALTH_BATCH):
            args: Args = [keys.history_prefix, max(1, most), *ids[first : first + HEALTH_BATCH]]
            named = [keys.queue, keys.recurring, keys.last_runs]
            calls.append(Call(scripts.RECURRING_RUNS, named, args))
    return calls


def recurring_ids(call: Call) -> List[bytes]:
    """The job ids a ``recurring_runs`` call reads, in its reply's order."""
    return [raw for raw in call.args[2:] if isinstance(raw, bytes)]


class Probe(NamedTuple):
    """The calls of the layout probe (``Scheduler.recorded_shards``); neither writes.

    ``recorded``: layoutCheck-1.lua, the count recorded (``'1'`` when none is); ``unsharded``:
    stats-3.lua on the unsharded queue under the prefix, whose total says whether an
    unsharded schedule holds jobs, to make only when nothing is recorded. None on Redis
    Cluster under a prefix without a hash tag, where no unsharded schedule can live.
    """

    recorded: Call
    unsharded: Optional[Call]


def layout_probe(layout: Layout, cluster: bool) -> Probe:
    """The calls that read the schedule's layout without writing (see ``Probe``)."""
    recorded = Call(scripts.LAYOUT_CHECK, [layout.layout_key], [])
    if cluster and not has_hash_tag(layout.prefix):
        return Probe(recorded, None)
    return Probe(recorded, Call(scripts.STATS, _stats_keys(layout.keys), [0, b"60.0"]))


def layout_check(layout: Layout, cluster: bool) -> Optional[Call]:
    """The check of the schedule's layout that a scheduler makes before its first call.

    Sharded, layout-2.lua: record the count, or return the one recorded; on a single server
    it also refuses to shard over an unsharded schedule holding jobs. Unsharded,
    layoutCheck-1.lua: return the count recorded, writing nothing. None on Redis Cluster
    for an unsharded schedule: its prefix has a hash tag there, and no schedule under a
    prefix with a brace can be sharded, so there is nothing to check.
    """
    if layout.count == 1:
        return None if cluster else layout_probe(layout, cluster).recorded
    # On Redis Cluster the unsharded queue lives in another slot: the layout key stands in.
    unsharded = layout.layout_key if cluster else layout.keys.queue
    return Call(scripts.LAYOUT, [layout.layout_key, unsharded], [layout.count])


# -- live pollers ----------------------------------------------------------------------------


def _poller_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"a poller's {name} must be non-empty text, not {shown(value)}")
    if len(value) > MAX_POLLER_TEXT:
        raise ValueError(f"a poller's {name} is longer than {MAX_POLLER_TEXT} characters")
    return value


def announce(layout: Layout, poller: object, ttl: object) -> Call:
    """announce-1.lua: ``poller`` listed as live for ``ttl`` seconds from now (server clock).

    Its record is JSON (``decode.pollers`` reads it back); the name is the hash field.
    """
    if not isinstance(poller, Poller):
        raise TypeError(f"announce takes a rache.Poller, not {type(poller).__name__}")
    name = _poller_text(poller.name, "name")
    for field in ("kind", "host", "version"):
        _poller_text(getattr(poller, field), field)
    for field in ("pid", "handed_out", "failures"):
        number = getattr(poller, field)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"a poller's {field} must be an int >= 0, not {shown(number)}")
    times = {"started": poller.started, "last_claim": poller.last_claim}
    for field, when in times.items():
        if when is None and field == "last_claim":
            continue
        if isinstance(when, bool) or not isinstance(when, (int, float)):
            raise TypeError(f"a poller's {field} must be Unix seconds, not {shown(when)}")
        if not finite(float(when)):
            raise ValueError(f"a poller's {field} must be finite, not {shown(when)}")
    length = seconds(ttl, "ttl")
    ttl_ms = round(length * 1000) if finite(length) else 0
    if not 1 <= ttl_ms <= MAX_OFFSET_SECONDS * 1000:
        raise ValueError(f"ttl must be a positive number of seconds, not {shown(ttl)}")
    record = {
        "kind": poller.kind,
        "host": poller.host,
        "pid": poller.pid,
        "version": poller.version,
        "started": poller.started,
        "last_claim": poller.last_claim,
        "handed_out": poller.handed_out,
        "failures": poller.failures,
        "ttl": ttl_ms,
    }
    args: Args = [name.encode(), ttl_ms, json.dumps(record, separators=(",", ":")).encode()]
    return Call(scripts.ANNOUNCE, [layout.pollers], args)


def withdraw(layout: Layout, name: object) -> Call:
    """announce-1.lua with a ttl of 0: the poller ``name`` no longer listed."""
    return Call(scripts.ANNOUNCE, [layout.pollers], [_poller_text(name, "name").encode(), 0, b""])


def pollers(layout: Layout) -> Call:
    """pollers-1.lua: the live pollers, read without writing."""
    return Call(scripts.POLLERS, [layout.pollers], [])
