"""Every literal that Python and the Lua scripts share, defined once.

``rache/lua/README.md`` documents each format from the scripts' side; this module is the
Python side: the precision flags, the stored rule strings, the put-back records, the reply
layouts and the text of a time. Nothing here does I/O or imports another rache module.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple, Union

# -- precision flags: how a script turns an offset (milliseconds) into a due time -----------

#: Count from the server's whole second: due times stay integers, as rache 0.3.1 stored them.
WHOLE_SECONDS = b"s"
#: Count from the server's millisecond.
MILLISECONDS = b"ms"
#: The value is the due time itself, milliseconds since the epoch (an import of known times).
AT = b"at"

# -- recurrence rules, as stored in <prefix>recurring ----------------------------------------

#: The first field of a stored rule: ``e|<start>|<every>|<flags>|<grace>`` for every-N,
#: ``c|<pending>|<lease>|<flags>|<grace>|<offset>|<zone>|<expression>`` for cron; flags:
#: ``<misfire>[<overlap>[<run timeout ms>]]`` (``rule_flags``).
EVERY = "e"
CRON = "c"
#: The field separator of a stored rule (no zone or cron expression can hold it).
SEPARATOR = "|"
#: The misfire policies by their one-letter flag in a stored rule.
MISFIRE_BY_FLAG = {"c": "coalesce", "s": "skip"}
#: The overlap policies by their one-letter flag, which follows the misfire flag in the same
#: field (none: ``allow``, as every rule stored before overlap policies reads).
OVERLAP_BY_FLAG = {"a": "allow", "k": "skip", "b": "buffer_one"}
OVERLAP_FLAG = {policy: flag for flag, policy in OVERLAP_BY_FLAG.items()}


def rule_flags(misfire: str, overlap: str, run_timeout_ms: Optional[int]) -> str:
    """A rule's flags field: ``<misfire>[<overlap>[<run timeout ms>]]``.

    The misfire flag alone when the overlap is ``allow`` and the run timeout the default,
    so a rule without them is stored as before overlap policies existed.
    """
    if run_timeout_ms is not None:
        return f"{misfire[0]}{OVERLAP_FLAG[overlap]}{run_timeout_ms}"
    if overlap != "allow":
        return f"{misfire[0]}{OVERLAP_FLAG[overlap]}"
    return misfire[0]


def split_flags(flags: str) -> Tuple[str, str, Optional[int]]:
    """A flags field's misfire policy, overlap policy and run timeout (ms, None: default).

    ValueError for anything else.
    """
    misfire, overlap, timeout = flags[:1], flags[1:2], flags[2:]
    if (
        misfire not in MISFIRE_BY_FLAG
        or (overlap and overlap not in OVERLAP_BY_FLAG)
        or (timeout and not (overlap and timeout.isdigit() and timeout.isascii()))
    ):
        raise ValueError(f"not the flags of a rache recurrence rule: {flags!r}")
    return (
        MISFIRE_BY_FLAG[misfire],
        OVERLAP_BY_FLAG[overlap or "a"],
        int(timeout) if timeout else None,
    )


def every_rule_tail(
    every_ms: int,
    misfire: str,
    grace_ms: int,
    overlap: str = "allow",
    run_timeout_ms: Optional[int] = None,
) -> bytes:
    """What scheduleRecurring-5.lua stores after ``e|<start>|`` (it writes the start)."""
    return f"{every_ms}|{rule_flags(misfire, overlap, run_timeout_ms)}|{grace_ms}".encode()


def cron_rule_tail(
    misfire: str,
    grace_ms: int,
    offset_ms: int,
    zone: str,
    expression: str,
    overlap: str = "allow",
    run_timeout_ms: Optional[int] = None,
) -> bytes:
    """What the scripts store after ``c|<pending>|<lease>|`` (both empty while idle)."""
    flags = rule_flags(misfire, overlap, run_timeout_ms)
    return f"{flags}|{grace_ms}|{offset_ms}|{zone}|{expression}".encode()


def split_rule(raw: bytes) -> List[str]:
    """A stored rule's fields, its tag first; ValueError for anything else."""
    text = raw.decode()
    if text[:1] == EVERY:
        fields = text.split(SEPARATOR)
        if len(fields) == 5:
            return fields
    elif text[:1] == CRON:
        fields = text.split(SEPARATOR, 7)
        if len(fields) == 8:
            return fields
    raise ValueError(f"not a rache recurrence rule: {raw!r}")


# -- put-back records: what release-5.lua needs to put back one handed-out job ---------------

