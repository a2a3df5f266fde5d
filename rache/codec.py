"""The sans-IO core: validate and encode each operation's arguments, decode each script's reply.

No function here does I/O, so the sync and asyncio shells are "build, call, parse" and
every rule lives once. Replies are read undecoded (bytes), whatever the client's
``decode_responses`` and protocol, and decoded here by rache 0.3.1's rules.
"""

from __future__ import annotations

import heapq
import logging
import math
import numbers
import zlib
from datetime import timedelta
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from . import recurrence
from .constants import LAYOUT_KEY, MAX_BATCH_SIZE, MAX_OFFSET_SECONDS, MAX_SHARDS, RESERVED_FIELD
from .errors import JobNotFound, ReservedFieldError

logger = logging.getLogger(__name__)

#: A value a job's data may hold when scheduled (None removes the key).
Value = Union[str, bytes, int, float]
#: A value as rache returns it: ASCII decimal integers as int, text as str, other bytes as is.
Decoded = Union[int, str, bytes]


class Job(Dict[str, Any]):
    """A job as rache hands it out: ``{'id': ..., **data}``, plus the due time it was claimed for.

    A dict, so ``job == {'id': ..., **data}`` holds as in rache 0.3.1; the due time rides
    along as an attribute, never as a key that could hide the job's own data.
    """

    __slots__ = ("_due",)
    _due: Optional[bytes]  # the score as the script read it, decoded only when asked

    @property
    def due_at(self) -> Union[int, float, None]:
        """The due time this job was handed out for (Unix seconds), None if unscheduled."""
        raw = getattr(self, "_due", None)
        return None if raw is None else decode_time(raw)

    @property
    def occurrence_id(self) -> str:
        """``<id>:<due time>``, the name of this one occurrence of the job.

        A task queue's job id: a batch handed out twice (a lost reply) cannot enqueue twice.
        """
        return f"{self['id']}:{self.due_at}"


#: Script arguments as sent to Redis.
Args = List[Union[bytes, int]]

#: Precision flags of the Lua scripts: count from the server's whole second or millisecond,
#: or take the value as the due time itself (milliseconds since the epoch).
WHOLE_SECONDS = b"s"
MILLISECONDS = b"ms"
AT = b"at"


class Keys:
    """The Redis keys of one prefix, laid out exactly as rache 0.3.1 did."""

    __slots__ = ("job_prefix", "prefix", "queue", "recurring")

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        raw = _encode_text(prefix, "prefix")
        self.prefix = prefix
        #: ``<prefix>queue``, the sorted set of job ids by due time.
        self.queue = raw + b"queue"
        #: ``<prefix>job:``, to which a job id is appended to name its hash.
        self.job_prefix = raw + b"job:"
        #: ``<prefix>recurring``, the hash of recurrence rules by job id (new in 1.0; no
        #: job hash can have this name, as theirs all start with ``<prefix>job:``).
        self.recurring = raw + b"recurring"

    def job(self, raw_id: bytes) -> bytes:
        """The key of the hash holding the data of the job ``raw_id``."""
        return self.job_prefix + raw_id


# -- validation and encoding ----------------------------------------------------------------


def has_hash_tag(prefix: str) -> bool:
    """Whether ``prefix`` holds a Redis Cluster hash tag of its own (``{...}``, not empty).

    Redis hashes only what is between a key's first ``{`` and the next ``}``: when that lies
    in the prefix, the queue and every job hash of the schedule share one slot.
    """
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1


def tagged(prefix: str) -> str:
    """A hash-tagged version of ``prefix``, for error messages: ``rache:`` -> ``{rache}:``."""
    name = prefix.rstrip(":") or "rache"
    return f"{{{name}}}:"


def check_shards(shards: object) -> int:
    """Check a shard count: an int from 1 to MAX_SHARDS."""
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be an int from 1 to {MAX_SHARDS}, not {shards!r}")
    return shards


