"""Loading the Lua scripts of ``rache/lua`` and calling them on a client.

Each ``<operation>-<number of keys>.lua`` becomes a :class:`Script`; its ``--- @include
"name"`` lines are replaced by ``lua/includes/<name>.lua`` (whose own includes are expanded
in turn, each include once per script, where first named), at import. A call sends
EVALSHA, and on NOSCRIPT (a cold script cache: SCRIPT FLUSH, a restart, a failover) loads
the script and sends EVALSHA again, as redis-py's ``Script`` does.

A script that includes ``calls`` (every one that writes) is *recorded*: each call sends how
long its record lives (ms, the scheduler's ``call_record_ttl``) and a new call id as its
last two arguments, the id made here, once per call, so that redis-py's retry of a
command whose reply was lost sends the same id, and the script answers it from its record
instead of running again (``rache/lua/README.md``, "Call records"). Its last key, given as
the group's record prefix (``Keys.call_prefix``, ``<prefix>call:``), is completed here
with that id into the record's key, ``<prefix>call:<call id>``: the one key a caller
cannot know before the call is made.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import resources
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from redis.exceptions import NoScriptError

from .constants import CALL_RECORD_TTL

#: An include line of a script, and the name of a script file (its operation and key count).
INCLUDE = re.compile(r'^--- @include "([\w-]+)"$', re.MULTILINE)
NAME = re.compile(r"^([a-zA-Z]+)-(\d+)\.lua$")
#: redis-py's execute_command option for a reply read as bytes (redis.client.NEVER_DECODE),
#: whatever the client's decode_responses.
_RAW = {"NEVER_DECODE": True}


class Script:
    """One Lua script: its source, SHA1 and key count, callable on any redis-py client."""

    __slots__ = ("name", "numkeys", "recorded", "sha", "source")

    def __init__(self, name: str, numkeys: int, source: str, recorded: bool = False) -> None:
        self.name = name
        self.numkeys = numkeys
        self.source = source
        #: whether each call carries a new call id (the script includes ``calls``)
        self.recorded = recorded
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def _evalsha(
        self, keys: Sequence[bytes], args: Sequence[Union[bytes, int]], record_ms: int
    ) -> Tuple[Any, ...]:
        if len(keys) != self.numkeys:
            raise ValueError(f"{self.name} takes {self.numkeys} keys, not {len(keys)}")
        if self.recorded:  # the last key is the record prefix: the record is prefix + id
            made = call_id()
            record = keys[-1] + made
            return ("EVALSHA", self.sha, self.numkeys, *keys[:-1], record, *args, record_ms, made)
        return ("EVALSHA", self.sha, self.numkeys, *keys, *args)

    def __call__(
        self,
        client: Any,
        keys: Sequence[bytes],
        args: Sequence[Union[bytes, int]],
        record_ms: int = CALL_RECORD_TTL * 1000,
    ) -> Any:
        """Run the script on a redis-py client (one EVALSHA); its undecoded reply.

        ``record_ms``: how long a recorded script's record of the call lives.
        """
        command = self._evalsha(keys, args, record_ms)
        try:
            return client.execute_command(*command, **_RAW)
        except NoScriptError:
            client.script_load(self.source)
            return client.execute_command(*command, **_RAW)

    async def run_async(
        self,
        client: Any,
        keys: Sequence[bytes],
        args: Sequence[Union[bytes, int]],
        record_ms: int = CALL_RECORD_TTL * 1000,
    ) -> Any:
        """Run the script on a redis.asyncio client (one EVALSHA); its undecoded reply."""
        command = self._evalsha(keys, args, record_ms)
        try:
            return await client.execute_command(*command, **_RAW)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.execute_command(*command, **_RAW)

    def __repr__(self) -> str:
        return f"<Script {self.name}-{self.numkeys}.lua {self.sha[:8]}>"


def call_id() -> bytes:
    """A new call id: 12 random bytes (a collision within a record's lifetime is 1 in 2**96)."""
    return os.urandom(12)


#: Script arguments as sent to Redis.
Args = List[Union[bytes, int]]


class Call(NamedTuple):
    """One script call to make: the script, its keys, its arguments."""

    script: Script
    keys: List[bytes]
    args: Args


def expand(
    source: str,
    includes: Dict[str, str],
    done: Optional[Set[str]] = None,
    within: Tuple[str, ...] = (),
) -> str:
    """``source`` with its includes expanded, theirs too; each include once, at its first use."""
    done = set() if done is None else done

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in includes:
            raise LookupError(f"no rache/lua/includes/{name}.lua to include")
        if name in within:
            cycle = " -> ".join((*within, name))
            raise LookupError(f"rache/lua/includes/{name}.lua includes itself: {cycle}")
        if name in done:
            return ""
        done.add(name)
        return expand(includes[name], includes, done, (*within, name))

    return INCLUDE.sub(include, source)


def load() -> Dict[str, Script]:
    """Read every script shipped in ``rache/lua``, its includes expanded, keyed by operation."""
    folder = resources.files(__package__) / "lua"
    includes = {
        entry.name[: -len(".lua")]: entry.read_text("utf-8")
        for entry in (folder / "includes").iterdir()
        if entry.name.endswith(".lua")
    }
    scripts: Dict[str, Script] = {}
    for entry in folder.iterdir():
        match = NAME.match(entry.name)
        if match:
            name, numkeys = match.group(1), int(match.group(2))
            if name in scripts:  # e.g. a stale claim-1.lua beside claim-7.lua
                raise LookupError(f"two scripts for the operation {name!r} in rache/lua")
            done: Set[str] = set()
            source = expand(entry.read_text("utf-8"), includes, done)
            scripts[name] = Script(name, numkeys, source, recorded="calls" in done)
    return scripts


#: Every script shipped, by operation name.
SCRIPTS = load()
SCHEDULE = SCRIPTS["schedule"]
SCHEDULE_BULK = SCRIPTS["scheduleBulk"]
SCHEDULE_RECURRING = SCRIPTS["scheduleRecurring"]
ADVANCE = SCRIPTS["advance"]
CLAIM = SCRIPTS["claim"]
RELEASE = SCRIPTS["release"]
DELETE = SCRIPTS["delete"]
DETAILS = SCRIPTS["details"]
RECURRING_JOBS = SCRIPTS["recurringJobs"]
PAGE = SCRIPTS["page"]
STATS = SCRIPTS["stats"]
EXPORT = SCRIPTS["export"]
LAYOUT = SCRIPTS["layout"]
LAYOUT_CHECK = SCRIPTS["layoutCheck"]
DELETE_BULK = SCRIPTS["deleteBulk"]
RESTORE_BULK = SCRIPTS["restoreBulk"]
FORGET = SCRIPTS["forget"]
ANNOUNCE = SCRIPTS["announce"]
POLLERS = SCRIPTS["pollers"]
FINISH_RUN = SCRIPTS["finishRun"]
LIST_RUNS = SCRIPTS["listRuns"]
RECURRING_RUNS = SCRIPTS["recurringRuns"]
