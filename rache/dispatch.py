"""The dispatch loop: claim due jobs, hand each to a handler, sleep until the next is due.

One core without I/O (:class:`rache.dispatchloop.DispatchLoop`) makes every decision: how
long to sleep after a claim, how long to back off after a connection error, what to count
and log. The sync :class:`Dispatcher` and the asyncio :class:`AsyncDispatcher` only do the
I/O it asks for, and claim through the schedulers' public claim seam (``claim``,
``claim_batch``, ``put_back``, ``forget_jobs``). ``run_once()`` is one round of that loop
(one claim handed out), public, for a loop of your own: the Celery beat's ticks are such.

Wake-up: each claim's reply carries the earliest due time left in the schedule (read by the
same script, no extra round trip), so the loop sleeps exactly until then, at most
``max_sleep``. The scripts that add jobs (schedule, bulk schedule, put-back) PUBLISH on the
channel ``<prefix>wakeup`` when they move the head of the schedule earlier, and a sleeping
dispatcher, subscribed to it, wakes at once.

The loop lives in a module per idea, named here where callers import it:

- ``rache.basedispatcher``: ``BaseDispatcher``, what both share (options, core, stop());
- ``rache.syncdispatcher``: ``Dispatcher``; ``rache.asyncdispatcher``: ``AsyncDispatcher``;
- ``rache.wakeup``: the Pub/Sub subscription; ``rache.signals``: SIGTERM and SIGINT.

Their log records go to the logger ``rache.dispatch``.
"""

from __future__ import annotations

from .asyncdispatcher import AsyncDispatcher as AsyncDispatcher
from .basedispatcher import HEARTBEAT_EVERY as HEARTBEAT_EVERY
from .basedispatcher import BaseDispatcher as BaseDispatcher
from .basedispatcher import ErrorHook as ErrorHook
from .basedispatcher import Handler as Handler
from .dispatchloop import DispatchLoop as DispatchLoop
from .syncdispatcher import Dispatcher as Dispatcher

__all__ = ["AsyncDispatcher", "DispatchLoop", "Dispatcher"]
