"""The task of the tutorial (docs/tutorial/index.rst): what an rq worker runs for each job.

rq imports it by name, ``examples.tutorial.fetch_feed``, from the root of a checkout.
"""

from __future__ import annotations

from typing import Any, Dict


def fetch_feed(job: Dict[str, Any]) -> str:
    """Fetch one feed (here: say so); the job is rache's dict, ``{'id': ..., **data}``."""
    print(f"fetching {job['url']} (job {job['id']})")
    return str(job["url"])
