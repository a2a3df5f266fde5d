"""make bench-rq-scheduler: rache.rq against rq-scheduler 0.14, on the same Redis.

Four measures, interleaved rounds (A B, B A, ...), medians of per-round ratios:

1. Scheduling: ``enqueue_at`` calls/s, one client (each call creates and saves an rq job,
   then adds it to the schedule).
2. Moving, one mover in this process: N due jobs into their rq queue, by rq-scheduler's
   ``enqueue_jobs()`` (what ``rqscheduler`` calls each interval) and by
   ``rache.rq.Scheduler.enqueue_jobs()`` (a claim, then a WATCH/MULTI move per job).
3. Moving, 3 processes: N due jobs, from the start of 3 ``rqscheduler --burst`` processes
   (one holds the lock, the others wait) or 3 ``python -m rache.rq --burst`` processes (all
   claim), until the rq queue holds all N; process start-up included for both.

4. Lag: from each job's due time to its ``enqueued_at`` in rq, one runner of each fed the
   same jobs at once (see ``lag``).

    python -m benchmarks.rq_scheduler [--quick]

Writes ``benchmarks/results/rq_scheduler.md`` and ``rq_scheduler.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List

import redis

import rache
from rache.rq import Scheduler
from tests.support import harness as testing

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
#: By name: the jobs are never run, only moved.
TASK = "benchmarks.rq_scheduler.task"
PAST = datetime(2020, 1, 1)
BIN = Path(sys.executable).parent


def task(n: int) -> int:
    """The rq task (never run here)."""
    return n


def theirs(client: Any) -> Any:
    from rq_scheduler import Scheduler as RQScheduler

    return RQScheduler(connection=client)


def schedule_rate(client: Any, make: Callable[[Any], Any], jobs: int) -> float:
    """enqueue_at calls/s of a scheduler."""
    client.flushdb()
    scheduler = make(client)
    start = time.perf_counter()
    for n in range(jobs):
        scheduler.enqueue_at(PAST, TASK, n)
    return jobs / (time.perf_counter() - start)


def fill(client: Any, make: Callable[[Any], Any], jobs: int) -> Any:
    client.flushdb()
    scheduler = make(client)
    for n in range(jobs):
        scheduler.enqueue_at(PAST, TASK, n)
    return scheduler


def move_rate(client: Any, make: Callable[[Any], Any], jobs: int) -> float:
    """Jobs/s moved into rq by one in-process enqueue_jobs() call."""
    scheduler = fill(client, make, jobs)
    start = time.perf_counter()
    scheduler.enqueue_jobs()
    elapsed = time.perf_counter() - start
    moved = client.llen("rq:queue:default")
    assert moved == jobs, moved
    return jobs / elapsed


def processes_rate(server: testing.RedisServer, command: List[str], jobs: int) -> float:
    """Jobs/s moved by 3 processes of ``command``, start-up included."""
    client = server.client()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": server.url}
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(3)
    ]
    try:
        while client.llen("rq:queue:default") < jobs:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
    finally:
        for process in processes:
            process.kill()
            process.wait()
    assert client.llen("rq:queue:default") == jobs
    client.close()
    return jobs / elapsed


def lag(spec: Any, jobs: int, spread: float) -> Dict[str, Dict[str, float]]:
    """Due time -> in the rq queue (the rq job's ``enqueued_at``), p50 and max, in ms.

    One runner of each, each on a redis-server of its own (rq-scheduler's keys are fixed),
    both fed the same due times at once: ``python -m rache.rq`` (its default ``-i 60``:
    the longest sleep) and ``rqscheduler -i 1`` (a poll each second; its default is 60).
    """
    import random

    servers = {name: testing.start(spec) for name in ("rache.rq", "rq-scheduler")}
    commands = {
        "rache.rq": [sys.executable, "-m", "rache.rq", "--url", servers["rache.rq"].url],
        "rq-scheduler": [
            str(BIN / "rqscheduler"),
            "--url",
            servers["rq-scheduler"].url,
            "-i",
            "1",
        ],
    }
    clients = {name: server.client() for name, server in servers.items()}
    makers = {"rache.rq": lambda c: Scheduler(connection=c), "rq-scheduler": theirs}
    schedulers = {name: makers[name](clients[name]) for name in servers}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            commands[name], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for name in servers
    ]
    due: Dict[str, Dict[str, float]] = {name: {} for name in servers}
    try:
        time.sleep(2)  # both started
        rng = random.Random(1)
        start = time.time()
        for n in range(jobs):  # at random moments, each due 1 to 2 s after it is scheduled
            time.sleep(max(0.0, start + n * spread / jobs - time.time()))
            # on a whole second: rq-scheduler drops the fraction (so would move it early)
            at = float(int(time.time() + rng.uniform(1.0, 2.0)))
            when = datetime.fromtimestamp(at, timezone.utc)
            for name, scheduler in schedulers.items():
                due[name][scheduler.enqueue_at(when, TASK, n).id] = at
        time.sleep(3.5)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    from rq.job import Job

    result = {}
    for name, client in clients.items():
        lags = []
        for job_id, at in due[name].items():
            enqueued = Job.fetch(job_id, connection=client).enqueued_at
            assert enqueued is not None, (name, job_id)
            lags.append((enqueued.replace(tzinfo=timezone.utc).timestamp() - at) * 1000)
        result[name] = {"p50_ms": statistics.median(lags), "max_ms": max(lags)}
        client.close()
    for server in servers.values():
        server.stop()
    return result


def median_ratio(samples: Dict[str, List[float]]) -> float:
    return statistics.median(a / b for a, b in zip(samples["rache.rq"], samples["rq-scheduler"]))


def main() -> int:
    """Run the three measures and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    options = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    binaries = [spec for spec in testing.discover(prefer_local=True) if spec.kind == "binary"]
    if not binaries:
        print("no redis-server binary found", file=sys.stderr)
        return 1
    jobs, rounds = (500, 2) if options.quick else (3000, 5)
    server = testing.start(binaries[0])
    client = server.client()
    ours: Callable[[Any], Any] = lambda c: Scheduler(connection=c)  # noqa: E731
    makers = {"rache.rq": ours, "rq-scheduler": theirs}
    commands = {
        "rache.rq": [sys.executable, "-m", "rache.rq", "--burst", "--url", server.url],
        "rq-scheduler": [str(BIN / "rqscheduler"), "--burst", "--url", server.url, "-i", "1"],
    }
    samples: Dict[str, Dict[str, List[float]]] = {
        measure: {name: [] for name in makers} for measure in ("schedule", "move", "processes")
    }
    try:
        for r in range(rounds):
            order = list(makers) if r % 2 == 0 else list(reversed(makers))
            for name in order:
                samples["schedule"][name].append(schedule_rate(client, makers[name], jobs))
                samples["move"][name].append(move_rate(client, makers[name], jobs))
                fill(client, makers[name], jobs)
                samples["processes"][name].append(processes_rate(server, commands[name], jobs))
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{m} {s['rache.rq'][-1]:,.0f} vs {s['rq-scheduler'][-1]:,.0f}"
                    for m, s in samples.items()
                )
            )
        server_version = client.info("server")["redis_version"]
        print("lag:")
        lags = lag(binaries[0], 30 if options.quick else 100, 5 if options.quick else 15)
        print(f"  {lags}")
    finally:
        client.close()
        server.stop()
    from importlib.metadata import version as installed

    results: Dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, redis-py {redis.__version__}, "
        f"redis-server {server_version}, rache {rache.__version__}, "
        f"rq-scheduler {installed('rq-scheduler')}, rq {installed('rq')}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jobs": jobs,
        "rounds": rounds,
        "samples": samples,
        "medians": {m: {n: statistics.median(v) for n, v in s.items()} for m, s in samples.items()},
        "ratios": {m: median_ratio(s) for m, s in samples.items()},
        "lag": lags,
    }
    write(results)
    print(f"wrote {RESULTS / 'rq_scheduler.md'}")
    return 0


