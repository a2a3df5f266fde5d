"""Decode the scripts' replies by rache 0.3.1's rules.

Replies are read undecoded (bytes), whatever the client's ``decode_responses`` and
protocol, so one set of rules serves every client: ASCII decimal integers come back as
int, UTF-8 text as str, other bytes as they are.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import recurrence, rules, wire
from .errors import JobNotFound
from .models import Decoded, Job, Poller, Run, SetAside, Stats, text
from .wire import decode_time


def ids(raw_ids: Sequence[bytes]) -> List[Union[str, bytes]]:
    """Job ids as rache returns them (``text``): str, or bytes when not UTF-8."""
    return [text(raw) for raw in raw_ids]


def value(raw: bytes) -> Decoded:
    """ASCII decimal integers as int, UTF-8 text as str, other bytes as they are.

    Only ASCII digits count: '²' is text, where rache 0.3.1's ``str.isdigit()`` crashed.
    """
    if raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit()):
        try:
            return int(raw)
        except ValueError:  # more digits than int() converts: keep the text
            pass
    return text(raw)


#: Field names already decoded: jobs of one schedule share a few, so a dict lookup
#: replaces a decode on the hot path. Bounded, in case names are unbounded.
_NAMES: Dict[bytes, Any] = {}
_NAMES_MAX = 4096


def _name(raw: bytes) -> Any:
    name = _NAMES.get(raw)
    if name is None:
        name = text(raw)
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[raw] = name
    return name


def jobs(it: Iterator[Any]) -> List[Job]:
    """Decode jobs from a flat reply's iterator: id, due time, n, n field/value pairs, ...

    Every claim's hot path: the rules of ``text`` and ``value`` have their common cases
    inlined, and nothing but the jobs themselves is allocated (no list per job, so the
    cyclic garbage collector is not set off by a large batch).
    """
    names_get = _NAMES.get
    new_job = Job
    out: List[Job] = []
    for raw_id in it:
        due = next(it)
        count = next(it)
        try:
            job_id: Any = raw_id.decode()
        except UnicodeDecodeError:
            job_id = raw_id
        job = new_job()
        job["id"] = job_id
        job.raw_due = due
        if count:
            for field, raw in zip(it, it):
                name = names_get(field) or _name(field)
                if raw.isdigit():
                    job[name] = int(raw) if len(raw) < 4000 else value(raw)
                elif raw[:1] != b"-":
                    try:
                        job[name] = raw.decode()
                    except UnicodeDecodeError:
                        job[name] = raw
                else:
                    job[name] = value(raw)
                count -= 1
                if not count:
                    break
            job["id"] = job_id  # the id wins over any data of that name
        out.append(job)
    return out


def _ms(raw: bytes) -> Optional[float]:
    return None if not raw else int(raw) / 1000


def run(raw_id: bytes, record: bytes, now_ms: int) -> Run:
    """One run record (README.md, "Run history") as a :class:`~rache.Run`.

    A running run past its deadline reads ``unknown`` (by the server's clock, ``now_ms``).
    """
    state, token, fields = wire.split_run(record)
    due, claimed, deadline, attempts, finished, name, error = fields
    job_id: Any = text(raw_id)  # as Job.occurrence_id writes it
    occurrence = f"{job_id}:{decode_time(due)}"
    if token:
        occurrence += f":{token.hex()}"
    shown = wire.RUN_STATES[state]
    if state == wire.RUNNING and deadline and int(deadline) < now_ms:
        shown = "unknown"
    return Run(
        occurrence_id=occurrence,
        job_id=job_id,
        due=decode_time(due),
        claimed_at=_ms(claimed),
        claimed_by=name.decode("utf-8", "replace") if name else None,
        state=shown,
        finished_at=_ms(finished),
        error=error.decode("utf-8", "replace") if error else None,
        attempts=int(attempts or 0),
        deadline=_ms(deadline),
    )


def runs(raw_id: bytes, reply: Sequence[Any]) -> List[Run]:
    """listRuns-2.lua's reply on a job's history: its runs, newest first."""
    now = int(reply[0])
    return [run(raw_id, record, now) for record in reply[1:]]


def failures(replies: Sequence[Sequence[Any]], limit: Optional[int]) -> List[Run]:
    """listRuns-2.lua's replies on each shard's failures, merged newest first (by finish)."""
    found: List[Run] = []
    for reply in replies:
        now = int(reply[0])
        for entry in reply[1:]:
            length, _, rest = entry.partition(b":")
            size = int(length)
            found.append(run(rest[:size], rest[size:], now))
    found.sort(key=lambda failed: failed.finished_at or 0.0, reverse=True)
    return found if limit is None else found[:limit]


class RecurringReading(NamedTuple):
    """recurringRuns-3.lua's reading of one job: its raw id, rule, due time and newest runs."""

    raw_id: bytes
    #: the stored rule (None: the job is no longer recurring) and the rule decoded
    rule: Optional[bytes]
    placed: Optional[rules.Placed]
    #: its due time, ms (None: not scheduled)
    due_ms: Optional[int]
    runs: List[Run]


def recurring_runs(
    raw_ids: Sequence[bytes], reply: Sequence[Any]
) -> Tuple[int, List[RecurringReading]]:
    """recurringRuns-3.lua's reply on ``raw_ids``: the server's now (ms), each job's reading.

    A rule that does not decode (another program's value) reads as no rule.
    """
    now = int(reply[0])
    found = []
    for raw, entry in zip(raw_ids, reply[1:]):
        raw_rule, due, *records = entry
        placed: Optional[rules.Placed] = None
        if raw_rule is not None:
            try:
                placed = rules.decode(raw_rule)[0]
            except (ValueError, KeyError):  # not a rule, or a zone this host lacks
                placed = None
        due_ms = None if due is None else wire.time_ms(due)
        runs = [run(raw, record, now) for record in records]
        found.append(RecurringReading(raw, raw_rule, placed, due_ms, runs))
    return now, found


def details(job_id: str, reply: Sequence[Any]) -> Job:
    """details-3.lua's reply as ``{'id', 'schedule_at', **data}``.

    A recurring job also has ``recurring`` (its rule) and ``next_occurrences`` (the next
    five occurrences from the time its rule resumes, Unix seconds).
    """
    due, data, raw_rule = reply
    if due is None and not data and raw_rule is None:
        raise JobNotFound(job_id)
    job = Job(id=job_id, schedule_at=None if due is None else decode_time(due))
    job.raw_due = due
    if raw_rule is not None:
        try:
            rule, pending, lease = rules.decode(raw_rule)
        except ValueError:  # a rule a claim sets aside (README.md, "Set-aside jobs")
            job["recurring"] = f"a rule that does not parse: {_rule_text(raw_rule)!r}"
            return _with_data(job, due, data)
        job["recurring"] = rule.describe()
        resume = pending if pending and due is not None and float(due) == float(lease) else due
        if resume is not None:
            start = wire.time_ms(resume if isinstance(resume, bytes) else resume.encode())
            upcoming = recurrence.upcoming(rule, start, 5)
            job["next_occurrences"] = [decode_time(wire.time_text(t)) for t in upcoming]
    return _with_data(job, due, data)


def _with_data(job: Job, due: Optional[bytes], data: Sequence[bytes]) -> Job:
    (decoded,) = jobs(iter((b"", due, len(data) // 2, *data)))
    for key, item in decoded.items():
        job.setdefault(key, item)  # data never hides the id or the due time
    return job


def stats(reply: Sequence[Any], interval: float) -> Stats:
    """stats-3.lua's reply."""
    now, total, due, earliest, next_due, aside, *coming = reply
    return Stats(
        now=float(now),
        total=int(total),
        due=int(due),
        earliest=None if earliest is None else decode_time(earliest),
        next_due=None if next_due is None else decode_time(next_due),
        coming=[int(n) for n in coming],
        interval=float(interval),
        set_aside=tuple(set_aside(aside)),
    )


def set_aside(aside: Sequence[Any]) -> List[SetAside]:
    """The jobs set aside in stats-3.lua's reply (its 6th item): id, raw rule, due time had."""
    it = iter(aside)
    return [
        SetAside(text(raw_id), _rule_text(rule), decode_time(due))
        for raw_id, due, rule in zip(it, it, it)
    ]


def _rule_text(raw: bytes) -> str:
    """A stored rule shown as text, whatever bytes it holds."""
    return raw.decode("utf-8", "backslashreplace")


def clock(reply: Sequence[Any]) -> float:
    """The server's time (Unix seconds) from stats-3.lua's reply (``encode.clock``)."""
    return float(reply[0])


def recorded_shards(recorded: bytes, unsharded: Optional[Sequence[Any]]) -> Optional[int]:
    """The layout probe's answer from its replies (``encode.Probe``).

    The count recorded, if any (more than 1: only a sharded schedule records one); else 1
    when the unsharded queue holds jobs; else None (nothing there fixes a shard count).
    """
    count = int(recorded)
    if count != 1:
        return count
    if unsharded is not None and int(unsharded[1]) > 0:
        return 1
    return None


def merged_stats(shards: Sequence[Stats]) -> Stats:
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
        set_aside=tuple(job for s in shards for job in s.set_aside),
    )


def pollers(reply: Sequence[Any]) -> List[Poller]:
    """pollers-1.lua's reply: the live pollers, by name.

    A record this version cannot read (written by a later one, say) is skipped, not raised:
    a listing must not fail for one entry.
    """
    found: List[Poller] = []
    it = iter(reply[1:])
    for raw_name, raw_expiry, raw_record in zip(it, it, it):
        try:
            record = json.loads(raw_record)
            expires = int(raw_expiry) / 1000
            ttl = int(record["ttl"]) / 1000
            last_claim = record["last_claim"]
            found.append(
                Poller(
                    name=str(text(raw_name)),
                    kind=str(record["kind"]),
                    host=str(record["host"]),
                    pid=int(record["pid"]),
                    version=str(record["version"]),
                    started=float(record["started"]),
                    last_claim=None if last_claim is None else float(last_claim),
                    handed_out=int(record["handed_out"]),
                    failures=int(record["failures"]),
                    announced=expires - ttl,
                    expires=expires,
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda poller: poller.name)
