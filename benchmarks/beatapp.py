"""The Celery app of ``make bench-beat``, and probes that stamp each message's due time.

Configured from the environment: ``BENCH_BROKER`` (the broker, also rache's and RedBeat's
Redis), ``BENCH_ENTRIES`` entries named ``e0``, ``e1``... every ``BENCH_EVERY`` seconds,
``BENCH_MAX_INTERVAL`` (``beat_max_loop_interval``, if set).

rache's task ids carry the occurrence's time. Celery's default scheduler and RedBeat's do
not say when an entry was due, so their probes (thin subclasses, for this benchmark only)
add a header ``x-due``: the entry's last run plus its interval, the time the scheduler
meant to send it.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler

URL = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")

app = Celery("beatapp", broker=URL)
app.conf.rache_prefix = "bench:"
app.conf.redbeat_redis_url = URL
app.conf.result_expires = None  # no default backend_cleanup entry: the same schedule for all
if os.environ.get("BENCH_MAX_INTERVAL"):
    app.conf.beat_max_loop_interval = float(os.environ["BENCH_MAX_INTERVAL"])
every = float(os.environ.get("BENCH_EVERY", "10"))
app.conf.beat_schedule = {
    f"e{n}": {"task": "bench.tick", "schedule": every}
    for n in range(int(os.environ.get("BENCH_ENTRIES", "1")))
}


def stamped(entry: Any) -> Any:
    """``entry`` with the header ``x-due`` (Unix seconds), when its last run is known."""
    if entry.last_run_at is not None:
        due = (entry.last_run_at + entry.schedule.run_every).timestamp()
        headers = {**entry.options.get("headers", {}), "x-due": due}
        entry.options = {**entry.options, "headers": headers}
    return entry


class CeleryProbe(PersistentScheduler):  # type: ignore[misc]
    """Celery's default scheduler, stamping ``x-due``."""

    def apply_async(self, entry: Any, *args: Any, **kwargs: Any) -> Any:
        """Celery's, with the stamp."""
        return super().apply_async(stamped(entry), *args, **kwargs)