def write(results: Dict[str, Any]) -> None:
    """rq_scheduler.json, and rq_scheduler.md for people."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rq_scheduler.json").write_text(json.dumps(results, indent=2) + "\n")
    medians, ratios = results["medians"], results["ratios"]
    rows = {
        "schedule": "`enqueue_at`, 1 client (calls/s)",
        "move": "move due jobs into rq, 1 mover in-process (jobs/s)",
        "processes": "move due jobs into rq, 3 processes, start-up included (jobs/s)",
    }
    lines = [
        "# rache.rq against rq-scheduler",
        "",
        f"{results['machine']}; {results['when']}; `python -m benchmarks.rq_scheduler`;"
        f" {results['jobs']:,} jobs, {results['rounds']} interleaved rounds, medians.",
        "",
        "| measure | rache.rq | rq-scheduler | ratio (median of rounds) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for measure, label in rows.items():
        lines.append(
            f"| {label} | {medians[measure]['rache.rq']:,.0f} "
            f"| {medians[measure]['rq-scheduler']:,.0f} | {ratios[measure]:.2f}x |"
        )
    lag = results["lag"]
    lines += [
        "",
        "| lag, due time to the rq queue (`enqueued_at`) | p50 (ms) | max (ms) |",
        "| --- | ---: | ---: |",
        f"| `python -m rache.rq` (-i 60) | {lag['rache.rq']['p50_ms']:,.1f} "
        f"| {lag['rache.rq']['max_ms']:,.1f} |",
        f"| `rqscheduler -i 1` (its default is 60) | {lag['rq-scheduler']['p50_ms']:,.1f} "
        f"| {lag['rq-scheduler']['max_ms']:,.1f} |",
    ]
    lines += [
        "",
        "Moving: rq-scheduler's `enqueue_jobs()` fetches each due job, enqueues it and ZREMs"
        " it; rache.rq claims a batch in one script call, then moves each job in a"
        " WATCH/MULTI transaction that checks the rq job first (so that a job handed out"
        " twice is moved once) and deletes its rache job. With 3 processes, rq-scheduler's"
        " lock lets one work; all of rache.rq's claim.",
        "",
    ]
    (RESULTS / "rq_scheduler.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
