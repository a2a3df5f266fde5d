"""Every Redis key and channel name of a schedule, built in one place.

A schedule under ``prefix`` is the layout of rache 0.3.1 (``<prefix>queue``, a sorted set
of job ids by due time, and ``<prefix>job:<id>``, a hash of each job's data), plus
``<prefix>recurring`` (rules), ``<prefix>runs`` (run tokens), ``<prefix>history:<id>`` (a
job's runs), ``<prefix>failures`` (recent failed runs), ``<prefix>aside`` (jobs set aside:
their rule does not parse), ``<prefix>clock`` (the clock mark of recurring moves),
``<prefix>layout`` (the shard count), ``<prefix>pollers`` (the live pollers), the call
records ``<prefix>call:<call id>``, the channel ``<prefix>wakeup``, and the keys of rache's
integrations
(``<prefix>celery:entries``). A sharded schedule is K
such groups, each under a hash tag of its own. ``rache/lua/README.md`` describes each key as
the scripts use it: every key a script touches comes to it in KEYS, named here (a batch's
job hashes excepted, ``<job prefix><id>``: their ids are known only inside the script).
"""

from __future__ import annotations

import zlib
from typing import List

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from .config import has_hash_tag, tagged
from .constants import MAX_SHARDS
from .errors import ConfigurationError
from .wire import utf8

__all__ = ["Keys", "Layout", "has_hash_tag", "layout_key", "shard_of", "shard_prefixes", "tagged"]

#: The suffixes of a group's keys and channel, after its prefix.
QUEUE = b"queue"
JOB = b"job:"
RECURRING = b"recurring"
WAKEUP = "wakeup"
LAYOUT = b"layout"
CALL = b"call:"
#: ``<prefix>pollers``: the live pollers of a schedule (under its own prefix, sharded or not).
POLLERS = b"pollers"
RUNS = b"runs"
HISTORY = b"history:"
LAST_RUNS = b"lastrun"
FAILURES = b"failures"
ASIDE = b"aside"
CLOCK = b"clock"
#: ``rache.celery``'s hash of the beat entries it declared (entry name -> its rule).
CELERY_ENTRIES = b"celery:entries"
#: The field of ``<prefix>layout`` that holds the shard count (as layout-2.lua reads it).
SHARDS_FIELD = "shards"


class Keys:
    """The keys of one group (a schedule, or one shard of it), as rache 0.3.1 laid them out."""

    __slots__ = (
        "aside",
        "call_prefix",
        "celery_entries",
        "clock",
        "failures",
        "history_prefix",
        "job_prefix",
        "last_runs",
        "prefix",
        "queue",
        "recurring",
        "runs",
        "wakeup",
    )

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        raw = utf8(prefix, "prefix")
        self.prefix = prefix
        #: ``<prefix>queue``, the sorted set of job ids by due time.
        self.queue = raw + QUEUE
        #: ``<prefix>job:``, to which a job id is appended to name its hash.
        self.job_prefix = raw + JOB
        #: ``<prefix>recurring``, the hash of recurrence rules by job id (no job hash can
        #: have this name, as theirs all start with ``<prefix>job:``).
        self.recurring = raw + RECURRING
        #: ``<prefix>wakeup``, the channel on which the scripts that move the head of the
        #: queue earlier publish its new due time.
        self.wakeup = raw + WAKEUP.encode()
        #: ``<prefix>call:``, to which a call id is appended to name the call's record (a
        #: string that expires): the last key of every script call that writes, which
        #: ``rache.scripts`` completes with the call's id (``rache/lua/README.md``, "Call
        #: records").
        self.call_prefix = raw + CALL
        #: ``<prefix>runs``, the hash of each scheduled plain job's run token, by job id:
        #: see ``Job.occurrence_id``.
        self.runs = raw + RUNS
        #: ``<prefix>lastrun``, the hash of each job's newest run, by job id (its field
        #: ``''``: where the sweep of old runs stands), ``rache/lua/README.md``, "Run history".
        self.last_runs = raw + LAST_RUNS
        #: ``<prefix>history:``, to which a job id is appended to name the list of the job's
        #: runs before its newest, newest first (``rache/lua/README.md``, "Run history").
        self.history_prefix = raw + HISTORY
        #: ``<prefix>failures``, the list of the group's recent failed runs, newest first.
        self.failures = raw + FAILURES
        #: ``<prefix>aside``, the hash of the jobs a claim set aside because their rule
        #: does not parse: job id -> the due time it stood at (``Scheduler.bad_rules``).
        self.aside = raw + ASIDE
        #: ``<prefix>clock``, the latest server time (ms) at which a claim moved recurring
        #: jobs: a claim that finds it ahead of its own clock knows the clock went back.
        self.clock = raw + CLOCK
        #: ``<prefix>celery:entries``, the hash in which ``rache.celery`` records the beat
        #: entries it declared (entry name -> its rule), so that it removes only its own.
        self.celery_entries = raw + CELERY_ENTRIES

    def call(self, call_id: bytes) -> bytes:
        """The key of the record of the script call ``call_id``."""
        return self.call_prefix + call_id

    def history(self, raw_id: bytes) -> bytes:
        """The key of the list of the job ``raw_id``'s runs before its newest, newest first."""
        return self.history_prefix + raw_id

    def job(self, raw_id: bytes) -> bytes:
        """The key of the hash holding the data of the job ``raw_id``."""
        return self.job_prefix + raw_id


