"""The Pub/Sub wake-up of a sleeping dispatcher: its subscription's helpers, for both shells.

The scripts that add jobs PUBLISH on ``<prefix>wakeup`` when they move the head of the
schedule earlier; a dispatcher subscribed to it wakes at once. When it cannot subscribe, it
says so once and wakes on its timer only (the next due time, or ``max_sleep``).
"""

from __future__ import annotations

import logging
from typing import Any

from .basedispatcher import BaseDispatcher

logger = logging.getLogger("rache.dispatch")


def no_wakeup(dispatcher: BaseDispatcher[Any], exc: BaseException) -> None:
    """Turn the wake-up off for good, said once: the loop then wakes on its timer."""
    logger.warning(
        "rache: cannot SUBSCRIBE to %r (%r): waking on the next due time or max_sleep only",
        dispatcher.channel,
        exc,
    )
    dispatcher.wakeup = False


def pubsub_factory(dispatcher: BaseDispatcher[Any]) -> Any:
    """The client's ``pubsub`` method; None (and wakeup turned off, said once) if it has none.

    Older redis-py's asyncio RedisCluster has no Pub/Sub: its dispatchers wake on their timer.
    """
    factory = getattr(dispatcher.scheduler.connection, "pubsub", None)
    if factory is None:
        logger.warning(
            "rache: %s has no Pub/Sub: waking on the next due time or max_sleep only",
            type(dispatcher.scheduler.connection).__name__,
        )
        dispatcher.wakeup = False
    return factory


async def aclose(pubsub: Any) -> None:
    """Close a redis.asyncio PubSub: ``aclose()`` from redis-py 5.0.1, ``reset()`` before."""
    close = getattr(pubsub, "aclose", None) or pubsub.reset
    await close()
