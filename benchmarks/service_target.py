"""The target of ``make bench-service``: counts its calls, and says when, on exit.

``rache dispatch --call benchmarks.service_target:count`` calls ``count`` for each job;
``python -m benchmarks.service_target URL`` runs the same target under a plain
``rache.Dispatcher`` in its own process (the in-process contender). On SIGTERM each writes
``{"count", "first", "last"}`` (time.time() of its first and last call) to
``$BENCH_OUT/<pid>.json``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict

_seen: Dict[str, Any] = {"count": 0, "first": None, "last": None}


def count(job: Any) -> None:
    """The target: one more call, and when."""
    now = time.time()
    if _seen["first"] is None:
        _seen["first"] = now
    _seen["last"] = now
    _seen["count"] += 1


def _write() -> None:
    folder = os.environ.get("BENCH_OUT")
    if folder:
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(_seen))


atexit.register(_write)


def main() -> None:
    """The in-process contender: ``Dispatcher(count)`` over the schedule at ``argv[1]``."""
    import redis

    from rache import Dispatcher, Scheduler

    Dispatcher(count, scheduler=Scheduler(redis.Redis.from_url(sys.argv[1]))).run()


if __name__ == "__main__":
    main()