def shard_prefixes(prefix: str, shards: int) -> List[str]:
    """The prefix of each shard of a schedule: ``prefix`` itself for one shard.

    With several, shard i is ``<prefix>{<tag>}:``, its hash tag the first ``<i>-<n>`` whose
    slot lies in the i-th of ``shards`` equal ranges of the 16,384 slots: a cluster whose
    masters hold equal slot ranges (as ``redis-cli --cluster create`` makes it) has each
    shard on a master of its own when there are as many shards as masters. Stable: the same
    prefix and count always give the same keys.
    """
    if shards == 1:
        return [prefix]
    if has_hash_tag(prefix):
        raise ValueError(
            f"prefix {prefix!r} has a hash tag, which would put every shard in one slot: "
            "a sharded schedule takes a prefix without one (each shard adds its own), such "
            f"as {prefix.replace('{', '').replace('}', '')!r}"
        )
    prefixes = []
    for i in range(shards):
        low = i * REDIS_CLUSTER_HASH_SLOTS // shards
        high = (i + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
        n = 0
        while not low <= key_slot(f"{i}-{n}".encode()) < high:
            n += 1
        prefixes.append(f"{prefix}{{{i}-{n}}}:")
    return prefixes


def shard_of(raw_id: bytes, shards: int) -> int:
    """The shard of a job: CRC-32 of its id, modulo the count (stable across processes)."""
    return zlib.crc32(raw_id) % shards


def layout_key(prefix: str) -> bytes:
    """``<prefix>layout``: the shard count of a sharded schedule, so that no other reads it."""
    return _encode_text(prefix, "prefix") + LAYOUT_KEY.encode()


def _encode_text(text: str, what: str, key: object = None) -> bytes:
    """UTF-8 of ``text``; ``what`` names it in the error, formatted with ``key`` only then."""
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        name = what.format(key=key)
        raise ValueError(f"{name} cannot be encoded as UTF-8: {exc.reason}") from None


def encode_job_id(job_id: object) -> bytes:
    """Check a job id (a non-empty str) and encode it."""
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str, not {type(job_id).__name__}")
    if not job_id:
        raise ValueError("job_id must not be empty")
    return _encode_text(job_id, "job_id")


def encode_offset(value: object, name: str) -> Tuple[int, bytes]:
    """Turn ``schedule_in`` / ``reschedule_in`` into (milliseconds, precision flag).

    Whole seconds (an int, an integral float or timedelta) count from the server's whole
    second, so due times are integers as in rache 0.3.1; a fraction keeps the millisecond.
    """
    if type(value) is int and -MAX_OFFSET_SECONDS <= value <= MAX_OFFSET_SECONDS:
        return value * 1000, WHOLE_SECONDS  # the common case, before the general checks
    if isinstance(value, timedelta):
        whole = value.days * 86400 + value.seconds
        if value.microseconds == 0:
            return _bounded(whole, value, name) * 1000, WHOLE_SECONDS
        millis = whole * 1000 + round(value.microseconds / 1000)
        _bounded(millis / 1000, value, name)
        return millis, MILLISECONDS
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number of seconds or a datetime.timedelta, "
            f"not {type(value).__name__}"
        )
    if isinstance(value, numbers.Integral):
        return _bounded(int(value), value, name) * 1000, WHOLE_SECONDS
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, not {seconds!r}")
    _bounded(seconds, value, name)
    if seconds.is_integer():
        return int(seconds) * 1000, WHOLE_SECONDS
    return round(seconds * 1000), MILLISECONDS


def _bounded(seconds: Any, value: object, name: str) -> Any:
    if abs(seconds) > MAX_OFFSET_SECONDS:
        raise ValueError(
            f"{name} must be within {MAX_OFFSET_SECONDS:,} seconds of now, not {value!r}"
        )
    return seconds


def encode_limit(limit: object) -> Optional[int]:
    """Check ``limit``: None (no limit) or an int >= 0."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral):
        raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")
    return int(limit)


def check_batch_size(batch_size: object) -> int:
    """Check a Scheduler's batch size: an int from 1 to MAX_BATCH_SIZE."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, not {type(batch_size).__name__}")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH_SIZE}, not {batch_size}")
    return batch_size


