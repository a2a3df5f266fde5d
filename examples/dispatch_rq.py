"""The Dispatcher feeding rq: each due job becomes an rq job, which an rq worker runs.

    pip install '.[rq]'
    REDIS_URL=redis://localhost:6379/0 python examples/dispatch_rq.py

Schedules five feeds, dispatches the due ones into the rq queue ``rache-example`` (the rq
job id names the occurrence, so a repeat is not enqueued twice), then runs an rq worker in
burst mode, which fetches them (here: prints them) and exits.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import redis
from rq import Queue, SimpleWorker

from rache import Dispatcher, Scheduler, adapters


def fetch_feed(job: Dict[str, Any]) -> str:
    """The rq task: what the worker runs for each job."""
    print(f"fetching {job['url']} (job {job['id']})")
    return job["url"]


def main() -> None:
    """Schedule, dispatch into rq, run the rq worker."""
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    scheduler = Scheduler(client, prefix="example-rq:")
    scheduler.schedule_jobs(
        (f"feed:{n}", -1, {"url": f"https://example.com/feeds/{n}"}) for n in range(5)
    )
    queue = Queue("rache-example", connection=client)
    dispatcher = Dispatcher(adapters.rq(queue, fetch_feed), scheduler=scheduler, reschedule_in=3600)
    dispatcher.run(until_idle=True)
    print(f"enqueued {dispatcher.handled} jobs; rq queue holds {queue.count}")
    SimpleWorker([queue], connection=client).work(burst=True)
    client.close()


if __name__ == "__main__":
    main()
