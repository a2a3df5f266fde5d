"""Client memory of ``schedule_jobs`` over a stream: a generator of jobs, and a copy.

Two measurements, each in a fresh process so that its peak is its own:

- ``stream``: ``schedule_jobs`` over a generator of ``--jobs`` jobs (default 1,000,000),
  each with two small fields;
- ``copy``: ``schedule_jobs(source.export_jobs(), at=True)`` of a ``--copy``-job schedule
  (default 200,000) into another prefix, README's copy recipe.

Reported: the process's peak RSS (VmHWM) less its RSS just before the call, and
with ``--tracemalloc`` the peak of Python's allocations during the call (slower).

    python -m benchmarks.memory [--url redis://...] [--jobs N] [--copy N] [--tracemalloc]

``--url`` names a Redis whose database this flushes; without it, a throwaway redis-server
is started.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any, Dict, Iterator, Tuple

import redis

from rache import Scheduler
from tests.support import harness


def jobs(count: int) -> Iterator[Tuple[str, int, Dict[str, Any]]]:
    """``count`` jobs, made one at a time: what a stream from a database would give."""
    for i in range(count):
        yield (f"job-{i:07}", 60 + i % 3600, {"url": f"https://example.com/{i}", "n": i})


def rss_mib() -> float:
    """The process's peak resident set so far, MiB.

    Linux's VmHWM, reset at exec; ``ru_maxrss`` is not (a child started by a parent that
    holds much reports the parent's peak).
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, url: str, count: int, traced: bool) -> Dict[str, float]:
    """One measurement, in this process: the figures as a dict."""
    client = redis.Redis.from_url(url)
    if kind == "stream":
        target = Scheduler(client, "stream:")
        target.schedule_jobs([("warm", 60)])  # connected, scripts loaded, layout checked

        def call() -> int:
            return target.schedule_jobs(jobs(count))

    else:
        source, target = Scheduler(client, "src:"), Scheduler(client, "dst:")
        target.schedule_jobs([("warm", 60)])
        next(iter(source.export_jobs()), None)

        def call() -> int:
            return target.schedule_jobs(source.export_jobs(), at=True)

    before = rss_mib()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    done = call()
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else -1.0
    tracemalloc.stop()
    client.close()
    return {
        "jobs": done,
        "seconds": round(seconds, 1),
        "rss_growth_mib": round(rss_mib() - before, 1),
        "traced_peak_mib": round(traced_peak, 1),
    }


def measure(kind: str, url: str, count: int, traced: bool) -> Dict[str, float]:
    """Run ``child`` in a fresh interpreter; its figures."""
    command = [sys.executable, "-m", "benchmarks.memory", "--child", kind, "--url", url]
    command += ["--jobs" if kind == "stream" else "--copy", str(count)]
    command += ["--tracemalloc"] * traced
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: Dict[str, float] = json.loads(out.splitlines()[-1])
    return figures


def main() -> None:
    """Parse the arguments, start a server if need be, and print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--copy", type=int, default=200_000)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--child", choices=["stream", "copy"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        count = options.jobs if options.child == "stream" else options.copy
        figures = child(options.child, options.url, count, options.tracemalloc)
        print(json.dumps(figures))
        return
    server = None
    url = options.url
    if url is None:
        server = harness.start(harness.discover(None, prefer_local=True)[0])
        url = server.url
    try:
        client = redis.Redis.from_url(url)
        client.flushdb()
        Scheduler(client, "src:").schedule_jobs(jobs(options.copy))
        for kind, count in (("stream", options.jobs), ("copy", options.copy)):
            figures = measure(kind, url, count, options.tracemalloc)
            print(f"{kind:6} {count:>9,} jobs: {json.dumps(figures)}")
        client.flushdb()
        client.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
