"""Live pollers, without I/O: who this process is, and when its loop announces itself.

A loop that hands out jobs (the Dispatchers, and through them ``rache dispatch``, the Celery
beat and the rq runners) holds an :class:`Announcer`: it builds the :class:`rache.Poller`
value to send, at most every ``ANNOUNCE_EVERY`` seconds, and the shells send it with
``Scheduler.announce``. Storage: ``rache/lua/README.md``, "Pollers".
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Callable, Optional, Union

from .arguments import default_poller_name, positive_seconds
from .constants import ANNOUNCE_EVERY, MAX_POLLER_TEXT, POLLER_TTL
from .models import Poller, Seconds


def host() -> str:
    """The host name of this machine, as a poller shows it."""
    return socket.gethostname()[:MAX_POLLER_TEXT] or "localhost"


def default_name() -> str:
    """``host:pid``, the pid read now, so that a forked child names itself anew.

    The one default of a poller's name: the name in its runs (``Run.claimed_by``,
    ``Scheduler.name``) and in ``Scheduler.pollers()`` alike.
    """
    return default_poller_name().decode("utf-8", "replace")


def version() -> str:
    """The rache version this process runs (``rache.__version__``).

    Read off the package already imported, not imported from here: the package imports
    every layer, this module one of the lowest (the layers contract, pyproject.toml).
    """
    return str(getattr(sys.modules.get(__package__ or "rache"), "__version__", "unknown"))


class Announcer:
    """When a loop announces itself, and what it says: its counts, as a :class:`Poller`.

    :param kind: what the loop is (``'dispatcher'``, ``'rache dispatch'``...).
    :param ttl: how long its entry lives after an announce, seconds: how long a process
        killed without a word stays listed. It announces every ``ANNOUNCE_EVERY`` seconds, or
        every third of a shorter ttl.
    :param name: its name, or what gives it at each announce (a Dispatcher's: its
        scheduler's ``name``, the one its claims record); None: ``host:pid``, read at each
        announce.
    """

    def __init__(
        self,
        kind: str,
        ttl: Seconds = POLLER_TTL,
        name: Union[str, Callable[[], str], None] = None,
    ) -> None:
        if not isinstance(kind, str) or not kind or len(kind) > MAX_POLLER_TEXT:
            raise ValueError(f"kind must be text of 1 to {MAX_POLLER_TEXT} characters: {kind!r}")
        if (
            name is not None
            and not callable(name)
            and (not isinstance(name, str) or not name or len(name) > MAX_POLLER_TEXT)
        ):
            raise ValueError(f"name must be text of 1 to {MAX_POLLER_TEXT} characters: {name!r}")
        self.ttl = positive_seconds(ttl, "poller_ttl")
        self.kind = kind
        self.name = name
        #: when the loop started (Unix seconds, its own clock), and last claimed (server clock)
        self.started = time.time()
        self.last_claim: Optional[float] = None
        self._sent = float("-inf")  # when the last announce was made (monotonic)
        #: whether the loop announced since it last withdrew (a withdrawal is then due)
        self.listed = False

    def every(self) -> float:
        """Seconds between two announces: ``ANNOUNCE_EVERY``, less for a short ttl."""
        return min(ANNOUNCE_EVERY, self.ttl / 3)

    def due(self, force: bool = False) -> bool:
        """Whether to announce now (and note that it is made): at most once ``every()``."""
        now = time.monotonic()
        if not force and now - self._sent < self.every():
            return False
        self._sent = now
        self.listed = True
        return True

    def poller(self, handed_out: int, failures: int) -> Poller:
        """The loop as it announces itself now."""
        return Poller(
            name=self.current_name(),
            kind=self.kind,
            host=host(),
            pid=os.getpid(),
            version=version(),
            started=self.started,
            last_claim=self.last_claim,
            handed_out=handed_out,
            failures=failures,
        )

    def withdrawn(self) -> Optional[str]:
        """The name to withdraw once the loop stops; None if it never announced."""
        if not self.listed:
            return None
        self.listed = False
        self._sent = float("-inf")  # a loop run again announces at once
        return self.current_name()

    def current_name(self) -> str:
        """Its name now: as given, as its source gives it, else ``host:pid``."""
        if callable(self.name):
            return self.name()
        return self.name or default_name()
