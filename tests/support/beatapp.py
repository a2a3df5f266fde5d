"""The Celery app that the beat tests run ``celery -A tests.support.beatapp beat`` on.

Configured from the environment, so that each test starts real beats on its own broker,
Redis, prefix and schedule: ``BEAT_BROKER``, ``BEAT_RACHE_URL`` (the ``rache_redis_url``
setting, if set), ``BEAT_PREFIX`` (``rache_prefix``), ``BEAT_TZ`` (``timezone``),
``BEAT_QUEUE`` (``task_default_queue``) and ``BEAT_SCHEDULE``, JSON: each entry's
``task``, ``args``, ``kwargs``, ``options`` and one of ``every`` (seconds), ``crontab``
(its keyword arguments) or ``solar`` (event, latitude, longitude).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from celery import Celery
from celery.schedules import crontab, solar


def entry(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One beat_schedule entry from its JSON form."""
    if "crontab" in spec:
        schedule: Any = crontab(**spec["crontab"])
    elif "solar" in spec:
        schedule = solar(*spec["solar"])
    else:
        schedule = spec["every"]
    out = {"task": spec["task"], "schedule": schedule}
    out.update({key: spec[key] for key in ("args", "kwargs", "options") if key in spec})
    return out


app = Celery("beatapp", broker=os.environ.get("BEAT_BROKER", "redis://127.0.0.1:6379/0"))
if os.environ.get("BEAT_RACHE_URL"):
    app.conf.rache_redis_url = os.environ["BEAT_RACHE_URL"]
if "BEAT_PREFIX" in os.environ:
    app.conf.rache_prefix = os.environ["BEAT_PREFIX"]
app.conf.timezone = os.environ.get("BEAT_TZ", "UTC")
app.conf.task_default_queue = os.environ.get("BEAT_QUEUE", "celery")
app.conf.broker_connection_retry_on_startup = True
app.conf.beat_schedule = {
    name: entry(spec) for name, spec in json.loads(os.environ.get("BEAT_SCHEDULE", "{}")).items()
}
