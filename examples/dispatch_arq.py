"""The asyncio Dispatcher feeding arq: each due job becomes an arq job, run by an arq worker.

    pip install '.[arq]'
    REDIS_URL=redis://localhost:6379/0 python examples/dispatch_arq.py

Schedules three jobs, dispatches them into arq with the occurrence id as arq's job id (arq
refuses a second job of that id), then runs an arq worker in burst mode, which runs them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict

import redis.asyncio
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from rache import adapters
from rache.aio import AsyncDispatcher, AsyncScheduler


async def resize(ctx: Dict[str, Any], job: Dict[str, Any]) -> str:
    """The arq task: what the worker runs for each job."""
    print(f"resizing {job['image']} (job {job['id']})")
    return str(job["image"])


async def main() -> None:
    """Schedule, dispatch into arq, run the arq worker."""
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    settings = RedisSettings.from_dsn(url)
    client = redis.asyncio.Redis.from_url(url)
    scheduler = AsyncScheduler(client, prefix="example-arq:")
    await scheduler.schedule_jobs((f"image:{n}", -1, {"image": f"{n}.png"}) for n in range(3))
    pool = await create_pool(settings)
    dispatcher = AsyncDispatcher(adapters.arq(pool, "resize"), scheduler=scheduler)
    await dispatcher.run(until_idle=True)
    print(f"enqueued {dispatcher.handled} jobs")
    worker = Worker(functions=[resize], redis_pool=pool, burst=True, handle_signals=False)
    await worker.main()
    await worker.close()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