def encode_data(data: Mapping[str, object]) -> Tuple[List[bytes], List[bytes]]:
    """Split job data into (field, value, ...) pairs to set and fields to delete (value None)."""
    if RESERVED_FIELD in data:
        raise ReservedFieldError(f"{RESERVED_FIELD!r} is reserved for the job's id, not data")
    sets: List[bytes] = []
    deletes: List[bytes] = []
    for key, value in data.items():
        field = _encode_text(key, "job data key {key!r}", key)
        if value is None:
            deletes.append(field)
        else:
            sets.append(field)
            sets.append(encode_value(key, value))
    return sets, deletes


def encode_value(key: str, value: object) -> bytes:
    """Encode one data value: str, bytes, int or finite float; anything else names the key."""
    kind = type(value)
    if kind is str:  # the common cases by exact type, then subclasses by isinstance
        try:
            return value.encode()  # type: ignore[attr-defined,no-any-return]
        except UnicodeEncodeError:
            pass  # the error comes from the general path below
    elif kind is int:
        return b"%d" % value  # type: ignore[str-format]
    elif kind is bytes:
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        return _encode_text(value, "job data {key!r}", key)
    if isinstance(value, bytes):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value)).encode()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"job data {key!r} must be a finite float, not {value!r}")
        return repr(value).encode()
    raise TypeError(
        f"job data {key!r} must be str, bytes, int, float or None (to remove it), "
        f"not {type(value).__name__}"
    )


