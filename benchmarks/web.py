"""make bench-web: how long ``rache web`` takes per page, on 10,000 jobs and on 1,000,000.

Issue #16's benchmark. One redis-server started for it (the local binary) holds two
schedules side by side, ``small:`` (10,000 jobs) and ``big:`` (1,000,000 jobs), each
spread over the next two hours with a part already due, two small data fields a job,
and 100 recurring jobs. A ``rache web`` process serves each (as operators run it). The
pages are requested in turn, small then big, round after round, so both see the same
machine; each answer's ``Server-Timing`` header gives the server's time for it (the
request's arrival to the response's start: Redis reads and rendering). Then Redis's own
time per overview (``INFO commandstats``, the usec of every command over a run of
overviews of the big schedule, per overview). Medians; writes ``web.md`` and ``web.json``
to ``benchmarks/results/``.

    python -m benchmarks.web [--jobs 1000000] [--rounds 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Tuple

import redis

from benchmarks.bench import DATA, machine
from rache import Every, Scheduler
from tests.support import harness
from tests.support.webtools import start_web, stop

RESULTS = Path(__file__).resolve().parent / "results"
#: The pages measured, and what each reads.
PAGES = {
    "/": "overview: stats (60 intervals) and one page of 25 jobs",
    "/api/overview": "the overview's live refresh (JSON), every 2 s in the browser",
    "/jobs/job%3A0000042": "a job's page: job_details and the server clock",
    "/recurring": "recurring jobs: the rules hash, and job_details of a page of 50",
}
TARGET_MS = 300
RECURRING = 100


def fill(client: redis.Redis, prefix: str, jobs: int) -> float:
    """Schedule ``jobs`` over the next two hours (a twentieth already due); the seconds."""
    started = time.perf_counter()
    scheduler = Scheduler(client, prefix)
    scheduler.schedule_jobs(
        (f"job:{n:07d}", (n * 7919) % 7200 - 360, DATA) for n in range(jobs)
    )  # a stream: batches of 500, in bounded memory
    for n in range(RECURRING):
        scheduler.schedule_recurring(f"every:{n:03d}", Every(60 + n), data=DATA)
    return time.perf_counter() - started


def get(address: str, path: str) -> Tuple[float, float]:
    """One request: (server ms from Server-Timing, round trip ms seen by this client)."""
    started = time.perf_counter()
    with urllib.request.urlopen(address.rstrip("/") + path, timeout=30) as response:
        response.read()
        timing = response.headers["Server-Timing"]
    took = (time.perf_counter() - started) * 1000
    return float(timing.split("dur=")[1]), took


def redis_usec(client: redis.Redis) -> Tuple[int, int, int]:
    """(usec, calls, EVALSHA calls) of what Redis ran so far (INFO commandstats)."""
    stats = client.info("commandstats")
    return (
        sum(int(entry["usec"]) for entry in stats.values()),
        sum(int(entry["calls"]) for entry in stats.values()),
        int(stats.get("cmdstat_evalsha", {}).get("calls", 0)),
    )


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="100,000 jobs, 15 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.rounds = 100_000, 15
    spec = harness.local_binaries()[0]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        server = harness.start(spec, Path(folder))
        client = server.client()
        try:
            sizes = {"small:": args.small, "big:": args.jobs}
            filled = {prefix: fill(client, prefix, jobs) for prefix, jobs in sizes.items()}
            memory = client.info("memory")["used_memory_human"]
            servers = {prefix: start_web(server.url, "--prefix", prefix) for prefix in sizes}
            try:
                for _, address in servers.values():  # warm: scripts, pools, caches
                    for path in PAGES:
                        for _ in range(3):
                            get(address, path)
                timings: Dict[str, Dict[str, List[Tuple[float, float]]]] = {
                    prefix: {path: [] for path in PAGES} for prefix in sizes
                }
                for round_ in range(args.rounds):
                    order = list(sizes) if round_ % 2 == 0 else list(sizes)[::-1]
                    for path in PAGES:
                        for prefix in order:
                            timings[prefix][path].append(get(servers[prefix][1], path))
                usec, calls, scripts = redis_usec(client)
                overviews = 50
                for _ in range(overviews):
                    get(servers["big:"][1], "/")
                usec_after, calls_after, scripts_after = redis_usec(client)
            finally:
                for process, _ in servers.values():
                    stop(process)
            info = machine(client)
        finally:
            client.close()
            server.stop()
    results = {
        "jobs": sizes,
        "rounds": args.rounds,
        "fill_seconds": filled,
        "redis_memory": memory,
        "redis_ms_per_overview": (usec_after - usec) / overviews / 1000,
        "redis_calls_per_overview": (calls_after - calls) / overviews,
        "redis_scripts_per_overview": (scripts_after - scripts) / overviews,
        "pages": {
            path: {
                prefix: {
                    "server_ms_median": statistics.median(t[0] for t in timings[prefix][path]),
                    "server_ms_max": max(t[0] for t in timings[prefix][path]),
                    "round_trip_ms_median": statistics.median(t[1] for t in timings[prefix][path]),
                }
                for prefix in sizes
            }
            for path in PAGES
        },
        "machine": info,
        "seconds": time.perf_counter() - began,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "web.md").write_text(report(results))
    print(report(results))
    return 0


def report(results: Dict[str, Any]) -> str:
    """The results as Markdown."""
    small, big = results["jobs"]["small:"], results["jobs"]["big:"]
    info = "; ".join(f"{key}: {value}" for key, value in results["machine"].items())
    lines = [
        f"Measured with `make bench-web` in {results['seconds']:.0f} s on {info}.",
        "",
        f"Two schedules in one Redis ({results['redis_memory']} used): {small:,} and "
        f"{big:,} jobs, each with {RECURRING} recurring jobs; a `rache web` process for "
        f"each; every page requested in turn on both, {results['rounds']} rounds. Server "
        "time: the `Server-Timing` header of each answer (arrival to response start: "
        "Redis reads and rendering); round trip: as this client saw it (a new connection "
        "each). Medians.",
        "",
        f"| page | what it reads | server ms, {small:,} jobs | server ms, {big:,} jobs "
        f"| {big:,} / {small:,} | max server ms, {big:,} | round trip ms, {big:,} |",
        "|---|---|---|---|---|---|---|",
    ]
    for path, by_size in results["pages"].items():
        a, b = by_size["small:"], by_size["big:"]
        lines.append(
            f"| `{path}` | {PAGES[path]} | {a['server_ms_median']:.1f} | "
            f"{b['server_ms_median']:.1f} | {b['server_ms_median'] / a['server_ms_median']:.2f}x "
            f"| {b['server_ms_max']:.1f} | {b['round_trip_ms_median']:.1f} |"
        )
    overview = results["pages"]["/"]["big:"]["server_ms_median"]
    met = "met" if overview < TARGET_MS else "NOT met"
    ratio = overview / results["pages"]["/"]["small:"]["server_ms_median"]
    lines += [
        "",
        f"**The overview of {big:,} jobs: {overview:.1f} ms of server time per request "
        f"(median)**; target under {TARGET_MS} ms: {met}. Redis's own time per overview: "
        f"{results['redis_ms_per_overview']:.2f} ms over "
        f"{results['redis_scripts_per_overview']:.0f} script calls, "
        f"{results['redis_calls_per_overview']:.0f} commands with those the scripts run "
        "(`INFO commandstats` over 50 overviews of the big schedule). A page reads one "
        f"page of jobs, never the whole schedule: the overview takes {ratio:.2f}x as long "
        f"on {big:,} jobs as on {small:,}.",
        "",
        "Filling the schedules (`schedule_jobs`, a stream): "
        + ", ".join(
            f"{results['jobs'][p]:,} jobs in {s:.1f} s" for p, s in results["fill_seconds"].items()
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