#: ``(PLAIN, id, due before the claim, b"1" if it had data else b"0", its run token or b"")``
PLAIN = b"p"
#: ``(RECURRING, id, the occurrence handed out, the due time the claim gave it)``
RECURRING = b"r"

#: One put-back record; None: the job cannot be put back (a leased cron job: it comes
#: back when its lease ends).
Record = Union[Tuple[bytes, ...], None]

# -- runs, as stored in <prefix>history:<id> and <prefix>failures -----------------------------

#: A run's state by the first byte of its record; ``unknown`` is a running run past its
#: deadline, computed when read.
RUN_STATES = {b"r": "running", b"s": "succeeded", b"f": "failed", b"k": "skipped"}
RUNNING = b"r"
#: finishRun-6.lua's outcomes: succeeded, failed, a failed attempt (the run goes on).
SUCCEEDED = b"s"
FAILED = b"f"
ATTEMPT = b"a"
#: The second byte of a record: a run token of 8 bytes follows (TOKEN), or none (NO_TOKEN).
TOKEN = b"t"
NO_TOKEN = b"n"
TOKEN_BYTES = 8
#: The separator of a record's fields after its token (no poller name may hold it).
RUN_SEPARATOR = b"|"


def split_run(record: bytes) -> Tuple[bytes, bytes, List[bytes]]:
    """A run record's state byte, token (b"" if none) and seven fields.

    The fields: due, claimed ms, deadline ms, attempts, finished ms, poller name, error.
    ValueError for anything else.
    """
    state, kind = record[:1], record[1:2]
    if kind == TOKEN:
        token, rest = record[2 : 2 + TOKEN_BYTES], record[2 + TOKEN_BYTES :]
    elif kind == NO_TOKEN:
        token, rest = b"", record[2:]
    else:
        raise ValueError(f"not a rache run record: {record!r}")
    fields = rest.split(RUN_SEPARATOR, 6)
    if len(fields) != 7 or state not in RUN_STATES:
        raise ValueError(f"not a rache run record: {record!r}")
    return state, token, fields


# -- reply layouts ---------------------------------------------------------------------------

#: claim-7.lua's reply starts with: cutoff, the batch's new due time (or nil), the head of
#: the queue after the claim (or nil), the batch's recurring entries (or nil), each job's run
#: token in the order of the jobs (nil for a job without one; all nil: nil); then the jobs.
CLAIM_HEAD = 5
#: export-3.lua's reply starts with: the run token of each job in page order (nil for a job
#: without one; all nil: nil), the rule of each job likewise; then the jobs.
EXPORT_HEAD = 2
#: Each recurring entry of a claim: id, kind (EVERY or CRON; CRON followed by the old lease
#: when the claim took up a lease that ran out), a time, the rule as stored.
RECURRING_ENTRY = 4
#: The kinds of a claim's recurring entries beside EVERY and CRON: a job set aside, its rule
#: not parsing (id, SET_ASIDE, the due time it stood at, the rule as stored); a job left as
#: it was, Redis refusing the writes that add memory (id, LEFT, its due time, its rule or
#: empty for a plain job the claim would have rescheduled).
SET_ASIDE = b"x"
LEFT = b"m"
#: A job in a flat reply: id, due time, n, then n field/value pairs.
JOB_HEAD = 3

# -- the text of a time ----------------------------------------------------------------------


def time_text(ms: int) -> bytes:
    """Milliseconds as the scripts write a due time: Unix seconds, 17 significant digits."""
    return b"%.17g" % (ms / 1000)


def time_ms(raw: bytes) -> int:
    """A due time as stored (Unix seconds, text) in whole milliseconds, rounded."""
    return math.floor(float(raw) * 1000 + 0.5)


def now_ms(raw: bytes) -> int:
    """A claim's cutoff (Unix seconds to the microsecond) floored to the millisecond.

    As the claim script does: an occurrence at ``t`` ms is due when ``t <= now_ms``.
    """
    return math.floor(float(raw) * 1000 + 0.0005)


def decode_time(raw: Union[bytes, str]) -> Union[int, float]:
    """A due time: int when whole seconds (as rache 0.3.1 returned it), else float."""
    seconds = float(raw)
    return int(seconds) if seconds.is_integer() else seconds


def utf8(text: str, what: str, key: object = None) -> bytes:
    """Text as it goes to Redis: UTF-8. ``what`` names it in the error, formatted with ``key``."""
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        name = what.format(key=key)
        raise ValueError(f"{name} cannot be encoded as UTF-8: {exc.reason}") from None
