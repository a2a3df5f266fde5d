"""make bench-dispatch: the Dispatcher against fixed-interval polling, and into rq against 0.3.1.

Three measures, in one run, on throwaway redis-servers (one per contender, so each server's
command count is that contender's alone):

1. Dispatch lag (due time -> handed to the handler), p50 and p99, for the Dispatcher
   (wake-up channel, sleeps until the next due time) and polling loops that sleep 1 s and
   5 s between ``pending_jobs`` calls, as rq-scheduler and Sidekiq-style pollers do. A
   feeder schedules the same jobs into each, 0.05 to 2 s ahead, at random moments, while
   all three run at once.
2. Commands per minute while idle: every command clients send to each server for 60 s
   (MONITOR, script-internal commands excluded) with nothing scheduled.
3. Jobs/s into rq: due jobs claimed and enqueued into an rq queue by the Dispatcher with
   ``adapters.rq``, against rache 0.3.1's claim (``benchmarks/legacy.py``) feeding
   ``Queue.enqueue`` itself, interleaved rounds, median of per-round ratios.

    python -m benchmarks.dispatch [--quick]

Writes ``benchmarks/results/dispatch.md`` and ``dispatch.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import redis

import rache
from benchmarks import legacy
from rache import Dispatcher, Job, Scheduler, adapters
from tests.support import harness as testing

RESULTS = Path(__file__).resolve().parent / "results"


def rq_task(job: Dict[str, Any]) -> None:
    """The rq task enqueued (never run here: the benchmark measures the feeding)."""


#: By name: run as ``-m benchmarks.dispatch``, this module is ``__main__``, which rq refuses.
TASK = "benchmarks.dispatch.rq_task"


class Poller:
    """A fixed-interval polling loop: ``pending_jobs()``, hand each job, sleep, repeat."""

    def __init__(self, scheduler: Scheduler, handler: Callable[[Job], Any], every: float):
        self.scheduler, self.handler, self.every = scheduler, handler, every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for job in self.scheduler.pending_jobs():
                self.handler(job)
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()


def contenders(
    servers: Dict[str, testing.RedisServer], handlers: Dict[str, Callable[[Job], Any]]
) -> Dict[str, Any]:
    """The dispatcher and the two pollers, each over a client of its own server."""
    built: Dict[str, Any] = {}
    for name, server in servers.items():
        scheduler = Scheduler(server.client(), "bench:")
        if name == "dispatcher":
            built[name] = Dispatcher(handlers[name], scheduler=scheduler)
        else:
            built[name] = Poller(scheduler, handlers[name], float(name.split()[1][:-1]))
    return built


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def lag(servers: Dict[str, testing.RedisServer], jobs: int, spread: float) -> Dict[str, Any]:
    """Dispatch lag p50/p99 (ms) of each contender, all running at once on the same feed."""
    lags: Dict[str, List[float]] = {name: [] for name in servers}

    def recorder(name: str) -> Callable[[Job], None]:
        def handler(job: Job) -> None:
            assert job.due_at is not None
            lags[name].append(time.time() - float(job.due_at))

        return handler

    running = contenders(servers, {name: recorder(name) for name in servers})
    threads = [threading.Thread(target=c.run, daemon=True) for c in running.values()]
    for thread in threads:
        thread.start()
    feeders = {name: Scheduler(server.client(), "bench:") for name, server in servers.items()}
    rng = random.Random(7)
    time.sleep(1)
    for i in range(jobs):
        time.sleep(rng.uniform(0, 2 * spread / jobs))
        ahead = round(rng.uniform(0.05, 2.0), 3)
        for feeder in feeders.values():
            feeder.schedule_job(f"job-{i}", ahead)
    deadline = time.monotonic() + 10
    while any(len(v) < jobs for v in lags.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for contender in running.values():
        contender.stop()
    for thread in threads:
        thread.join(10)
    result = {}
    for name, values in lags.items():
        result[name] = {
            "jobs": len(values),
            "p50_ms": percentile(values, 50) * 1000,
            "p99_ms": percentile(values, 99) * 1000,
        }
        print(f"  lag {name}: {result[name]}")
    return result


def idle(servers: Dict[str, testing.RedisServer], seconds: float) -> Dict[str, Any]:
    """Commands per minute each contender sends its server with nothing scheduled."""
    running = contenders(servers, {name: print for name in servers})
    threads = [threading.Thread(target=c.run, daemon=True) for c in running.values()]
    for thread in threads:
        thread.start()
    time.sleep(1)  # connected, subscribed, first claim made: idle from here
    counts: Dict[str, Dict[str, int]] = {}

    def watch(name: str, server: testing.RedisServer) -> None:
        counts[name] = monitor(server, seconds)

    watchers = [threading.Thread(target=watch, args=item) for item in servers.items()]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        watcher.join()
    for contender in running.values():
        contender.stop()
    for thread in threads:
        thread.join(35)
    result = {}
    for name, seen in counts.items():
        total = sum(seen.values())
        result[name] = {"per_minute": total * 60 / seconds, "commands": seen}
        print(f"  idle {name}: {result[name]}")
    return result


def monitor(server: testing.RedisServer, seconds: float) -> Dict[str, int]:
    """The commands clients (not scripts) send to ``server`` for ``seconds`` (MONITOR)."""
    client = server.client(socket_timeout=seconds + 30)  # an idle contender is silent
    marker = server.client()
    marker.ping()
    seen: Dict[str, int] = {}
    with client.monitor() as mon:  # type: ignore[no-untyped-call]
        timer = threading.Timer(seconds, marker.echo, args=("--end--",))
        timer.start()
        while True:
            command = mon.next_command()
            if command["command"] == "ECHO --end--":
                break
            if command["client_type"] != "lua":
                name = command["command"].split()[0].upper()
                seen[name] = seen.get(name, 0) + 1
    timer.join()  # the ECHO's reply read before its client closes
    marker.close()
    client.close()
    return seen


def into_rq(server: testing.RedisServer, jobs: int, rounds: int) -> Dict[str, Any]:
    """Jobs/s claimed and enqueued into rq: the Dispatcher with adapters.rq vs 0.3.1's loop."""
    from rq import Queue

    client = server.client()
    data = {"url": "https://example.com/feeds/0001", "timeout": 10}

    def fill() -> None:
        client.flushdb()
        Scheduler(client, "rache:").schedule_jobs((f"job-{i:06}", -10, data) for i in range(jobs))

    def dispatcher() -> float:
        fill()
        queue = Queue("bench", connection=client)
        start = time.perf_counter()
        Dispatcher(adapters.rq(queue, TASK), scheduler=Scheduler(client)).run(until_idle=True)
        elapsed = time.perf_counter() - start
        assert queue.count == jobs, queue.count
        return jobs / elapsed

    def legacy_loop() -> float:
        fill()
        queue = Queue("bench", connection=client)
        start = time.perf_counter()
        while batch := list(legacy.pending_jobs(client, limit=500)):
            for job in batch:
                queue.enqueue(TASK, job)
        elapsed = time.perf_counter() - start
        assert queue.count == jobs, queue.count
        return jobs / elapsed

    samples: Dict[str, List[float]] = {"dispatcher": [], "0.3.1": []}
    runs = {"dispatcher": dispatcher, "0.3.1": legacy_loop}
    for r in range(rounds):
        for name in runs if r % 2 == 0 else reversed(list(runs)):
            samples[name].append(runs[name]())
    client.flushdb()
    client.close()
    ratio = statistics.median(a / b for a, b in zip(samples["dispatcher"], samples["0.3.1"]))
    result = {
        "jobs": jobs,
        "rounds": rounds,
        "jobs_per_s": {name: statistics.median(v) for name, v in samples.items()},
        "samples": samples,
        "ratio_dispatcher_over_0.3.1": ratio,
    }
    print(f"  into rq: {result['jobs_per_s']}, ratio {ratio:.2f}")
    return result


