"""The default configuration, and what rache needs to know of a client.

``REDIS_URL`` and ``RACHE_REDIS_PREFIX`` are read when needed; a client is a cluster's or
not, and is named without its credentials.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Dict

import redis

from .constants import DEFAULT_PREFIX, DEFAULT_REDIS_URL, PREFIX_ENV, REDIS_URL_ENV
from .errors import ConfigurationError

#: A URL's scheme (RFC 3986: a letter, then letters, digits, "+", "-" or ".").
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def hide_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: for messages and logs."""
    return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", url)


def redis_url() -> str:
    """The URL of the default Redis: ``REDIS_URL``, else ``redis://localhost:6379/0``."""
    return os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


def prefix() -> str:
    """The default key prefix: ``RACHE_REDIS_PREFIX``, else ``rache:``."""
    return os.environ.get(PREFIX_ENV, DEFAULT_PREFIX)


def _parse(url: str) -> Dict[str, Any]:
    try:
        return redis.connection.parse_url(url)  # type: ignore[no-untyped-call,no-any-return]
    except ValueError:
        # redis-py's message may quote the URL, password included: name the variable only,
        # and the scheme only when it is one (in "user:pa://ss@host" it is the password's).
        match = _SCHEME.match(url)
        scheme = match.group(1) if match else ""
        raise ConfigurationError(
            f"{REDIS_URL_ENV} is not a Redis URL (scheme {scheme!r}; expected redis://, "
            "rediss:// or unix://)"
        ) from None


def connection_kwargs(url: str) -> Dict[str, Any]:
    """Rache 0.3.1's ``REDIS``: host, port, password and db, or a unix socket path and db."""
    parsed = _parse(url)
    if "path" in parsed:
        kwargs: Dict[str, Any] = {"unix_socket_path": parsed["path"]}
    else:
        kwargs = {"host": parsed.get("host", "localhost"), "port": parsed.get("port", 6379)}
    kwargs["password"] = parsed.get("password")
    kwargs["db"] = int(parsed.get("db", 0))
    return kwargs


def client(url: str) -> redis.Redis:
    """A redis-py client for ``url``, with a clear error that never shows the password."""
    _parse(url)
    return redis.Redis.from_url(url)


def is_cluster(connection: Any) -> bool:
    """True for a redis-py Redis Cluster client, sync or asyncio."""
    if isinstance(connection, redis.RedisCluster):
        return True
    aio = sys.modules.get("redis.asyncio.cluster")  # loaded if such a client exists
    return aio is not None and isinstance(connection, aio.RedisCluster)


def describe(connection: Any) -> str:
    """The client's class and where it connects, never its credentials.

    Not ``repr(connection)``: redis-py 6.x to 7.3 list every connection setting in a
    client's repr, password included (fixed in 7.4).
    """
    kind = type(connection)
    name = f"{kind.__module__}.{kind.__qualname__}"
    pool = getattr(connection, "connection_pool", None)
    settings = getattr(pool, "connection_kwargs", None)
    if not isinstance(settings, dict):
        return f"<{name}>"
    db = settings.get("db", 0)
    if "path" in settings:
        return f"<{name} unix://{settings['path']}?db={db}>"
    if "host" not in settings:
        return f"<{name} db={db}>"
    classes = getattr(getattr(pool, "connection_class", object), "__mro__", ())
    scheme = "rediss" if any(c.__name__ == "SSLConnection" for c in classes) else "redis"
    return f"<{name} {scheme}://{settings['host']}:{settings.get('port', 6379)}/{db}>"


def has_hash_tag(prefix: str) -> bool:
    """Whether ``prefix`` holds a Redis Cluster hash tag of its own (``{...}``, not empty).

    Redis hashes only what is between a key's first ``{`` and the next ``}``: when that lies
    in the prefix, the queue and every job hash of the schedule share one slot.
    """
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1


def tagged(prefix: str) -> str:
    """A hash-tagged version of ``prefix``, for error messages: ``rache:`` -> ``{rache}:``."""
    name = prefix.rstrip(":") or "rache"
    return f"{{{name}}}:"
