"""A claim of due jobs as a flow without I/O: the script calls to make, and what they mean.

A claim (one ``pending_jobs()`` call, one dispatcher round) is a series of batches, each
one claim-7.lua call, plus an advance-4.lua call when the batch leased cron jobs. A shell
drives it with three steps (``Scheduler.claim_batch`` and its asyncio twin do)::

    while (call := claim.next_call()) is not None:   # None: the claim is over
        jobs = claim.take(run(call))                 # None: the batch needs one more call
        if jobs is not None:
            ...hand out jobs...
    claim.put_back(handed)   # the call that puts back what was claimed but not handed out

A sharded schedule's claim visits each shard in turn from ``start`` until ``limit`` jobs
(in all) are claimed. The reasons behind leases and put-backs are in rache/lua/README.md.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import arguments, decode, recurrence, scripts, wire
from .constants import (
    DEFAULT_HISTORY,
    DEFAULT_LEASE_MS,
    DEFAULT_RUN_TIMEOUT,
    HISTORY_TTL,
    MIN_RUN_TIMEOUT,
)
from .formatting import text
from .keys import Keys, Layout
from .models import Job, Seconds
from .rules import decode as decode_rule
from .scripts import Args, Call
from .wire import Record


class Claim:
    """One claim of due jobs, as script calls to make and replies to read.

    :param layout: the schedule's shards.
    :param batch_size: the most jobs per claim-7.lua call.
    :param reschedule_in: claimed jobs are due again after this; None removes them.
    :param limit: the most jobs in all; None claims until nothing is due.
    :param start: the shard to start from.
    :param lease_ms: how long a claimed cron job stays leased to this claim.
    :param history: runs kept per job (0: none recorded).
    :param name: the poller's name, recorded in each run it hands out.
    :param run_timeout_ms: a plain job's run timeout: its run's deadline is its claim plus it.
    :param history_ttl_ms: how long runs of jobs no longer scheduled stay (the claims' sweep).
    """

    def __init__(
        self,
        layout: Layout,
        batch_size: int,
        reschedule_in: Optional[Seconds] = None,
        limit: Optional[int] = None,
        *,
        start: int = 0,
        lease_ms: int = DEFAULT_LEASE_MS,
        history: int = DEFAULT_HISTORY,
        name: bytes = b"",
        run_timeout_ms: int = DEFAULT_RUN_TIMEOUT * 1000,
        history_ttl_ms: int = HISTORY_TTL * 1000,
    ) -> None:
        self._reschedule = (
            None if reschedule_in is None else arguments.offset(reschedule_in, "reschedule_in")
        )
        #: jobs still to claim (None: no limit)
        self.remaining = arguments.limit(limit)
        self.shards = layout.shards
        self.index = start
        #: the shard being claimed from
        self.keys: Keys = self.shards[start]
        self.batch_size = batch_size
        self.lease_ms = lease_ms
        #: runs kept per job, the poller's name, a plain job's run timeout (ms)
        self.history = history
        self.name = name
        self.run_timeout_ms = run_timeout_ms
        self.history_ttl_ms = history_ttl_ms
        #: the cutoff of the last batch (Unix seconds, the server's clock, as text): a
        #: shard's first batch reads the clock, the next ones reuse it
        self.cutoff = b""
        #: cron jobs of the last batch whose rule could not be evaluated here (no croniter,
        #: a zone this host lacks): they stay leased, for another poller to take up
        self.unevaluated: List[Tuple[Job, Exception]] = []
        #: jobs of the last batch set aside, their rule not parsing: (id, raw rule), as
        #: ``Scheduler.bad_rules`` reports them (rache/lua/README.md, "Set-aside jobs")
        self.set_aside: List[Tuple[Any, str]] = []
        #: jobs of the last batch left where they were, Redis refusing the writes that
        #: add memory (maxmemory, noeviction): their ids (README.md, "Memory pressure")
        self.left: List[Any] = []
        #: whether a batch of this claim left jobs so (a dispatcher then backs off)
        self.pressed = False
        self._visited = 1
        self._shard_done = False
        self._count = 0
        #: per shard claimed from: its last cutoff and head (its master's clock, both)
        self._heads: Dict[int, Tuple[bytes, Optional[bytes]]] = {}
        # The batch in hand: its claim reply, and the put-back record of each job it hands
        # out (None: read them off the reply, which holds no recurring job).
        self._reply: Optional[Sequence[Any]] = None
        self._records: Optional[List[Record]] = None
        # A batch with cron jobs: every job with its record and, for a cron job, its entry
        # in the advance-4.lua call still to make (id, lease, next due time).
        self._held: List[Tuple[Job, Record, Optional[int]]] = []
        # (id, lease, next due time, run timeout ms, the occurrences handed out, spaced)
        self._advance: List[Tuple[bytes, bytes, bytes, int, bytes]] = []
        # The put-back record of each lease awaiting its advance (id, pending, lease): a
        # put-back ends the lease at once if it still holds, so the occurrence comes out
        # at the next claim rather than after the lease.
        self._leased: List[Record] = []
        self._room: Optional[int] = None

    # -- the protocol ---------------------------------------------------------------------

    def next_call(self) -> Optional[Call]:
        """The next script call of the claim, or None when it is over."""
        keys = self.keys
        if self._advance:  # the batch's cron jobs, leased, await their next occurrence
            args: Args = [keys.history_prefix, self.history, self.name]
            args += [item for entry in self._advance for item in entry]
            named = [keys.queue, keys.recurring, keys.last_runs, keys.call_prefix]
            return Call(scripts.ADVANCE, named, args)
        if self.remaining is not None and self.remaining <= 0:
            return None
        if self._shard_done:  # nothing more due in this shard: on to the next, if any
            if self._visited >= len(self.shards):
                return None
            self._visited += 1
            self.index = (self.index + 1) % len(self.shards)
            keys = self.keys = self.shards[self.index]
            self.cutoff, self._shard_done = b"", False
        size = self.batch_size if self.remaining is None else min(self.batch_size, self.remaining)
        self._count = size
        self._reply = self._records = None
        rescheduled = (b"", b"") if self._reschedule is None else self._reschedule
        args = [keys.job_prefix, size, self.cutoff, *rescheduled, self.lease_ms]
        args += [keys.history_prefix, self.history, self.name, self.run_timeout_ms]
        args.append(self.history_ttl_ms)
        named = [keys.queue, keys.recurring, keys.runs, keys.aside, keys.clock, keys.last_runs]
        named.append(keys.call_prefix)
        return Call(scripts.CLAIM, named, args)

    def take(self, reply: Sequence[Any]) -> Optional[List[Job]]:
        """The jobs to hand out from the reply of ``next_call()``'s call.

        None when the batch needs one more call first (the advance of its cron jobs).
        """
        if self._advance:
            return self._advanced(reply)
        it = iter(reply)
        cutoff, _new_due, next_due, recurring, runs = (next(it) for _ in range(wire.CLAIM_HEAD))
        jobs = decode.jobs(it)
        if runs is not None:
            for job, run in zip(jobs, runs):
                job.raw_run = run
        self._reply = reply
        self.cutoff = cutoff
        self._heads[self.index] = (cutoff, next_due)
        self.set_aside, self.left = [], []
        if recurring is None:
            # Nothing found, yet the head is due: the call re-aimed jobs after the clock
            # went back (README.md, "Clock jumps"), for the next batch to claim.
            reaimed = not jobs and next_due is not None and float(next_due) <= float(cutoff)
            self._shard_done = len(jobs) < self._count and not reaimed
            return self._handed(jobs)
        rules = self._set_aside(_recurring_entries(recurring))
        # Jobs left in the due range (memory pressure) would come again in the next batch.
        self._shard_done = int(recurring[0]) < self._count or bool(self.left)
        now = wire.now_ms(cutoff)
        self._held, self._advance, self._leased, self.unevaluated = [], [], [], []
        # How many more jobs than the batch found the claim's limit leaves room for: a
        # lease taken up may hand out several occurrences of one job.
        self._room = None if self.remaining is None else self.remaining - len(jobs)
        for job, record in zip(jobs, _records(reply, rules)):
            if record is not None:
                self._held.append((job, record, None))
                continue
            try:
                self._hold_cron(job, rules[job.raw_id], now)
            except Exception as exc:  # not this poller's to evaluate: it stays leased
                self.unevaluated.append((job, exc))
        if not self._advance:
            return self._advanced([])
        # Until the advance answers, what goes back on a failure (a broken connection, a
        # task cancelled) is the batch's other jobs, and each cron job: its lease ended if
        # it still holds (the advance never ran), or its occurrence put back if the advance
        # ran and its answer was lost (the job idle where it moved it). Never both: a job is
        # either still leased or idle at its next time.
        held = [record for _, record, entry in self._held if entry is not None]
        self._records = [record for _, record, entry in self._held if entry is None]
        self._records += self._leased + [record for record in held if record is not None]
        return None

    def put_back(self, handed: int = 0) -> Optional[Call]:
        """The release-5.lua call that puts back the batch's jobs after the first ``handed``.

        None if there is nothing to put back. The batch is then forgotten, so a second
        call puts back nothing.
        """
        if self._reply is None:
            return None
        records = self._records if self._records is not None else _records(self._reply, {})
        new_due = self._reply[1]
        self._reply = self._records = None
        self._held, self._advance, self._leased = [], [], []
        left = records[handed:]
        plain = [record for record in left if record is not None and record[0] == wire.PLAIN]
        again = [record for record in left if record is not None and record[0] == wire.RECURRING]
        if not plain and not again:
            return None
        keys = self.keys
        args: Args = [keys.job_prefix, keys.wakeup, keys.history_prefix]
        args += [b"" if new_due is None else new_due, len(plain)]
        for record in plain + again:
            args += record[1:]
        named = [keys.queue, keys.recurring, keys.runs, keys.last_runs, keys.call_prefix]
        return Call(scripts.RELEASE, named, args)

    # -- what a dispatcher reads after a round ---------------------------------------------

    @property
    def next_due(self) -> Optional[bytes]:
        """The earliest due time left in the shards claimed from (None: all empty).

        Times of several masters' clocks: to know how long to wait, see ``next_wait()``.
        """
        heads = [head for _, head in self._heads.values() if head is not None]
        return min(heads, key=float) if heads else None

    def next_wait(self) -> Optional[float]:
        """Seconds until the earliest due time left in the shards claimed from (None: empty).

        Each shard's head less its own cutoff: times of one master's clock, never two.
        """
        waits = [float(head) - float(cut) for cut, head in self._heads.values() if head]
        return min(waits) if waits else None

    # -- the steps of a batch with recurring jobs --------------------------------------------

    def _set_aside(
        self, entries: Dict[bytes, Tuple[bytes, bytes, bytes]]
    ) -> Dict[bytes, Tuple[bytes, bytes, bytes]]:
        """The entries of jobs claimed; those set aside or left noted on the claim."""
        claimed = {}
        for raw_id, entry in entries.items():
            kind = entry[0]
            if kind == _ASIDE:
                self.set_aside.append((text(raw_id), entry[2].decode("utf-8", "replace")))
            elif kind == _LEFT:
                self.left.append(text(raw_id))
                self.pressed = True
            else:
                claimed[raw_id] = entry
        return claimed

    def _hold_cron(self, job: Job, rule_entry: Tuple[bytes, bytes, bytes], now: int) -> None:
        """Decide a leased cron job's occurrences and next time; hold it for advance-4.lua.

        One occurrence at most (``recurrence.decide``), or, for a lease that ran out
        untouched (its kind names the old lease), each one its holder never handed out
        (``recurrence.decide_held``).
        """
        raw_id = job.raw_id
        kind, lease, raw_rule = rule_entry
        rule, _, _ = decode_rule(raw_rule)
        pending = job.raw_due or b"0"
        if len(kind) > 1:  # b"c" + the lease that ran out
            held = wire.time_ms(kind[1:])
            runs, following = recurrence.decide_held(
                rule, wire.time_ms(pending), held, now, self.lease_ms
            )
        else:
            run, following = recurrence.decide(rule, wire.time_ms(pending), now)
            runs = [] if run is None else [run]
        if rule.rule.overlap != "allow" and len(runs) > 1:
            # One run at a time: the latest is handed out (if the advance lets it: the
            # overlap policy is decided there), the earlier ones coalesce into it.
            runs = runs[-1:]
        if self._room is not None and len(runs) > 1 + self._room:
            # The limit leaves no room for them all: the job resumes at the first one left,
            # which the next claim hands out (coalesced with any later, as after a downtime).
            runs, following = runs[: 1 + self._room], runs[1 + self._room]
        if self._room is not None and runs:
            self._room -= len(runs) - 1
        moved = wire.time_text(following)
        # Its runs' timeout: the rule's, else its period (to the next occurrence), at least
        # MIN_RUN_TIMEOUT.
        timeout = rule.rule.run_timeout_ms
        if timeout is None:
            timeout = max(MIN_RUN_TIMEOUT * 1000, following - runs[-1]) if runs else 0
        entry = len(self._advance)
        if not runs:
            self._held.append((job, None, entry))
        for i, run in enumerate(runs):
            out = job if i == 0 else _copy(job)
            out.raw_due = wire.time_text(run)
            self._held.append((out, (wire.RECURRING, raw_id, out.raw_due, moved), entry))
        handed = b" ".join(wire.time_text(run) for run in runs)
        self._advance.append((raw_id, lease, moved, timeout, handed))
        self._leased.append((wire.RECURRING, raw_id, pending, lease))

    def _advanced(self, reply: Sequence[Any]) -> List[Job]:
        """The jobs of the batch to hand out, once advance-4.lua said which leases held.

        A cron job goes out only if its lease held (1), the misfire policy runs its occurrence
        and the overlap policy neither skipped (2) nor held it (a time); a lease that did not
        hold (0) belongs to a newer claim, which hands it out.
        """
        jobs: List[Job] = []
        records: List[Record] = []
        for job, record, entry in self._held:
            if entry is not None and (record is None or _outcome(reply[entry]) != 1):
                continue
            jobs.append(job)
            records.append(record)
        # The claim read the head with these jobs leased; moved, one may now come first.
        cutoff, head = self._heads[self.index]
        for (_, _, moved, _, _), held in zip(self._advance, reply):
            outcome = _outcome(held)
            if isinstance(outcome, bytes):  # held by 'buffer_one' until then
                moved = outcome
            if outcome and (head is None or float(moved) < float(head)):
                head = moved
        self._heads[self.index] = (cutoff, head)
        self._held, self._advance, self._leased = [], [], []
        self._records = records
        return self._handed(jobs)

    def _handed(self, jobs: List[Job]) -> List[Job]:
        if self.remaining is not None:
            self.remaining -= len(jobs)
        return jobs


def _copy(job: Job) -> Job:
    """Another occurrence of the same job: its data, its due time to be set."""
    out = Job(job)
    out.raw_due, out.raw_run = job.raw_due, getattr(job, "raw_run", None)
    return out


def _outcome(item: Any) -> Any:
    """An advance-4.lua outcome: 0, 1, 2 (ints), or the time a held job waits until (bytes)."""
    if isinstance(item, int):
        return item
    raw = item.encode() if isinstance(item, str) else bytes(item)
    return int(raw) if raw.isdigit() else raw


def put_back_ids(call: Call) -> Tuple[List[str], List[str]]:
    """The ids of the plain jobs and of the recurring jobs that a ``put_back`` call puts back.

    Read from the call itself (release-5.lua's header): 5 settings, the plain jobs as
    quadruples after their count, then the recurring jobs as triples, each led by its id
    (a cron job's may come more than once: its lease, its occurrences; named once).
    For a warning that names them when the call fails.
    """
    args = call.args
    plain = 5 + 4 * int(args[4])
    again = dict.fromkeys(text(args[i]) for i in range(plain, len(args), 3))
    return [text(args[i]) for i in range(5, plain, 4)], list(again)


#: An every-N entry's kind in a claim's recurring sub-array; a job set aside; a job left.
_EVERY = wire.EVERY.encode()
_ASIDE = wire.SET_ASIDE
_LEFT = wire.LEFT


def _recurring_entries(recurring: Sequence[Any]) -> Dict[bytes, Tuple[bytes, bytes, bytes]]:
    """Map each recurring job id of a claim to (kind, time, rule)."""
    it = iter(recurring[1:])
    return {raw_id: (kind, time, rule) for raw_id, kind, time, rule in zip(it, it, it, it)}


def _records(reply: Sequence[Any], rules: Dict[bytes, Tuple[bytes, bytes, bytes]]) -> List[Record]:
    """The put-back record of each job of a claim's reply, as claimed (a cron job's: None)."""
    records: List[Record] = []
    runs = reply[wire.CLAIM_HEAD - 1]  # each job's run token, in reply order, or None
    i = wire.CLAIM_HEAD
    while i < len(reply):
        raw_id, due, count = reply[i], reply[i + 1], reply[i + 2]
        entry = rules.get(raw_id)
        if entry is None:
            run = runs[len(records)] if runs else None
            records.append((wire.PLAIN, raw_id, due, b"1" if count else b"0", run or b""))
        elif entry[0] == _EVERY:
            records.append((wire.RECURRING, raw_id, due, entry[1]))
        else:
            records.append(None)  # leased: back when its lease ends, see advance-4.lua
        i += wire.JOB_HEAD + 2 * count
    return records
