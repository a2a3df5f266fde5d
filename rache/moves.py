"""Moving a schedule to another shard count, as flows without I/O (``Scheduler.reshard``).

A reshard reads each old shard's jobs page by page (export-3.lua), copies those whose shard
changes with everything they have (restoreBulk-4.lua: the very score, data bytes, run token
and rule), then removes them where they were (deleteBulk-5.lua). Data without a schedule
entry (a claim without ``reschedule_in`` leaves it) is found by SCAN, which the shell runs
(``pattern``), read job by job (details-3.lua), copied (restoreBulk-4.lua, without a due
time) and removed where it was (forget-3.lua, which keeps it if the job was scheduled again
meanwhile). Each flow has the protocol of ``rache.pages``::

    while (call := flow.next_call()) is not None:
        flow.take(run(call))
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Protocol, Sequence

from . import encode, pages, scripts, wire
from .errors import ConfigurationError
from .keys import Keys, Layout
from .scripts import Args, Call


class Flow(Protocol):
    """What the shells drive: script calls, each reply taken before the next call."""

    def next_call(self) -> Optional[Call]:
        """The next script call, or None when the flow is over."""

    def take(self, reply: Any) -> None:
        """Take the reply of ``next_call()``'s call."""


def pattern(keys: Keys) -> bytes:
    """The SCAN pattern of the job hashes under ``keys``: its prefix's glob characters escaped."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", keys.job_prefix) + b"*"


def scan_refused(what: str, error: Exception) -> ConfigurationError:
    """The error for a user that may not SCAN (an ACL), naming the fix."""
    return ConfigurationError(
        f"{what} lists the job hashes with SCAN, which this Redis user may not run "
        f"({error}): run it as a user with +scan (README's ACL line has no SCAN)"
    )


def raw_ids(keys: Keys, found: Sequence[Any]) -> List[bytes]:
    """The job ids of the job hashes that SCAN found under ``keys`` (bytes or str keys)."""
    start = len(keys.job_prefix)
    return [(key if isinstance(key, bytes) else key.encode())[start:] for key in found]


class Reshard:
    """A schedule recorded in ``recorded`` shards, moved to ``target``'s count.

    :param target: the layout to move to.
    :param recorded: the shard count the schedule is laid out in now.
    :param size: the most jobs per page read.
    """

    def __init__(self, target: Layout, recorded: int, size: int) -> None:
        self.target = target
        #: The layout the jobs are in now.
        self.source = Layout(target.prefix, recorded)
        self.size = size
        #: Jobs moved so far.
        self.moved = 0

    @property
    def needed(self) -> bool:
        """Whether the counts differ (else there is nothing to move)."""
        return self.source.count != self.target.count

    def scheduled(self, keys: Keys) -> ScheduledMove:
        """The flow moving the scheduled jobs of the old shard ``keys`` that change shard."""
        return ScheduledMove(self, keys)

    def unscheduled(self, keys: Keys, found: Sequence[Any]) -> UnscheduledMove:
        """The flow moving the data of the jobs that SCAN ``found`` under the old shard ``keys``."""
        return UnscheduledMove(self, keys, found)


class ScheduledMove:
    """One old shard's scheduled jobs: export pages, each copied, then removed."""

    def __init__(self, plan: Reshard, keys: Keys) -> None:
        self.plan, self.keys = plan, keys
        self._pages = pages.Exports(keys, plan.size)
        self._calls: List[Call] = []
        self._reading = False

    def next_call(self) -> Optional[Call]:
        """The next call: a page's copies and its removal, else the next page; None when done."""
        if self._calls:
            self._reading = False
            return self._calls.pop(0)
        self._reading = True
        return self._pages.next_call()

    def take(self, reply: Any) -> None:
        """Take a call's reply: a page read gives the calls that move its leaving jobs."""
        if not self._reading:
            return
        self._pages.take(reply)  # only for the next page's anchor: the copy is of the raw reply
        tokens, rules = reply[0], reply[1]
        target, keys = self.plan.target, self.keys
        leaving: Dict[int, Args] = {}  # new shard -> its restoreBulk-4.lua jobs
        ids: List[bytes] = []
        i, n = wire.EXPORT_HEAD, 0
        while i < len(reply):
            raw_id, due, count = reply[i], reply[i + 1], reply[i + 2]
            end = i + wire.JOB_HEAD + 2 * count
            into = target.of(raw_id)
            if into.prefix != keys.prefix:
                token = tokens[n] if tokens and tokens[n] is not None else b""
                rule = rules[n] if rules and rules[n] is not None else b""
                job: Args = [raw_id, due, token, rule, count, *reply[i + wire.JOB_HEAD : end]]
                leaving.setdefault(target.index_of(raw_id), []).extend(job)
                ids.append(raw_id)
            i, n = end, n + 1
        for index, jobs in leaving.items():
            self._calls.append(encode.restore_call(target.shards[index], jobs))
        if ids:
            named = [keys.queue, keys.recurring, keys.runs, keys.last_runs, keys.call_prefix]
            args: Args = [keys.job_prefix, keys.history_prefix, *ids]
            self._calls.append(Call(scripts.DELETE_BULK, named, args))
            self.plan.moved += len(ids)


class UnscheduledMove:
    """Data without a schedule entry, found by SCAN under one old shard: read, copied, removed."""

    def __init__(self, plan: Reshard, keys: Keys, found: Sequence[Any]) -> None:
        self.plan, self.keys = plan, keys
        target = plan.target
        ids = [i for i in raw_ids(keys, found) if target.of(i).prefix != keys.prefix]
        named = [keys.queue, b"", keys.recurring]
        self._reads = [Call(scripts.DETAILS, _at(named, 1, keys.job(raw)), [raw]) for raw in ids]
        self._ids = ids
        self._read: List[bytes] = []
        self._copies: Dict[int, Args] = {}
        self._calls: Optional[List[Call]] = None

    def next_call(self) -> Optional[Call]:
        """The next call: each job's read, then the copies and the removal; None when done."""
        if self._reads:
            return self._reads[0]
        if self._calls is None:
            target = self.plan.target
            self._calls = [
                encode.restore_call(target.shards[index], jobs)
                for index, jobs in self._copies.items()
            ]
            if self._read:
                keys = self.keys
                self._calls.append(encode.forget(keys, self._read, delete=True, runs=True))
                self.plan.moved += len(self._read)
        return self._calls.pop(0) if self._calls else None

    def take(self, reply: Any) -> None:
        """Take a call's reply: a job's read (details-3.lua) gives its copy, if it has data."""
        if not self._reads:
            return
        self._reads.pop(0)
        raw_id = self._ids[len(self._ids) - len(self._reads) - 1]
        due, data, _ = reply
        if due is None and data:  # scheduled meanwhile, or gone: not this flow's to move
            job: Args = [raw_id, b"", b"", b"", len(data) // 2, *data]
            self._copies.setdefault(self.plan.target.index_of(raw_id), []).extend(job)
            self._read.append(raw_id)


def _at(items: List[bytes], index: int, item: bytes) -> List[bytes]:
    """``items`` with ``item`` at ``index``: one job's keys."""
    out = list(items)
    out[index] = item
    return out
