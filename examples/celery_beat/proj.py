"""A small Celery project whose beat schedule lives in rache: run as many beats as you like.

    pip install '.[celery]'
    export REDIS_URL=redis://localhost:6379/0        # the broker, and rache's Redis
    celery -A proj worker -Q celery,maintenance -l info
    celery -A proj beat -l info                      # once, twice, on every host: each
                                                     # occurrence is sent once

``beat_scheduler`` makes ``-S rache.celery:BeatScheduler`` the default. Each task notes
its own id (the occurrence's id, ``<entry>:<due time>``) in the Redis list ``proj:runs``,
so you can see that each occurrence ran once whichever beat sent it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from celery.schedules import crontab

import rache.celery

URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

app = Celery("proj", broker=URL)
app.conf.beat_scheduler = "rache.celery:BeatScheduler"
app.conf.rache_prefix = "proj-beat:"  # the schedule's keys; rache_redis_url defaults to REDIS_URL
app.conf.timezone = "Europe/Paris"  # crontab entries follow this wall clock
rache.celery.report_outcomes(app)  # the worker records each run's outcome (rache failures)
app.conf.beat_schedule = {
    "heartbeat": {"task": "proj.heartbeat", "schedule": 2.0},
    "cleanup": {
        "task": "proj.cleanup",
        "schedule": timedelta(seconds=3),
        "kwargs": {"older_than": 3600},
        "options": {"queue": "maintenance", "expires": 30},
    },
    "morning-report": {
        "task": "proj.report",
        "schedule": crontab(minute=30, hour=7, day_of_week="mon-fri"),
        "args": ("daily",),
    },
}


def note(task_id: str) -> None:
    """Record that a task ran, by its id."""
    client = redis.Redis.from_url(URL)
    client.rpush("proj:runs", task_id)
    client.close()


@app.task(bind=True, name="proj.heartbeat")
def heartbeat(self: Any) -> None:
    """Every 2 s."""
    note(self.request.id)


@app.task(bind=True, name="proj.cleanup")
def cleanup(self: Any, older_than: int) -> None:
    """Every 3 s, on the maintenance queue, expiring after 30 s."""
    note(self.request.id)


@app.task(bind=True, name="proj.report")
def report(self: Any, kind: str) -> None:
    """At 07:30, Paris time, on weekdays."""
    note(self.request.id)