def layout_key(prefix: str) -> bytes:
    """``<prefix>layout``: the shard count of a sharded schedule, so that no other reads it."""
    return utf8(prefix, "prefix") + LAYOUT


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
    if "{" in prefix or "}" in prefix:
        bare = prefix.replace("{", "").replace("}", "") or "rache:"
        why = (
            "has a hash tag, which would put every shard in one slot"
            if has_hash_tag(prefix)
            else "holds a brace, which would change what Redis hashes of each shard's keys "
            "(after an empty {} the whole key, so one call's keys span slots)"
        )
        raise ConfigurationError(
            f"prefix {prefix!r} {why}: a sharded schedule takes a prefix without {{ or }} "
            f"(each shard adds its own hash tag), such as {bare!r}"
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


class Layout:
    """The key groups of a schedule: one, or one per shard, and which holds a job.

    :param prefix: the schedule's key prefix, as given (each shard adds a hash tag to it).
    :param shards: how many groups; a job's group is CRC-32 of its id, modulo the count.
    :raises ValueError: a shard count outside 1 to MAX_SHARDS.
    :raises ConfigurationError: a sharded schedule's prefix with a ``{`` or ``}`` in it.
    """

    __slots__ = ("count", "keys", "layout_key", "pollers", "prefix", "shards")

    def __init__(self, prefix: str, shards: int = 1) -> None:
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be an int from 1 to {MAX_SHARDS}, not {shards!r}")
        #: The prefix's own keys (a sharded schedule's shards add a hash tag to it).
        self.keys = Keys(prefix)
        self.prefix = prefix
        self.count = shards
        #: The keys of each shard: the prefix's own keys for an unsharded schedule.
        self.shards = (
            [self.keys] if shards == 1 else [Keys(p) for p in shard_prefixes(prefix, shards)]
        )
        #: ``<prefix>layout``, where a sharded schedule records its count.
        self.layout_key = layout_key(prefix)
        #: ``<prefix>pollers``, the hash of the live pollers (announce-1.lua, pollers-1.lua):
        #: one key, under the schedule's own prefix like the layout key, so every shard's
        #: pollers are listed together and one script call, in that key's slot, writes it.
        self.pollers = utf8(prefix, "prefix") + POLLERS

    def of(self, raw_id: bytes) -> Keys:
        """The keys of the shard that holds the job ``raw_id`` (stable across processes)."""
        shards = self.shards
        return shards[0] if len(shards) == 1 else shards[shard_of(raw_id, len(shards))]

    def index_of(self, raw_id: bytes) -> int:
        """The number of the shard that holds the job ``raw_id``."""
        return shard_of(raw_id, len(self.shards))
