"""``rache web``: the dashboard (``rache.web``), started from the command's options."""

from __future__ import annotations

import sys
from typing import Optional, Tuple

import click

from ..constants import MAX_SHARDS
from ..errors import MissingExtra
from .group import Context, main


@main.command("web")
@click.option("--url", "web_url", help="Redis URL (wins over the group's and REDIS_URL).")
@click.option("--prefix", "web_prefix", help="Key prefix (wins over RACHE_REDIS_PREFIX).")
@click.option("--cluster", "web_cluster", is_flag=True, help="--url names a cluster node.")
@click.option("--shards", "web_shards", type=click.IntRange(1, MAX_SHARDS), help="Shard count.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--allow-actions", is_flag=True, help="Offer delete, run now and reschedule.")
@click.option("--allowed-host", multiple=True, help="A Host name to answer to (repeatable).")
@click.option("--root-path", default="", help="The path a proxy serves it under (/rache).")
@click.pass_obj
def web(
    obj: Context,
    web_url: Optional[str],
    web_prefix: Optional[str],
    web_cluster: bool,
    web_shards: Optional[int],
    host: str,
    port: int,
    allow_actions: bool,
    allowed_host: Tuple[str, ...],
    root_path: str,
) -> None:
    """A dashboard of the schedule in a browser, read-only unless --allow-actions."""
    try:
        from .. import web as dashboard  # the web extra: Starlette, uvicorn, Jinja2
    except MissingExtra as missing:
        click.echo(f"rache: {missing}", err=True)
        sys.exit(1)
    settings = dashboard.Settings(
        url=web_url or obj.url,
        prefix=obj.prefix if web_prefix is None else web_prefix,
        cluster=web_cluster or obj.cluster,
        shards=web_shards or obj.shards,
        allow_actions=allow_actions,
        allowed_hosts=allowed_host,
    )
    try:
        dashboard.serve(settings, host, port, root_path)
    except OSError as error:  # the address is taken, or not this host's
        click.echo(f"rache: cannot listen on {host}:{port}: {error.strerror}", err=True)
        sys.exit(1)