def write(results: Dict[str, Any]) -> None:
    """dispatch.json, and dispatch.md for people."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dispatch.json").write_text(json.dumps(results, indent=2) + "\n")
    lag, idle, rq = results["lag"], results["idle"], results["into_rq"]
    lines = [
        "# Dispatcher benchmark",
        "",
        f"{results['machine']}; {results['when']}; `python -m benchmarks.dispatch"
        f"{' --quick' if results['quick'] else ''}`.",
        "",
        "| contender | lag p50 (ms) | lag p99 (ms) | idle commands/min |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in lag:
        lines.append(
            f"| {name} | {lag[name]['p50_ms']:.1f} | {lag[name]['p99_ms']:.1f} "
            f"| {idle[name]['per_minute']:.1f} |"
        )
    lines += [
        "",
        f"Lag: {lag['dispatcher']['jobs']} jobs scheduled 0.05-2 s ahead at random moments,"
        " the same feed into each contender, all running at once. Idle: every command clients"
        f" sent in {results['idle_seconds']:.0f} s (MONITOR), scaled to a minute.",
        "",
        f"Into rq ({rq['jobs']:,} due jobs, {rq['rounds']} interleaved rounds, medians):"
        f" Dispatcher + adapters.rq {rq['jobs_per_s']['dispatcher']:,.0f} jobs/s,"
        f" rache 0.3.1 + Queue.enqueue {rq['jobs_per_s']['0.3.1']:,.0f} jobs/s;"
        f" ratio {rq['ratio_dispatcher_over_0.3.1']:.2f}x (median of per-round ratios).",
        "",
    ]
    (RESULTS / "dispatch.md").write_text("\n".join(lines))


def main() -> int:
    """Run the three measures and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    options = parser.parse_args()
    specs = testing.discover(prefer_local=True)
    binaries = [spec for spec in specs if spec.kind == "binary"]
    if not binaries:
        print("no redis-server binary found", file=sys.stderr)
        return 1
    names = ["dispatcher", "poll 1s", "poll 5s"]
    servers = {name: testing.start(binaries[0]) for name in names}
    idle_seconds = 15.0 if options.quick else 60.0
    try:
        results: Dict[str, Any] = {
            "machine": f"{platform.machine()}, Python {platform.python_version()}, "
            f"redis-py {redis.__version__}, redis-server {binaries[0].version}, "
            f"rache {rache.__version__}",
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "quick": options.quick,
            "idle_seconds": idle_seconds,
        }
        print("dispatch lag:")
        results["lag"] = lag(servers, 40 if options.quick else 120, 10 if options.quick else 30)
        print("idle commands:")
        results["idle"] = idle(servers, idle_seconds)
        print("into rq:")
        results["into_rq"] = into_rq(
            servers["dispatcher"], 1000 if options.quick else 5000, 3 if options.quick else 5
        )
    finally:
        for server in servers.values():
            server.stop()
    write(results)
    print(f"wrote {RESULTS / 'dispatch.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