def schedule_args(job_id: object, schedule_in: object, data: Mapping[str, object]) -> Args:
    """The arguments of schedule-2.lua (after its keys), or a clear error on bad input."""
    raw_id = encode_job_id(job_id)
    millis, precision = encode_offset(schedule_in, "schedule_in")
    sets, deletes = encode_data(data)
    return [raw_id, millis, precision, len(sets) // 2, *sets, *deletes]


def encode_due_at(value: object) -> Tuple[int, bytes]:
    """A due time given as a Unix timestamp (seconds), kept to the millisecond."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"due time must be a Unix timestamp, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or abs(seconds) > MAX_OFFSET_SECONDS:
        raise ValueError(f"due time must be a finite Unix timestamp, not {value!r}")
    return round(seconds * 1000), AT


def bulk_job_args(index: int, job: object, at: bool = False) -> Args:
    """One job of scheduleBulk-1.lua: id, offset, precision, n set, n deleted, fields...

    ``job`` is ``(job_id, schedule_in)`` or ``(job_id, schedule_in, data)``, or with
    ``at`` ``(job_id, due time as a Unix timestamp[, data])``; errors say which job (by
    position) was wrong.
    """
    if not isinstance(job, tuple) or len(job) not in (2, 3):
        second = "due time" if at else "schedule_in"
        raise TypeError(
            f"jobs[{index}] must be a (job_id, {second}) or (job_id, {second}, data) "
            f"tuple, not {type(job).__name__}"
        )
    data = job[2] if len(job) == 3 else {}
    try:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, not {type(data).__name__}")
        raw_id = encode_job_id(job[0])
        millis, precision = encode_due_at(job[1]) if at else encode_offset(job[1], "schedule_in")
        sets, deletes = encode_data(data)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"jobs[{index}]: {exc}") from None
    return [raw_id, millis, precision, len(sets) // 2, len(deletes), *sets, *deletes]


def schedule_recurring_args(
    job_id: object,
    every: object,
    cron: object,
    timezone: object,
    misfire: object,
    grace: object,
    jitter: object,
    start: object,
    data: object,
) -> Args:
    """The arguments of scheduleRecurring-3.lua (after its keys), or a clear error."""
    raw_id = encode_job_id(job_id)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a mapping, not {type(data).__name__}")
    rule = recurrence.make_rule(str(job_id), every, cron, timezone, misfire, grace, jitter)
    start_ms = recurrence.encode_start(start)
    sets, deletes = encode_data(data)
    kind, offset = (b"e", rule.start_ms) if rule.kind == "every" else (b"c", 0)
    first: Union[bytes, int] = b"" if start_ms is None else start_ms
    return [raw_id, kind, first, rule.encode_tail(), offset, len(sets) // 2, *sets, *deletes]


def claim_args(
    keys: Keys,
    count: int,
    cutoff: bytes,
    reschedule: Optional[Tuple[int, bytes]],
    lease_ms: int = recurrence.DEFAULT_LEASE_MS,
) -> Args:
    """The arguments of claim-2.lua: claim up to ``count`` jobs due by ``cutoff``."""
    if reschedule is None:
        return [keys.job_prefix, count, cutoff, b"", b"", lease_ms]
    return [keys.job_prefix, count, cutoff, reschedule[0], reschedule[1], lease_ms]


# -- decoding -------------------------------------------------------------------------------


def decode_text(raw: bytes) -> Union[str, bytes]:
    """UTF-8 text as str; other bytes as they are (rache 0.2.1's rule)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def decode_value(raw: bytes) -> Decoded:
    """ASCII decimal integers as int, UTF-8 text as str, other bytes as they are.

    Only ASCII digits count: '²' is text, where rache 0.3.1's ``str.isdigit()`` crashed.
    """
    if raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit()):
        try:
            return int(raw)
        except ValueError:  # more digits than int() converts: keep the text
            pass
    return decode_text(raw)


def decode_time(raw: bytes) -> Union[int, float]:
    """A due time: int when whole seconds (as rache 0.3.1 returned it), else float."""
    seconds = float(raw)
    return int(seconds) if seconds.is_integer() else seconds


#: Field names already decoded: jobs of one schedule share a few, so a dict lookup
#: replaces a decode on the hot path. Bounded, in case names are unbounded.
_NAMES: Dict[bytes, Any] = {}
_NAMES_MAX = 4096


def _name(raw: bytes) -> Any:
    name = _NAMES.get(raw)
    if name is None:
        name = decode_text(raw)
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[raw] = name
    return name


def _jobs(it: Iterator[Any]) -> List[Job]:
    """Decode jobs from a flat reply's iterator: id, due time, n, n field/value pairs, ...

    Every claim's hot path: the rules of decode_text and decode_value have their common
    cases inlined, and nothing but the jobs themselves is allocated (no list per job, so
    the cyclic garbage collector is not set off by a large batch).
    """
    names_get = _NAMES.get
    new_job = Job
    jobs: List[Job] = []
    for raw_id in it:
        due = next(it)
        count = next(it)
        try:
            job_id: Any = raw_id.decode()
        except UnicodeDecodeError:
            job_id = raw_id
        job = new_job()
        job["id"] = job_id
        job._due = due
        if count:
            for field, raw in zip(it, it):
                name = names_get(field) or _name(field)
                if raw.isdigit():
                    job[name] = int(raw) if len(raw) < 4000 else decode_value(raw)
                elif raw[:1] != b"-":
                    try:
                        job[name] = raw.decode()
                    except UnicodeDecodeError:
                        job[name] = raw
                else:
                    job[name] = decode_value(raw)
                count -= 1
                if not count:
                    break
            job["id"] = job_id  # the id wins over any data of that name
        jobs.append(job)
    return jobs


class Claimed(NamedTuple):
    """One claimed batch, decoded."""

    #: The call's cutoff, to pass back to its next batch.
    cutoff: bytes
    #: The due time the batch's jobs were rescheduled to, None if removed.
    new_due: Optional[bytes]
    #: The earliest due time left in the schedule after the claim, None if it is empty.
    next_due: Optional[bytes]
    #: None if no job of the batch recurs, else [claimed count, id, kind, time, rule, ...]
    recurring: Optional[Sequence[Any]]
    #: The jobs, earliest first, as handed to the user.
    jobs: List[Job]
    #: The script's flat reply, from which to put back the jobs never handed out.
    reply: Sequence[Any]


def parse_claim(reply: Sequence[Any]) -> Claimed:
    """Decode claim-2.lua's reply: cutoff, new due time, next due time, recurring, the jobs."""
    it = iter(reply)
    cutoff, new_due, next_due, recurring = next(it), next(it), next(it), next(it)
    return Claimed(cutoff, new_due, next_due, recurring, _jobs(it), reply)


#: What release-2.lua needs to put back one handed-out job: ``(b"p", id, due before the
#: claim, b"1" if it had data)`` for a plain job, ``(b"r", id, the occurrence handed out,
#: the due time the claim gave it)`` for a recurring one; None: cannot be put back.
Record = Optional[Tuple[bytes, bytes, bytes, bytes]]


def _recurring_info(batch: Claimed) -> Dict[bytes, Tuple[bytes, bytes, bytes]]:
    """Map each recurring job id of a batch to (kind, time, rule)."""
    assert batch.recurring is not None
    it = iter(batch.recurring[1:])
    return {raw_id: (kind, time, rule) for raw_id, kind, time, rule in zip(it, it, it, it)}


def _records(batch: Claimed) -> List[Record]:
    """The put-back record of each job of a batch, as claimed (a cron job's: None)."""
    info = {} if batch.recurring is None else _recurring_info(batch)
    records: List[Record] = []
    reply, i = batch.reply, 4
    while i < len(reply):
        raw_id, due, count = reply[i], reply[i + 1], reply[i + 2]
        entry = info.get(raw_id)
        if entry is None:
            records.append((b"p", raw_id, due, b"1" if count else b"0"))
        elif entry[0] == b"e":
            records.append((b"r", raw_id, due, entry[1]))
        else:
            records.append(None)  # leased: back when its lease ends, see advance-2.lua
        i += 3 + 2 * count
    return records


def release_args(
    keys: Keys, batch: Claimed, given: int, records: Optional[List[Record]] = None
) -> Optional[Args]:
    """The arguments of release-2.lua: put back the jobs of ``batch`` after the first ``given``.

    ``records`` are those of the jobs handed out (by default, every job of the reply).
    """
    left = (_records(batch) if records is None else records)[given:]
    plain = [record for record in left if record is not None and record[0] == b"p"]
    recurring = [record for record in left if record is not None and record[0] == b"r"]
    if not plain and not recurring:
        return None
    args: Args = [keys.job_prefix, b"" if batch.new_due is None else batch.new_due, len(plain)]
    for record in plain + recurring:
        args += record[1:]
    return args


def parse_details(job_id: str, reply: Sequence[Any]) -> Job:
    """Decode details-3.lua's reply into ``{'id', 'schedule_at', **data}``.

    A recurring job also has ``recurring`` (its rule) and ``next_occurrences`` (the next
    five occurrences from the time its rule resumes, Unix seconds).
    """
    due, data, raw_rule = reply
    if due is None and not data and raw_rule is None:
        raise JobNotFound(job_id)
    job = Job(id=job_id, schedule_at=None if due is None else decode_time(due))
    job._due = due
    if raw_rule is not None:
        rule, pending, lease = recurrence.decode_rule(raw_rule)
        job["recurring"] = rule.describe()
        resume = pending if pending and due is not None and float(due) == float(lease) else due
        if resume is not None:
            start = recurrence.time_ms(resume if isinstance(resume, bytes) else resume.encode())
            upcoming = recurrence.upcoming(rule, start, 5)
            job["next_occurrences"] = [decode_time(recurrence.time_text(t)) for t in upcoming]
    (decoded,) = _jobs(iter((b"", due, len(data) // 2, *data)))
    for key, value in decoded.items():
        job.setdefault(key, value)  # data never hides the id or the due time
    return job


def page_args(count: int, anchor: Tuple[bytes, bytes]) -> Args:
    """The arguments of page-1.lua: up to ``count`` entries after ``anchor`` (id, due)."""
    return [count, anchor[0], anchor[1]]


# -- the iterations of pending_jobs() and scheduled_jobs(), sans I/O -------------------------


class Claim:
    """One pending_jobs() call as a series of claim-2.lua calls, without the calls themselves.

    A shell asks ``next_args()`` for the next script call (None: done) on the queue of
    ``keys``, hands its reply to ``take()`` for the jobs; if ``advance_args()`` then gives
    arguments (the batch leased cron jobs), it runs advance-2.lua with them and hands its
    reply to ``advanced()`` for the jobs instead. On an early stop it asks
    ``release_args(left)`` for the call that puts back the ``left`` jobs of the last batch
    it never handed out. A sharded schedule's call visits each shard in turn from ``start``,
    until ``limit`` jobs (in all) are claimed.
    """

    def __init__(
        self,
        shards: Sequence[Keys],
        batch_size: int,
        reschedule: Optional[Tuple[int, bytes]],
        limit: Optional[int],
        start: int = 0,
        lease_ms: int = recurrence.DEFAULT_LEASE_MS,
    ) -> None:
        self.shards = shards
        self.index = start
        self.keys = shards[start]  # the shard being claimed from
        self.batch_size = batch_size
        self.reschedule = reschedule
        self.remaining = limit
        self.lease_ms = lease_ms
        self.cutoff = b""  # a shard's first batch reads the clock; the next ones reuse it
        self.count = 0
        self.done = False
        self.batch: Optional[Claimed] = None
        self._visited = 1
        #: per shard claimed from: its last cutoff and head (its master's clock, both)
        self._heads: Dict[int, Tuple[bytes, Optional[bytes]]] = {}
        #: The put-back records of the jobs handed out, when the batch held recurring jobs.
        self.records: Optional[List[Record]] = None
        #: Jobs of the batch with their records, and which advance-2.lua entry each awaits.
        self._held: List[Tuple[Job, Record, Optional[int]]] = []
        self._advance: Args = []

    @property
    def next_due(self) -> Optional[bytes]:
        """The earliest due time left in the shards claimed from (None: all empty)."""
        heads = [head for _, head in self._heads.values() if head is not None]
        return min(heads, key=float) if heads else None

    def next_wait(self) -> Optional[float]:
        """Seconds until the earliest due time left in the shards claimed from (None: empty).

        Each shard's head less its own cutoff: times of one master's clock, never two.
        """
        waits = [float(head) - float(cut) for cut, head in self._heads.values() if head]
        return min(waits) if waits else None

    def next_args(self) -> Optional[Args]:
        """The arguments of the next claim-2.lua call, or None when the call is over."""
        if self.remaining is not None and self.remaining <= 0:
            return None
        if self.done:  # this shard has nothing more due: on to the next, if any
            if self._visited >= len(self.shards):
                return None
            self._visited += 1
            self.index = (self.index + 1) % len(self.shards)
            self.keys = self.shards[self.index]
            self.cutoff, self.done = b"", False
        size = self.batch_size if self.remaining is None else min(self.batch_size, self.remaining)
        self.count = size
        self.batch = None
        self.records = None
        return claim_args(self.keys, size, self.cutoff, self.reschedule, self.lease_ms)

    def take(self, reply: Sequence[Any]) -> List[Job]:
        """The jobs of a claim-2.lua reply; a short batch ends the shard's part of the call."""
        batch = self.batch = parse_claim(reply)
        self.cutoff = batch.cutoff
        self._heads[self.index] = (batch.cutoff, batch.next_due)
        if batch.recurring is None:
            self.done = len(batch.jobs) < self.count
            return self._handed(batch.jobs)
        self.done = batch.recurring[0] < self.count
        info = _recurring_info(batch)
        now = recurrence.now_ms(batch.cutoff)
        self._held, self._advance = [], []
        for job, record in zip(batch.jobs, _records(batch)):
            if record is not None:
                self._held.append((job, record, None))
                continue
            try:
                self._hold_cron(job, info, now)
            except Exception:  # no croniter here, a zone this host lacks: not this poller's
                logger.warning(
                    "rache: cannot evaluate the cron rule of job %r here; it stays leased "
                    "for another poller to take up",
                    job["id"],
                    exc_info=True,
                )
        if self._advance:
            return []
        return self.advanced([])

    def _hold_cron(self, job: Job, info: Dict[bytes, Tuple[bytes, bytes, bytes]], now: int) -> None:
        """Decide a leased cron job's occurrence and next time; hold it for advance-2.lua."""
        raw_id = _raw_id(job)
        _, lease, raw_rule = info[raw_id]
        rule, _, _ = recurrence.decode_rule(raw_rule)
        pending = recurrence.time_ms(job._due or b"0")
        run, following = recurrence.decide(rule, pending, now)
        moved = recurrence.time_text(following)
        record: Record = None
        if run is not None:
            job._due = recurrence.time_text(run)
            record = (b"r", raw_id, job._due, moved)
        index = len(self._advance) // 3
        self._advance += (raw_id, lease, moved)
        self._held.append((job, record, index))

    def advance_args(self) -> Optional[Args]:
        """The arguments of advance-2.lua for the cron jobs the last batch leased, if any."""
        return self._advance or None

    def advanced(self, reply: Sequence[Any]) -> List[Job]:
        """The jobs of the batch to hand out, once advance-2.lua said which leases held.

        A cron job goes out only if its lease held and the misfire policy runs its
        occurrence; a lease that did not hold belongs to a newer claim, which hands it out.
        """
        jobs: List[Job] = []
        records: List[Record] = []
        for job, record, index in self._held:
            if index is not None and (record is None or not int(reply[index])):
                continue
            jobs.append(job)
            records.append(record)
        # The claim read the head with these jobs leased; moved, one may now come first.
        cutoff, head = self._heads[self.index]
        for index, moved in enumerate(self._advance[2::3]):
            if int(reply[index]) and (head is None or float(moved) < float(head)):
                head = moved  # type: ignore[assignment]
        self._heads[self.index] = (cutoff, head)
        self._held, self._advance = [], []
        self.records = records
        return self._handed(jobs)

    def unadvanced(self) -> List[Job]:
        """The jobs of the batch that await no advance: to put back when the advance failed.

        Its cron jobs stay leased, for the next claim after the lease to take up again.
        """
        return self.advanced([0] * (len(self._advance) // 3))

    def _handed(self, jobs: List[Job]) -> List[Job]:
        if self.remaining is not None:
            self.remaining -= len(jobs)
        return jobs

    def release_args(self, left: int) -> Optional[Args]:
        """The release-2.lua arguments that put back the last ``left`` jobs of the batch."""
        if not left or self.batch is None:
            return None
        records = self.records if self.records is not None else _records(self.batch)
        return release_args(self.keys, self.batch, len(records) - left, records)


def _raw_id(job: Job) -> bytes:
    """A job's id as the script sent it (a str id was UTF-8; bytes ids stayed bytes)."""
    job_id = job["id"]
    return job_id.encode() if isinstance(job_id, str) else bytes(job_id)


class Pages:
    """One scheduled_jobs() call as a series of page-1.lua calls, without the calls."""

    def __init__(self, count: int, with_times: bool) -> None:
        self.count = count
        self.with_times = with_times
        self.anchor = (b"", b"")
        self.done = False

    def next_args(self) -> Optional[Args]:
        """The arguments of the next page-1.lua call, or None when every page was read."""
        return None if self.done else page_args(self.count, self.anchor)

    def take(self, reply: Sequence[Any]) -> List[Any]:
        """The ids, or (id, due time) pairs, of one page (id, due, id, due, ...)."""
        self.done = len(reply) < 2 * self.count
        if not self.done:
            self.anchor = (reply[-2], reply[-1])  # always after the previous one
        it = iter(reply)
        if self.with_times:
            return [(decode_text(raw_id), decode_time(due)) for raw_id, due in zip(it, it)]
        return [decode_text(raw_id) for raw_id, _ in zip(it, it)]


class Exports(Pages):
    """One export_jobs() call as a series of export-1.lua calls: pages with each job's data."""

    def __init__(self, keys: Keys, count: int) -> None:
        super().__init__(count, True)
        self.keys = keys

    def next_args(self) -> Optional[Args]:
        """The arguments of the next export-1.lua call, or None when every page was read."""
        return None if self.done else [self.keys.job_prefix, *page_args(self.count, self.anchor)]

    def take(self, reply: Sequence[Any]) -> List[Any]:
        """(id, due time, data) of each job of one page."""
        jobs = _jobs(iter(reply))
        exported, i, last = [], 0, 0
        for job in jobs:
            last = i
            exported.append((job.pop("id"), decode_time(reply[i + 1]), job))
            i += 3 + 2 * reply[i + 2]
        self.done = len(jobs) < self.count
        if not self.done:
            self.anchor = (reply[last], reply[last + 1])
        return exported


class Merged:
    """scheduled_jobs() or export_jobs() across the shards of a schedule, sans I/O.

    Each shard's ``Pages`` (with due times) are read as needed and merged into one list,
    earliest first: a shell asks ``next_call()`` for a page to read (None: read ``items()``,
    which are known to come next), feeds its reply to ``take()``, and stops when
    ``items()`` is empty.
    """

    def __init__(
        self, shards: Sequence[Keys], pages: Sequence[Pages], transform: Any = None
    ) -> None:
        self.shards, self.pages, self.transform = shards, pages, transform
        self._buffers: List[List[Any]] = [[] for _ in pages]
        self._heap: List[Tuple[Any, int, int, Any]] = []
        self._hungry = set(range(len(pages)))  # shards whose next entry is still unread
        self._reading = 0
        self._seq = 0

    def next_call(self) -> Optional[Tuple[Keys, Args]]:
        """The shard's keys and arguments of the next page to read, or None."""
        for index in self._hungry:
            args = self.pages[index].next_args()
            if args is None:  # cannot happen: a done shard is never hungry
                raise AssertionError("a finished shard has no page to read")
            self._reading = index
            return self.shards[index], args
        return None

    def take(self, reply: Sequence[Any]) -> None:
        """Take the page read for the shard ``next_call()`` named."""
        index = self._reading
        self._buffers[index] = self.pages[index].take(reply)[::-1]  # popped from the end
        self._refill(index)

    def items(self) -> List[Any]:
        """The entries known to come next, earliest first; empty when all are read."""
        out = []
        while not self._hungry and self._heap:
            _, _, index, item = heapq.heappop(self._heap)
            out.append(item if self.transform is None else self.transform(item))
            self._refill(index)
        return out

    def _refill(self, index: int) -> None:
        buffer = self._buffers[index]
        if buffer:
            item = buffer.pop()
            self._seq += 1
            heapq.heappush(self._heap, (item[1], self._seq, index, item))
            self._hungry.discard(index)
        elif self.pages[index].done:
            self._hungry.discard(index)
        else:
            self._hungry.add(index)


class Stats(NamedTuple):
    """The figures of a schedule at one instant (times are Unix seconds, server clock)."""

    #: the server's time of the snapshot
    now: float
    #: jobs scheduled
    total: int
    #: jobs due now (at or before ``now``)
    due: int
    #: the earliest due time, None for an empty schedule
    earliest: Optional[Union[int, float]]
    #: the first due time after ``now``, None if nothing is to come
    next_due: Optional[Union[int, float]]
    #: jobs falling due in each coming interval: (now, now + interval], ...
    coming: List[int]
    #: the length of those intervals, seconds
    interval: float

    @property
    def lag(self) -> float:
        """How overdue the oldest due job is, seconds (0 when none is due)."""
        if self.earliest is None or self.earliest > self.now:
            return 0.0
        return self.now - self.earliest


def stats_args(intervals: int, interval: float) -> Args:
    """The arguments of stats-1.lua: how many coming intervals to count, and their length."""
    if isinstance(intervals, bool) or not isinstance(intervals, int) or not 0 <= intervals <= 1440:
        raise ValueError(f"intervals must be an int from 0 to 1440, not {intervals!r}")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
    return [intervals, repr(float(interval)).encode()]


def parse_stats(reply: Sequence[Any], interval: float) -> Stats:
    """Decode stats-1.lua's reply."""
    now, total, due, earliest, next_due, *coming = reply
    return Stats(
        now=float(now),
        total=int(total),
        due=int(due),
        earliest=None if earliest is None else decode_time(earliest),
        next_due=None if next_due is None else decode_time(next_due),
        coming=[int(n) for n in coming],
        interval=float(interval),
    )


def merge_stats(shards: Sequence[Stats]) -> Stats:
    """The figures of a sharded schedule from its shards' (each by its own node's clock)."""
    if len(shards) == 1:
        return shards[0]
    earliest = [s.earliest for s in shards if s.earliest is not None]
    next_due = [s.next_due for s in shards if s.next_due is not None]
    return Stats(
        now=max(s.now for s in shards),
        total=sum(s.total for s in shards),
        due=sum(s.due for s in shards),
        earliest=min(earliest) if earliest else None,
        next_due=min(next_due) if next_due else None,
        coming=[sum(counts) for counts in zip(*(s.coming for s in shards))],
        interval=shards[0].interval,
    )
