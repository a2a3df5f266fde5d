"""The shells: ``Scheduler`` (sync) and ``AsyncScheduler`` (asyncio), the same methods in order.

Both only do I/O. ``encode`` builds each operation's script call and ``decode`` reads its
reply; a claim and a paged reading are flows (``rache.claim``, ``rache.pages``) that the
shells drive call by call. This module names them where callers import them; each lives in
a module of its own:

- ``rache.basescheduler``: ``BaseScheduler``, what both share without I/O, and ``due_time``;
- ``rache.syncscheduler``: ``Scheduler``, over a redis-py client;
- ``rache.asyncscheduler``: ``AsyncScheduler``, over a redis.asyncio client.
"""

from __future__ import annotations

from .asyncscheduler import AsyncScheduler as AsyncScheduler
from .basescheduler import BaseScheduler as BaseScheduler
from .basescheduler import Entry as Entry
from .basescheduler import Progress as Progress
from .basescheduler import Start as Start
from .basescheduler import When as When
from .basescheduler import due_time as due_time
from .claim import Claim as Claim  # the type claim() returns, public from here
from .models import Exported as Exported  # the types the shells' methods take and return,
from .models import Job as Job  # importable from here as before the shells were split
from .models import Stats as Stats
from .syncscheduler import Scheduler as Scheduler

__all__ = [
    "AsyncScheduler",
    "BaseScheduler",
    "Claim",
    "Entry",
    "Exported",
    "Job",
    "Progress",
    "Scheduler",
    "Start",
    "Stats",
    "When",
    "due_time",
]
