"""Operators' code over a schedule: reshard it, find the data it left, check its server.

``rache reshard``, ``rache orphans`` and ``rache doctor`` are these functions; each takes a
sync redis-py client (``redis.Redis`` or ``redis.RedisCluster``).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import redis

from . import config, encode, pages, scripts
from .constants import DEFAULT_BATCH_SIZE
from .errors import ConfigurationError
from .keys import SHARDS_FIELD, Keys, Layout, has_hash_tag, tagged
from .scripts import Args, Call


def _run(connection: Any, call: Call) -> Any:
    script, keys, args = call
    return script(connection, keys, args)


def reshard(
    connection: Any,
    prefix: Optional[str] = None,
    *,
    shards: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Move the schedule under ``prefix`` to ``shards`` shards; returns the jobs moved.

    Every job keeps its due time and data to the byte, scheduled or not, and its recurrence
    rule. Stop the pollers and writers of the schedule first: a job is copied, then removed
    from its old place, not in one atomic step. Safe to run again after a failure (a copy is
    the same job, not a second one); the new count is recorded last, so until it is,
    schedulers of the old count still start.

    :param connection: a sync redis-py client, ``redis.Redis`` or ``redis.RedisCluster``.
    """
    prefix = config.prefix() if prefix is None else prefix
    target = Layout(prefix, shards)
    # layoutCheck-1.lua (HMGET), not HGET: a least-privilege user may run it.
    recorded = _run(connection, Call(scripts.LAYOUT_CHECK, [target.layout_key], []))
    source = Layout(prefix, int(recorded))
    if source.count == target.count:
        return 0
    for keys in source.shards:  # SCAN refused (an ACL): say so before moving anything
        _can_scan(connection, keys, "reshard")
    size = encode.batch_size(batch_size)
    moved = 0
    for keys in source.shards:
        moved += _move_scheduled(connection, keys, target, size)
        moved += _move_unscheduled(connection, keys, target)
    if target.count == 1:
        connection.delete(target.layout_key)
    else:
        connection.hset(target.layout_key, SHARDS_FIELD, target.count)
    return moved


def _move_scheduled(connection: Any, keys: Keys, target: Layout, size: int) -> int:
    """Copy the scheduled jobs of the shard ``keys`` that ``target`` keeps elsewhere; their count.

    Page by page (export-1.lua), each copied byte for byte (restoreBulk-1.lua: raw scores,
    raw hash bytes), their rules moved, then removed here (deleteBulk-1.lua).
    """
    moved = 0
    flow = pages.Exports(keys, size)
    while (call := flow.next_call()) is not None:
        reply = _run(connection, call)
        flow.take(reply)  # only for the next page's anchor: the copy is of the raw reply
        leaving: Dict[bytes, Args] = {}  # new shard's job prefix -> restoreBulk-1.lua args
        ids: List[bytes] = []
        i = 0
        while i < len(reply):
            raw_id, count = reply[i], reply[i + 2]
            end = i + 3 + 2 * count
            into = target.of(raw_id)
            if into.prefix != keys.prefix:
                leaving.setdefault(into.queue, [into.job_prefix]).extend(reply[i:end])
                ids.append(raw_id)
            i = end
        for queue, args in leaving.items():
            _run(connection, Call(scripts.RESTORE_BULK, [queue], args))
        if ids:
            _move_rules(connection, keys, ids, target)
            _run(connection, Call(scripts.DELETE_BULK, [keys.queue], [keys.job_prefix, *ids]))
            moved += len(ids)
    return moved


def _move_rules(connection: Any, keys: Keys, ids: List[bytes], target: Layout) -> None:
    """Move the recurrence rules of the jobs ``ids`` from the shard ``keys`` to ``target``'s."""
    rules = connection.hmget(keys.recurring, ids)
    for raw_id, rule in zip(ids, rules):
        if rule is not None:
            connection.hset(target.of(raw_id).recurring, raw_id, rule)
            connection.hdel(keys.recurring, raw_id)


def _move_unscheduled(connection: Any, keys: Keys, target: Layout) -> int:
    """Move the data of the jobs under ``keys`` that have no schedule entry; their count."""
    moved = 0
    for key in list(connection.scan_iter(match=_job_pattern(keys), count=1000)):
        key = key if isinstance(key, bytes) else key.encode()
        raw_id = key[len(keys.job_prefix) :]
        into = target.of(raw_id)
        if into.prefix == keys.prefix:
            continue
        data = connection.execute_command("HGETALL", key, NEVER_DECODE=True)  # bytes as they are
        if data:
            connection.hset(into.job(raw_id), mapping=data)
        connection.delete(key)
        moved += 1
    return moved


def _job_pattern(keys: Keys) -> bytes:
    """The SCAN pattern of the job hashes under ``keys``: its prefix's glob characters escaped."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", keys.job_prefix) + b"*"


def _can_scan(connection: Any, keys: Keys, what: str) -> None:
    """Raise ConfigurationError, naming the fix, if this user may not SCAN (an ACL)."""
    try:
        connection.scan(0, match=_job_pattern(keys), count=1)
    except redis.exceptions.NoPermissionError as error:
        raise ConfigurationError(
            f"{what} lists the job hashes with SCAN, which this Redis user may not run "
            f"({error}): run it as a user with +scan (README's ACL line has no SCAN)"
        ) from None


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

    Such data stays after a claim without ``reschedule_in`` (rache 0.3.1 kept it, for a
    worker to schedule the job again). The job hashes are listed with SCAN, ``batch_size``
    at a time (never the whole keyspace at once), and each batch goes to forget-1.lua,
    which checks each id's schedule entry and deletes in the same atomic step: a job
    scheduled again meanwhile keeps its data. Ids come as bytes, as stored.

    :param connection: a sync redis-py client, ``redis.Redis`` or ``redis.RedisCluster``.
    :raises ConfigurationError: this Redis user may not SCAN.
    """
    prefix = config.prefix() if prefix is None else prefix
    layout = Layout(prefix, shards)
    size = encode.batch_size(batch_size)
    flag = b"1" if delete else b"0"
    for keys in layout.shards:
        _can_scan(connection, keys, "orphans")
        found = connection.scan_iter(match=_job_pattern(keys), count=size)
        while page := list(itertools.islice(found, size)):
            start = len(keys.job_prefix)
            ids = [(key if isinstance(key, bytes) else key.encode())[start:] for key in page]
            args: Args = [keys.job_prefix, flag, *ids]
            yield from _run(connection, Call(scripts.SCRIPTS["forget"], [keys.queue], args))


# -- doctor ----------------------------------------------------------------------------------


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
            found.append(Check(True, "rache's scripts run (EVALSHA, SCRIPT LOAD)"))
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
            return str(info["redis_version"]), _text(info.get("redis_mode", "standalone"))
    with contextlib.suppress(redis.ResponseError):
        reply = connection.execute_command("HELLO")
        if isinstance(reply, list):  # RESP2 without a parser for it: field, value, ...
            reply = dict(zip(reply[::2], reply[1::2]))
        hello = {_text(key): value for key, value in reply.items()}
        return _text(hello.get("version", "0")), _text(hello.get("mode", "standalone"))
    return None, None


def _config(connection: Any, *names: str) -> Dict[str, str]:
    found: Dict[str, str] = {}
    for name in names:  # a refusal (ACL, managed services): the check says it cannot tell
        with contextlib.suppress(redis.ResponseError):
            found.update(connection.config_get(name))
    return {_text(k): _text(v) for k, v in found.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
