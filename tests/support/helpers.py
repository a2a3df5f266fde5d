"""Helpers shared by the tests: what Redis saw, what it holds, and clients that fail."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import redis

from rache import Scheduler
from rache.scripts import Call, Script


def snapshot(raw: Any) -> dict[bytes, Any]:
    """Every key of the database with its DUMP: equal snapshots mean nothing changed."""
    return {key: raw.dump(key) for key in raw.keys("*")}


def job_keys(raw: Any) -> list[bytes]:
    """The keys of the database, less the call records: what is left of the jobs.

    Every call that writes leaves its record, ``<prefix>call:<call id>``, for a minute. As
    bytes, whatever the client's decode_responses (a call id is binary).
    """
    keys = raw.keys("*", NEVER_DECODE=True)
    return sorted(key for key in keys if b":call:" not in key)


def commands_sent(raw: Any, action: Callable[[], Any]) -> list[str]:
    """The commands clients sent to Redis while ``action`` ran (MONITOR), not scripts' own."""
    marker = raw.client()  # its own connection, set up before MONITOR starts
    marker.ping()
    with raw.monitor() as monitor:
        action()
        marker.echo("--end--")
        seen: list[str] = []
        while True:
            command = monitor.next_command()
            if command["command"] == "ECHO --end--":
                return seen
            if command["client_type"] != "lua":
                seen.append(command["command"].split()[0].upper())


def warm_up(sched: Scheduler) -> None:
    """Connect, and load every script into the server's cache."""
    sched.schedule_job("warm", 3600)
    sched.schedule_jobs([("warm", 3600)])
    list(sched.pending_jobs())
    sched.job_details("warm")
    list(sched.scheduled_jobs())
    sched.delete_job("warm")


def is_millisecond_time(due: Any) -> bool:
    """A due time kept to the millisecond, typed as rache returns it.

    A float, but for the one time in 1,000 that the millisecond lands on a whole second:
    the stored score cannot tell, and whole seconds come back as int.
    """
    whole = float(due).is_integer()
    return isinstance(due, int) == whole and abs(round(due * 1000) - due * 1000) < 1e-3


def run(client: Any, call: Call) -> Any:
    """Make one script call of a flow (``rache.claim.Claim``, ``rache.pages``) on ``client``."""
    return call.script(client, call.keys, call.args)


def _is_call_of(script: Script, args: Any) -> bool:
    return len(args) > 1 and args[0] == "EVALSHA" and args[1] == script.sha


class FailingScript:
    """A sync client whose calls of ``script`` fail as a broken connection does."""

    def __init__(self, client: Any, script: Script) -> None:
        self.client, self.script = client, script

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if _is_call_of(self.script, args):
            raise redis.ConnectionError("the connection broke")
        return self.client.execute_command(*args, **options)


class AsyncFailingScript(FailingScript):
    """A redis.asyncio client whose calls of ``script`` fail as a broken connection does."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _is_call_of(self.script, args):
            raise redis.ConnectionError("the connection broke")
        return await self.client.execute_command(*args, **options)


class AsyncDelayedScript(FailingScript):
    """A redis.asyncio client whose calls of ``script`` set ``started``, then wait ``delay`` s."""

    def __init__(self, client: Any, script: Script, started: asyncio.Event, delay: float) -> None:
        super().__init__(client, script)
        self.started, self.delay = started, delay

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _is_call_of(self.script, args):
            self.started.set()
            await asyncio.sleep(self.delay)
        return await self.client.execute_command(*args, **options)
