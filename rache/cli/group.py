"""The ``rache`` group: its options, the context every command works in, and its errors.

A Redis error a user can meet becomes one line and a hint (``explain``), a wrong shard
count says how to fix it (``wrong_shards``): never a traceback.
"""

from __future__ import annotations

import base64
import os
import sys
from typing import Any, Dict, NoReturn, Optional, Sequence, Tuple

import click
import redis

from .. import __version__, config
from ..constants import MAX_SHARDS, PREFIX_ENV, REDIS_URL_ENV
from ..errors import ConfigurationError, LayoutMismatch, UntaggedPrefix
from ..formatting import printable
from ..scheduler import Scheduler


def json_value(value: Any) -> Any:
    """A value for ``--json`` and exports: bytes as ``{"base64": ...}``, the rest as it is."""
    return {"base64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def from_json(value: Any) -> Any:
    """A value of an export read back: ``{"base64": ...}`` as its bytes."""
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    return value


class Context:
    """The scheduler a command works on, made on first use (so --help needs no Redis)."""

    def __init__(
        self, url: Optional[str], prefix: Optional[str], cluster: bool, shards: int = 1
    ) -> None:
        self.url = url or config.redis_url()
        self.prefix = prefix if prefix is not None else config.prefix()
        self.cluster = cluster
        self.shards = shards
        #: more redis-py client options (``rache dispatch`` sets timeouts)
        self.client_options: Dict[str, Any] = {}
        self._scheduler: Optional[Scheduler] = None
        self._connection: Any = None

    @property
    def client(self) -> Any:
        """The client, made once on first use; the scheduler shares it.

        Apart from the scheduler, so that doctor can check a prefix a cluster would refuse.
        """
        if self._connection is None:
            try:  # timeouts and a Retry within the call records' life (config.client_options)
                self._connection = config.client(
                    self.url, cluster=self.cluster, **self.client_options
                )
            except ConfigurationError as error:  # a clear error for a URL that is not Redis's
                raise click.UsageError(f"--url: {error}") from None
        return self._connection

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            try:
                scheduler = Scheduler(self.client, self.prefix, shards=self.shards)
            except UntaggedPrefix as error:
                raise click.UsageError(
                    f"--prefix {error.prefix!r} has no hash tag, and on Redis Cluster every "
                    f"key of a schedule must hash to one slot: --prefix {error.suggested!r}, "
                    "or --shards N (which add their own)"
                ) from None
            except ConfigurationError as error:  # a sharded prefix with a brace
                raise click.UsageError(f"--prefix: {error}") from None
            scheduler.check_layout()  # the check before its first call, made now
            self._scheduler = scheduler
        return self._scheduler

    def now(self) -> float:
        """The server's clock, the one of every due time shown."""
        return self.scheduler.server_time()


def echo_table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows of text as columns, each as wide as its widest cell (the first: headings)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def wrong_shards(error: LayoutMismatch) -> str:
    """The layout error in the command's own words (``--shards N``, ``rache reshard``)."""
    recorded, shards = error.recorded, error.shards
    return (
        f"the schedule under prefix {printable(error.prefix)!r} is laid out in {recorded} "
        f"shard(s), not {shards}: pass --shards {recorded}"
        + ("" if recorded > 1 else " (or none)")
        + f", or move it with rache --shards {recorded} reshard --to {shards}"
    )


_AUTH_ERRORS = (
    "NOAUTH",
    "WRONGPASS",
    "invalid username-password",
    "Authentication required",
    "HELLO must be called with the client already authenticated",
    "invalid password",
)


def fail(message: str, hint: str = "", status: int = 1) -> NoReturn:
    """Say ``message`` (and a hint) on stderr in one line each, and exit with ``status``."""
    click.echo(f"rache: {message}", err=True)
    if hint:
        click.echo(f"       {hint}", err=True)
    sys.exit(status)


def explain(error: BaseException, url: str, cluster: bool) -> Optional[Tuple[str, str]]:
    """A Redis error a user can meet, as (one line, a hint); None for one we do not know.

    An HTTP server at the URL, --cluster against a plain node, a cluster node without
    --cluster, a password refused, an ACL refusal, a server that cannot be reached.
    """
    where = config.hide_password(url)
    text = str(error)
    if isinstance(error, redis.AuthenticationError) or any(m in text for m in _AUTH_ERRORS):
        return (
            f"authentication failed at {where}: {text}",
            "check the user and password in --url or REDIS_URL (redis://USER:PASSWORD@HOST)",
        )
    if isinstance(error, redis.exceptions.InvalidResponse):
        return (
            f"{where} does not answer as Redis does: {text}",
            "is --url (or REDIS_URL) the address of a Redis server, not of a web server?",
        )
    if isinstance(error, redis.exceptions.RedisClusterException):
        if "cluster mode is not enabled" in text.lower() or "cluster_enabled" in text:
            return (f"{where} is not a Redis Cluster node", "drop --cluster for a plain Redis")
        return (f"Redis Cluster at {where}: {text}", "")
    redirected = (redis.exceptions.AskError, redis.exceptions.TryAgainError)
    if isinstance(error, redirected) or text.startswith(("MOVED ", "ASK ")):
        return (
            f"{where} is a Redis Cluster node (it answered {type(error).__name__} {text})",
            "add --cluster, and a prefix with a hash tag (--prefix '{rache}:') or --shards N",
        )
    if isinstance(error, redis.exceptions.NoPermissionError):
        return (f"Redis refused (ACL) at {where}: {text}", "see README, Least privilege")
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        if not cluster and "MOVED" in text:
            return (f"{where} is a Redis Cluster node", "add --cluster")
        return (f"cannot reach Redis at {where}: {text}", "")
    if isinstance(error, redis.ResponseError):
        return (f"Redis refused: {text}", "")
    return None


class RacheGroup(click.Group):
    """Turns the errors a user can meet into one line and an exit status, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.RedisError, redis.exceptions.RedisClusterException) as error:
            obj = ctx.obj
            known = explain(error, obj.url if obj else "", bool(obj and obj.cluster))
            if known is None:
                raise
            fail(*known)
        except LayoutMismatch as error:  # another shard count than the schedule's
            raise click.UsageError(wrong_shards(error)) from None
        except ConfigurationError as error:  # reshard or orphans without SCAN, a bad prefix
            fail(str(error))
        except (TypeError, ValueError) as error:
            if isinstance(error, click.ClickException):
                raise
            raise click.UsageError(str(error)) from None


@click.group(cls=RacheGroup)
@click.version_option(__version__, "--version", prog_name="rache")
@click.option("--url", envvar=REDIS_URL_ENV, help="Redis URL [env REDIS_URL].")
@click.option("--prefix", envvar=PREFIX_ENV, help="Key prefix [env RACHE_REDIS_PREFIX].")
@click.option("--cluster", is_flag=True, help="--url names a node of a Redis Cluster.")
@click.option(
    "--shards", type=click.IntRange(1, MAX_SHARDS), default=1, help="The schedule's shard count."
)
@click.pass_context
def main(
    ctx: click.Context, url: Optional[str], prefix: Optional[str], cluster: bool, shards: int
) -> None:
    """See, change and dispatch a rache schedule in Redis."""
    if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value
        ctx.color = False
    ctx.obj = Context(url, prefix, cluster, shards)
