"""Helpers shared by the tests: what Redis saw, and what it holds."""

from __future__ import annotations

from typing import Any, Callable

from rache import Scheduler


def snapshot(raw: Any) -> dict[bytes, Any]:
    """Every key of the database with its DUMP: equal snapshots mean nothing changed."""
    return {key: raw.dump(key) for key in raw.keys("*")}


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
