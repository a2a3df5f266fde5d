"""The default configuration, and what rache needs to know of a client.

``REDIS_URL`` and ``RACHE_REDIS_PREFIX`` are read when needed; a client is a cluster's or
not, and is named without its credentials. The clients rache makes time out and retry so
that a retried call comes while its record lives (``client_options``); of a client given to
rache, ``retry_policy`` reads how late its retries may come.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import sys
from typing import Any, Dict, NamedTuple, Optional

import redis
from redis.backoff import ExponentialBackoff

from .constants import (
    CALL_RECORD_TTL,
    CLIENT_BACKOFF_BASE,
    CLIENT_BACKOFF_CAP,
    CLIENT_CONNECT_TIMEOUT,
    CLIENT_RETRIES,
    CLIENT_SOCKET_TIMEOUT,
    DEFAULT_PREFIX,
    DEFAULT_REDIS_URL,
    PREFIX_ENV,
    RECORD_MARGIN,
    REDIS_URL_ENV,
)
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


def client_options(record_ttl: float = CALL_RECORD_TTL, asyncio: bool = False) -> Dict[str, Any]:
    """The timeouts and Retry of a client rache makes, for call records of ``record_ttl`` s.

    ``socket_timeout``, ``socket_connect_timeout`` and ``retry`` (a redis.asyncio Retry with
    ``asyncio``): ``CLIENT_RETRIES`` retries of a call whose connection broke or timed out,
    whose worst case (``RetryPolicy.worst``: 22.5 s) is at most ``1 / RECORD_MARGIN`` of
    the record's life; a shorter life scales the timeouts and backoff down alike.
    """
    retry_class: Any
    if asyncio:
        from redis.asyncio.retry import Retry as retry_class
    else:
        from redis.retry import Retry as retry_class
    per_attempt = CLIENT_CONNECT_TIMEOUT + CLIENT_SOCKET_TIMEOUT + CLIENT_BACKOFF_CAP
    worst = (CLIENT_RETRIES + 1) * per_attempt
    scale = min(1.0, record_ttl / (RECORD_MARGIN * worst))
    backoff = ExponentialBackoff(cap=CLIENT_BACKOFF_CAP * scale, base=CLIENT_BACKOFF_BASE * scale)
    return {
        "socket_timeout": CLIENT_SOCKET_TIMEOUT * scale,
        "socket_connect_timeout": CLIENT_CONNECT_TIMEOUT * scale,
        "retry": retry_class(backoff, CLIENT_RETRIES),
    }


def client(
    url: str, record_ttl: float = CALL_RECORD_TTL, *, cluster: bool = False, **options: Any
) -> Any:
    """A redis-py client for ``url``, with a clear error that never shows the password.

    It times out and retries as ``client_options(record_ttl)`` says (``options`` override);
    a ``redis.RedisCluster`` with ``cluster``.
    """
    _parse(url)
    kwargs = {**client_options(record_ttl), **options}
    if cluster:
        return redis.RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def async_client(url: str, record_ttl: float = CALL_RECORD_TTL, **options: Any) -> Any:
    """A redis.asyncio client for ``url``: ``client``'s twin (its checks, its timeouts)."""
    import redis.asyncio

    _parse(url)
    kwargs = {**client_options(record_ttl, asyncio=True), **options}
    return redis.asyncio.Redis.from_url(url, **kwargs)


