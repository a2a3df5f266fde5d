"""make bench-service: jobs/s through ``rache dispatch --call`` against the Dispatcher itself.

Four contenders, side by side in each round on one throwaway redis-server: 1 and 3
``rache dispatch --call benchmarks.service_target:count`` processes, and 1 and 3 processes
running ``rache.Dispatcher(count)`` directly (``python -m benchmarks.service_target``). In
each run, N jobs fall due at one instant a few seconds ahead, the processes already
started and asleep until then; the rate is N over the time from the first call to the last,
across the processes (each notes its own, ``time.time()``). Rounds interleave the
contenders; the figures are medians over rounds, and the overhead the median of each
round's ratio.

    python -m benchmarks.service [--jobs N] [--rounds R]

Writes ``benchmarks/results/service.md`` and ``service.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import redis

import rache
from rache import Scheduler
from tests.support import harness as testing

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CONTENDERS = ["dispatcher x1", "rache dispatch x1", "dispatcher x3", "rache dispatch x3"]


def command(name: str, url: str) -> List[str]:
    """The command line of one process of a contender."""
    if name.startswith("rache dispatch"):
        return [sys.executable, "-m", "rache", "--url", url, "dispatch",
                "--call", "benchmarks.service_target:count", "--log-level", "WARNING"]  # fmt: skip
    return [sys.executable, "-m", "benchmarks.service_target", url]


def one_run(name: str, server: testing.RedisServer, jobs: int) -> float:
    """Jobs/s of one contender over ``jobs`` jobs falling due at once."""
    client = server.client()
    client.flushdb()
    processes = int(name.rsplit("x", 1)[1])
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_OUT": out}
        started = [
            subprocess.Popen(command(name, server.url), cwd=ROOT, env=env) for _ in range(processes)
        ]
        try:
            # The processes start (a second or two) while the jobs are scheduled, then sleep
            # until they fall due, all at once.
            due = float(client.time()[0]) + 2.5 + jobs / 50_000
            Scheduler(client).schedule_jobs(((f"job-{i}", due) for i in range(jobs)), at=True)
            assert float(client.time()[0]) < due, "scheduling took longer than planned"
            deadline = time.monotonic() + 120
            while client.zcard("rache:queue"):
                assert time.monotonic() < deadline, "not drained in 120 s"
                time.sleep(0.05)
            time.sleep(0.5)  # the last batches claimed are being handed out
        finally:
            for process in started:
                process.send_signal(signal.SIGTERM)
            for process in started:
                process.wait(30)
        seen = [json.loads(path.read_text()) for path in Path(out).glob("*.json")]
    client.close()
    assert sum(s["count"] for s in seen) == jobs, (name, seen)
    first = min(s["first"] for s in seen if s["first"] is not None)
    last = max(s["last"] for s in seen if s["last"] is not None)
    return float(jobs / (last - first))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    spec = testing.local_binaries()[0]
    with tempfile.TemporaryDirectory() as folder:
        server = testing.start(spec, Path(folder))
        try:
            rates: Dict[str, List[float]] = {name: [] for name in CONTENDERS}
            for round_ in range(args.rounds):
                order = CONTENDERS if round_ % 2 == 0 else CONTENDERS[::-1]
                for name in order:
                    rates[name].append(one_run(name, server, args.jobs))
                    print(f"round {round_ + 1}: {name:<18} {rates[name][-1]:>10,.0f} jobs/s")
        finally:
            server.stop()
    results: Dict[str, Any] = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "redis": spec.version,
        "python": platform.python_version(),
        "rache": rache.__version__,
        "redis_py": redis.__version__,
        "cpus": os.cpu_count(),
        "rates": rates,
        "median": {name: statistics.median(values) for name, values in rates.items()},
        "ratio": {
            str(k): statistics.median(
                s / d for s, d in zip(rates[f"rache dispatch x{k}"], rates[f"dispatcher x{k}"])
            )
            for k in (1, 3)
        },
    }
    write(results)
    return 0


def write(results: Dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "service.json").write_text(json.dumps(results, indent=2) + "\n")
    median, ratio = results["median"], results["ratio"]
    lines = [
        "# `rache dispatch --call` against the Dispatcher itself",
        "",
        f"`make bench-service`: {results['jobs']:,} jobs falling due at one instant, drained by",
        "1 or 3 processes of each contender (already started, asleep until then), on one",
        f"redis-server {results['redis']}; {results['rounds']} rounds, the contenders",
        "interleaved; medians. The rate is the jobs over the time from the first target call",
        "to the last, across the processes. Python "
        f"{results['python']}, redis-py {results['redis_py']}, {results['cpus']} CPUs shared",
        "with the server (and, on this machine, with other work).",
        "",
        "| processes | `Dispatcher(count)` | `rache dispatch --call` | service / Dispatcher |",
        "|---|---|---|---|",
    ]
    for k in (1, 3):
        lines.append(
            f"| {k} | {median[f'dispatcher x{k}']:,.0f} jobs/s "
            f"| {median[f'rache dispatch x{k}']:,.0f} jobs/s | {ratio[str(k)]:.2f}x |"
        )
    lines += [
        "",
        "Per round (jobs/s):",
        "",
        "| contender | " + " | ".join(f"round {i + 1}" for i in range(results["rounds"])) + " |",
        "|---|" + "---|" * results["rounds"],
    ]
    for name, values in results["rates"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:,.0f}" for v in values) + " |")
    lines.append("")
    (RESULTS / "service.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
