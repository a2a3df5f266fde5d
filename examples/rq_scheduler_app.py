"""rq-scheduler's API on rache: schedule rq jobs, move them into rq when due, run them.

    pip install '.[rq]'
    REDIS_URL=redis://localhost:6379/0 python examples/rq_scheduler_app.py

The calls are rq-scheduler's (``enqueue_at``, ``enqueue_in``, ``schedule``...), only the
import changes. The runner, which rq-scheduler's ``rqscheduler`` process was, runs here
for three seconds in this process; in production run as many as you like, with no lock::

    python -m rache.rq --url redis://localhost:6379/0          # or:
    rache dispatch --rq-scheduler --prefix rache:rq:

Then an rq worker (here in-process, in burst mode) runs what the runner moved into rq.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone

import redis
from rq import Queue, SimpleWorker

from rache.rq import Scheduler


def greet(name: str) -> str:
    """The rq task."""
    print(f"hello {name}")
    return name


def main() -> None:
    """Schedule four jobs, run a runner for 3 s, then an rq worker."""
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    scheduler = Scheduler(queue_name="rq-example", connection=client, interval=1)

    scheduler.enqueue_at(datetime(2020, 1, 1), greet, "from the past")  # naive: UTC; due now
    soon = scheduler.enqueue_in(timedelta(seconds=1), greet, "a second later", job_id="soon")
    scheduler.schedule(
        datetime.now(timezone.utc), greet, args=["every second"], interval=1, repeat=3
    )
    report = scheduler.cron("0 6 * * *", greet, args=["at six"])  # each day, 06:00 UTC
    print(f"scheduled {scheduler.count()} jobs; 'soon' is an rq job already: {soon.id}")

    dispatcher = scheduler.dispatcher()  # a rache.Dispatcher with the rq runner as handler
    threading.Timer(3.0, dispatcher.stop).start()
    dispatcher.run()  # until stop(): sleeps until the next due time, moves each due job
    print(f"moved {dispatcher.handled} jobs into rq; still scheduled: {scheduler.count()}")

    queue = Queue("rq-example", connection=client)
    SimpleWorker([queue], connection=client).work(burst=True)
    scheduler.cancel(report)
    client.close()


if __name__ == "__main__":
    main()