class RetryPolicy(NamedTuple):
    """How late a client may send a call again: its timeouts and its Retry, as it uses them.

    ``retries``: how many times a call whose connection broke (or timed out) is sent again
    (-1: for ever); ``backoff``: the longest wait before one; None for a timeout: none.
    """

    socket_timeout: Optional[float]
    connect_timeout: Optional[float]
    retries: int
    backoff: float

    @property
    def worst(self) -> float:
        """Seconds from a call's first send to its last retry, at worst (inf: unbounded).

        Each attempt: a connect, a reply's wait, a backoff; 0 when the client never sends
        a call again. redis-py also retries a reconnect that fails, under the same policy:
        that needs the server unreachable, not merely a reply lost, and is not counted.
        """
        if self.retries == 0:
            return 0.0
        if self.retries < 0 or self.socket_timeout is None or self.connect_timeout is None:
            return math.inf
        attempt = self.connect_timeout + self.socket_timeout + self.backoff
        return (self.retries + 1) * attempt

    def describe(self) -> str:
        """The settings, as a message names them."""
        retries = "for ever" if self.retries < 0 else f"{self.retries} times"
        return (
            f"socket_timeout={self.socket_timeout}, socket_connect_timeout="
            f"{self.connect_timeout}, retries {retries} with backoffs up to {self.backoff:g} s"
        )


def _default(cls: Any, name: str) -> Any:
    """The default of ``cls(name=...)`` (a connection class's, or its bases'), or None."""
    for base in getattr(cls, "__mro__", ()):
        init = vars(base).get("__init__")
        if init is None:
            continue
        try:
            parameter = inspect.signature(init).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def _retries(retry: Any) -> int:
    getter = getattr(retry, "get_retries", None)
    return int(getter() if callable(getter) else getattr(retry, "_retries", 0))


def _longest_backoff(retry: Any, retries: int) -> float:
    backoff = getattr(retry, "_backoff", None)
    for name in ("_cap", "_backoff"):  # the jittered and exponential ones; ConstantBackoff
        value = getattr(backoff, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    compute = getattr(backoff, "compute", None)
    if not callable(compute):
        return 0.0
    return max((float(compute(n)) for n in range(1, min(max(retries, 1), 64) + 1)), default=0.0)


def retry_policy(connection: Any) -> RetryPolicy:
    """How late ``connection`` (a redis-py client, sync or asyncio, cluster or not) retries.

    Read from its settings, no I/O: a plain client's Retry is its connections' (their
    ``retry``, else one retry when ``retry_on_timeout`` or ``retry_on_error`` is set, else
    none); a cluster client's is its own ``retry`` (its nodes' connections do not retry).
    """
    if is_cluster(connection):
        getter = getattr(connection, "get_connection_kwargs", None)
        settings = getter() if callable(getter) else {}
        kind = getattr(connection, "connection_class", None) or _connection_class(connection)
        retry = getattr(connection, "retry", None)
        if retry is not None:
            retries = _retries(retry)
            backoff = _longest_backoff(retry, retries)
        else:  # redis-py 5: cluster_error_retry_attempts, no backoff
            retries, backoff = int(getattr(connection, "cluster_error_retry_attempts", 3)), 0.0
    else:
        pool = getattr(connection, "connection_pool", None)
        settings = getattr(pool, "connection_kwargs", None) or {}
        kind = getattr(pool, "connection_class", None)
        retry = settings.get("retry")
        if retry is None and (settings.get("retry_on_timeout") or settings.get("retry_on_error")):
            retries, backoff = 1, 0.0  # redis-py's Retry(NoBackoff(), 1)
        elif retry is None:
            retries, backoff = 0, 0.0
        else:
            retries = _retries(retry)
            backoff = _longest_backoff(retry, retries)
    socket_timeout = settings.get("socket_timeout", _default(kind, "socket_timeout"))
    connect_timeout = settings.get(
        "socket_connect_timeout", _default(kind, "socket_connect_timeout")
    )
    if connect_timeout is None:  # redis-py: the socket timeout, when no connect timeout
        connect_timeout = socket_timeout
    return RetryPolicy(
        None if socket_timeout is None else float(socket_timeout),
        None if connect_timeout is None else float(connect_timeout),
        retries,
        backoff,
    )


def _connection_class(connection: Any) -> Any:
    """The connection class of a cluster client's nodes (redis-py's default: Connection)."""
    aio = sys.modules.get("redis.asyncio.cluster")
    if aio is not None and isinstance(connection, aio.RedisCluster):
        from redis.asyncio import Connection as AsyncConnection

        return AsyncConnection
    return redis.Connection


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
