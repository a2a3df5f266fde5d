"""Operators' code over a schedule: reshard it, find the data it left, check its server.

``rache reshard``, ``rache orphans`` and ``rache doctor`` are these functions; each takes a
sync redis-py client (``redis.Redis`` or ``redis.RedisCluster``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import redis

from . import config
from .config import has_hash_tag, tagged
from .constants import DEFAULT_BATCH_SIZE
from .formatting import text
from .scheduler import Scheduler


def reshard(
    connection: Any,
    prefix: Optional[str] = None,
    *,
    shards: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Move the schedule under ``prefix`` to ``shards`` shards; returns the jobs moved.

    Every job keeps all it has, scheduled or not: its due time and data to the byte, its
    run (the same ``occurrence_id``) and its recurrence rule. Stop the pollers and writers
    of the schedule first: a job is copied, then removed from its old place, not in one
    atomic step. Safe to run again after a failure (a copy is the same job, not a second
    one); the new count is recorded last, so until it is, schedulers of the old count still
    start. :meth:`Scheduler.reshard` on a scheduler of the new count.

    :param connection: a sync redis-py client, ``redis.Redis`` or ``redis.RedisCluster``.
    """
    prefix = config.prefix() if prefix is None else prefix
    return Scheduler(connection, prefix, batch_size=batch_size, shards=shards).reshard()


# -- orphans ---------------------------------------------------------------------------------


def orphans(
    connection: Any,
    prefix: Optional[str] = None,
    *,
    shards: int = 1,
    delete: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[bytes]:
    """The ids of jobs that have data and no schedule entry; deleted too with ``delete``.

    :meth:`Scheduler.orphaned_jobs`, its ids as bytes, as stored.

    :param connection: a sync redis-py client, ``redis.Redis`` or ``redis.RedisCluster``.
    :raises ConfigurationError: this Redis user may not SCAN.
    """
    prefix = config.prefix() if prefix is None else prefix
    scheduler = Scheduler(connection, prefix, batch_size=batch_size, shards=shards)
    for job_id in scheduler.orphaned_jobs(delete=delete):
        yield job_id if isinstance(job_id, bytes) else job_id.encode()


# -- doctor ----------------------------------------------------------------------------------

#: How the check that rache's scripts run begins (``rache doctor`` then judges the schedule).
SCRIPTS_RUN = "rache's scripts run"


class Check(NamedTuple):
    """One finding of :func:`checks`: ``ok`` is None when it cannot tell."""

    ok: Optional[bool]
    what: str
    fix: str = ""


def checks(
    connection: Any,
    prefix: str,
    *,
    cluster: bool = False,
    run_script: Optional[Callable[[], Any]] = None,
) -> List[Check]:
    """What silently breaks a schedule on this server, checked one by one.

    Redis version, eviction policy, persistence, a cluster prefix without a hash tag,
    and whether rache's scripts run (``run_script`` makes one call of the schedule's, such
    as ``lambda: scheduler.stats(intervals=0)``). A cluster prefix without a hash tag ends
    the list: nothing more can be checked.
    """
    found: List[Check] = []
    version, mode = _server(connection)
    if version is None:
        found.append(Check(None, "Redis version: INFO and HELLO refused, cannot check"))
    else:
        major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        found.append(
            Check(major_minor >= (6, 2), f"Redis {version}", "rache needs Redis 6.2 or later")
        )
    settings = _config(connection, "maxmemory-policy", "appendonly", "save")
    policy = settings.get("maxmemory-policy")
    if policy is None:
        found.append(Check(None, "maxmemory-policy: CONFIG GET refused, cannot check"))
    else:
        found.append(
            Check(
                policy == "noeviction",
                f"maxmemory-policy {policy}",
                "evicted jobs vanish without a trace: CONFIG SET maxmemory-policy noeviction",
            )
        )
    if "appendonly" not in settings:
        found.append(Check(None, "persistence: CONFIG GET refused, cannot check"))
    else:
        durable = settings["appendonly"] == "yes" or bool(settings.get("save"))
        found.append(
            Check(
                durable,
                f"persistence: appendonly {settings['appendonly']}, save {settings.get('save')!r}",
                "a restart loses the schedule: CONFIG SET appendonly yes",
            )
        )
    if cluster or mode == "cluster":
        fix = f"a prefix with a hash tag: --prefix {tagged(prefix)!r}"
        found.append(Check(has_hash_tag(prefix), f"prefix {prefix!r} on a cluster", fix))
        if not has_hash_tag(prefix):
            return found
    if run_script is not None:
        try:
            run_script()
            found.append(Check(True, f"{SCRIPTS_RUN} (EVALSHA, SCRIPT LOAD)"))
        except redis.exceptions.NoPermissionError as error:
            found.append(
                Check(False, f"rache's scripts are refused: {error}", "see README, Least privilege")
            )
    return found


def _server(connection: Any) -> tuple[Optional[str], Optional[str]]:
    """The server's version and mode (``standalone``, ``cluster``...): None where refused.

    INFO first; HELLO (which every user may send) when an ACL refuses INFO.
    """
    with contextlib.suppress(redis.exceptions.NoPermissionError):
        info = connection.info("server")
        first = next(iter(info.values()), None)
        if isinstance(first, dict):  # a cluster client may answer per node: take one
            info = first
        if "redis_version" in info:
            return str(info["redis_version"]), text(info.get("redis_mode", "standalone"))
    with contextlib.suppress(redis.ResponseError):
        reply = connection.execute_command("HELLO")
        if isinstance(reply, list):  # RESP2 without a parser for it: field, value, ...
            reply = dict(zip(reply[::2], reply[1::2]))
        hello = {text(key): value for key, value in reply.items()}
        return text(hello.get("version", "0")), text(hello.get("mode", "standalone"))
    return None, None


def _config(connection: Any, *names: str) -> Dict[str, str]:
    found: Dict[str, str] = {}
    for name in names:  # a refusal (ACL, managed services): the check says it cannot tell
        with contextlib.suppress(redis.ResponseError):
            found.update(connection.config_get(name))
    return {text(k): text(v) for k, v in found.items()}
