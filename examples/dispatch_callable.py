"""The Dispatcher with a plain function as its handler: jobs due in 0.2 s, handed out on time.

    REDIS_URL=redis://localhost:6379/0 python examples/dispatch_callable.py

Schedules three jobs, runs a dispatcher that sleeps until each is due (woken by the
schedule's wake-up channel), prints each with its dispatch lag, and stops after the third.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict

import redis

from rache import Dispatcher, Scheduler, adapters


def main() -> None:
    """Schedule, dispatch, report."""
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    scheduler = Scheduler(client, prefix="example-callable:")
    handed = []

    def send_email(job: Dict[str, Any]) -> None:
        handed.append(job["id"])
        print(f"send {job['to']!r} (job {job['id']}), {time.time():.3f}")
        if len(handed) == 3:
            dispatcher.stop()

    dispatcher = Dispatcher(adapters.call(send_email), scheduler=scheduler)
    for n in range(3):
        scheduler.schedule_job(f"welcome:{n}", 0.2 * (n + 1), to=f"user{n}@example.com")
    dispatcher.run()
    print(f"handled {dispatcher.handled}, largest lag {dispatcher.max_lag * 1000:.1f} ms")
    client.close()


if __name__ == "__main__":
    main()
