"""What a dashboard shows and allows (``Settings``), and what every response carries."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

from ..constants import DEFAULT_LATE

#: Templates and static files, shipped as package data.
UI = Path(__file__).resolve().parents[1] / "webui"
#: The jobs listed on the overview: one page of the schedule, earliest first.
OVERVIEW_JOBS = 25
#: Recurring jobs per page of /recurring.
RECURRING_PAGE = 50
#: The overview's chart: jobs falling due in each of this many intervals of this length.
CHART_INTERVALS = 60
CHART_INTERVAL = 60
#: The overview's lag (how overdue the oldest due job is) turns to warning past this many
#: seconds, and to bad past ``LAG_BAD``: ``rache doctor``'s default ``--late``, so that the
#: red lag and the health verdict's "late" problem come together.
LAG_WARNING = 60.0
LAG_BAD = DEFAULT_LATE
#: The recent failed runs listed on the overview (``Scheduler.failures``), newest first.
OVERVIEW_FAILURES = 10
#: An error in a list (the overview's failures, the recurring page): its first line, cut to
#: this many characters; a job's page shows it whole (bounded by ``MAX_ERROR_BYTES``).
ERROR_SHOWN = 120
#: How often the overview's figures refresh in the browser, seconds.
REFRESH = 2.0
#: Host names a dashboard bound to a loopback address answers to.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
#: The largest action form read, bytes (an id, a token, a duration).
MAX_FORM = 64 * 1024
#: Headers of every response: nothing cached, nothing inline or from elsewhere.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Settings:
    """What a dashboard shows, and what it allows.

    :param url: the Redis URL (credentials are never shown).
    :param prefix: the schedule's key prefix.
    :param cluster: ``url`` names a node of a Redis Cluster.
    :param shards: the schedule's shard count.
    :param allow_actions: offer delete, run now and reschedule (POST, with a CSRF token).
    :param allowed_hosts: the host names requests may carry; empty: the loopback names
        and the address bound to.
    :param bound: the address the server listens on, for ``allowed_hosts``' default.
    """

    url: str
    prefix: str
    cluster: bool = False
    shards: int = 1
    allow_actions: bool = False
    allowed_hosts: Sequence[str] = ()
    bound: str = "127.0.0.1"
    #: the CSRF token that every action's form carries; new for each process
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def hosts(self) -> List[str]:
        """The host names this dashboard answers to (``*``: any)."""
        if self.allowed_hosts:
            return [_bracketed(host) for host in self.allowed_hosts]
        if is_wildcard(self.bound):
            return ["*"]
        return sorted({_bracketed(host) for host in (*LOOPBACK_NAMES, self.bound)})


def _bracketed(host: str) -> str:
    """An IPv6 address as a ``Host`` header names it: ``[::1]``."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
