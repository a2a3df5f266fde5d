"""The Dispatcher feeding Celery through its Redis broker.

    pip install '.[celery]'
    REDIS_URL=redis://localhost:6379/0 python examples/dispatch_celery.py

Schedules three reports, dispatches them as Celery tasks named ``reports.build`` (the task
id is the job's occurrence id), and shows the messages waiting in the broker's queue, where
a worker (``celery -A yourapp worker``) defining ``reports.build`` would take them.
"""

from __future__ import annotations

import json
import os

import redis
from celery import Celery

from rache import Dispatcher, Scheduler, adapters


def main() -> None:
    """Schedule, dispatch into Celery's broker, show the messages."""
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    client = redis.Redis.from_url(url)
    scheduler = Scheduler(client, prefix="example-celery:")
    scheduler.schedule_jobs((f"report:{n}", -1, {"customer": n}) for n in range(3))
    app = Celery("example", broker=url)
    handler = adapters.celery(app, "reports.build", queue="rache-example")
    Dispatcher(handler, scheduler=scheduler).run(until_idle=True)
    for raw in client.lrange("rache-example", 0, -1):
        message = json.loads(raw)
        print("in the broker:", message["headers"]["task"], message["headers"]["id"])
    client.close()


if __name__ == "__main__":
    main()
