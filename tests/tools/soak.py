"""The concurrency soak: many pollers and writers on one schedule, every claim logged.

Pollers claim (half of them removing jobs, half rescheduling them an hour on) while writers
reschedule and delete random jobs. Every write gives the job a new version in its data, in
the same atomic step as its new due time, so a claim logged as (id, version) names the due
time it was claimed for. Afterwards:

- no (id, version) was handed out twice: no job went out twice for the same due time;
- no job was lost: the last thing written to each job was claimed, is still scheduled, or
  was a delete.

``python -m tests.tools.soak --jobs 50000`` (``make soak``) prints the counts; the test suite runs
it small. With ``faults``, the harness also flushes the script cache, kills pollers'
connections and restarts the server (append-only file, fsync always) while pollers run;
pollers then reschedule what they claim and delete it once handled, as a worker would, so a
batch whose reply a dropped connection lost comes back (at least once), and every claim
that was handed out is still handed out only once.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import redis

from rache import Scheduler
from tests.support import harness

PREFIX = "soak:"
SPREAD = 3.0  # seconds over which the initial jobs fall due


@dataclass
class Report:
    """What a soak run saw."""

    jobs: int
    pollers: int
    writers: int
    writes: int
    claims: int
    #: (id, version) pairs handed out more than once
    duplicates: int
    #: jobs whose last write was neither claimed, nor still scheduled, nor a delete
    lost: int
    #: connection errors the pollers met and survived (faults only)
    errors: int
    faults: List[str]
    seconds: float


def _client(url: str, name: str) -> Any:
    client = redis.Redis.from_url(url, client_name=name, socket_timeout=10)
    client.ping()
    return client


def _poll(url: str, index: int, reschedule_in: Optional[int], handle: bool, folder: str,
          stop: Any, barrier: Any) -> None:  # fmt: skip
    """One poller: claim until told to stop and nothing is due; log each claim."""
    client = _client(url, f"soak-poller-{index}")
    scheduler = Scheduler(client, PREFIX)
    barrier.wait()
    errors = 0
    with open(Path(folder) / f"poller-{index}.log", "w") as log:
        while True:
            try:
                batch = list(
                    scheduler.pending_jobs(reschedule_in, limit=random.choice([1, 50, 500]))
                )
            except redis.ConnectionError:
                errors += 1
                time.sleep(0.05)
                continue
            for job in batch:
                log.write(json.dumps([job["id"], job["v"]]) + "\n")
                while handle:  # a worker that handled the job: it must not come back
                    try:
                        scheduler.delete_job(job["id"])
                        break
                    except redis.ConnectionError:
                        errors += 1
                        time.sleep(0.05)
            if not batch and stop.is_set():
                break
    Path(folder, f"poller-{index}.errors").write_text(str(errors))
    client.close()


def _write(url: str, index: int, writers: int, jobs: int, writes: int, folder: str,
           barrier: Any) -> None:  # fmt: skip
    """One writer: reschedule (a new version) or delete random jobs of its own share."""
    client = _client(url, f"soak-writer-{index}")
    scheduler = Scheduler(client, PREFIX)
    rng = random.Random(index)
    mine = [i for i in range(jobs) if i % writers == index]
    barrier.wait()
    with open(Path(folder) / f"writer-{index}.log", "w") as log:
        for n in range(writes):
            job_id = f"job-{rng.choice(mine):07}"
            while True:
                try:
                    if rng.random() < 0.2:
                        scheduler.delete_job(job_id)
                        entry = [job_id, None]
                    else:
                        version = f"w{index}-{n}"
                        scheduler.schedule_job(job_id, rng.choice([-1, 0, 0.5, 1]), v=version)
                        entry = [job_id, version]
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            log.write(json.dumps(entry) + "\n")
    client.close()


def run(url: str, jobs: int = 50_000, pollers: int = 8, writers: int = 2, writes: int = 10_000,
        server: Optional[harness.RedisServer] = None,
        faults: bool = False, progress: Callable[[str], None] = print) -> Report:  # fmt: skip
    """Run one soak on the Redis at ``url`` (flushing its database) and check it.

    ``faults`` needs ``server`` (one this process started, with an append-only file) to
    restart it.
    """
    started = time.perf_counter()
    admin = _client(url, "soak-admin")
    admin.flushdb()
    # Due over the first seconds, so that pollers claim while writers and faults strike.
    Scheduler(admin, PREFIX).schedule_jobs(
        (f"job-{i:07}", SPREAD * i / jobs - 0.5, {"v": "initial"}) for i in range(jobs)
    )
    progress(f"scheduled {jobs:,} jobs, due over the next {SPREAD:g} seconds")
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    barrier = context.Barrier(pollers + writers + 1)
    with tempfile.TemporaryDirectory(prefix="rache-soak-") as folder:
        processes = [
            context.Process(
                target=_poll,
                args=(
                    url,
                    i,
                    5 if faults else (3600 if i % 2 else None),
                    faults,
                    folder,
                    stop,
                    barrier,
                ),
            )
            for i in range(pollers)
        ] + [
            context.Process(target=_write, args=(url, i, writers, jobs, writes, folder, barrier))
            for i in range(writers)
        ]
        for process in processes:
            process.start()
        barrier.wait()
        done_faults = _inject(admin, server) if faults else []
        for process in processes[pollers:]:
            process.join()
        progress(f"writers done ({writers} x {writes:,} writes); letting due times pass")
        # Until every job has been due, and (with faults) a lost batch's 5 s have passed.
        time.sleep(SPREAD + (6 if faults else 1.5))
        stop.set()
        for process in processes[:pollers]:
            process.join()
        if any(process.exitcode for process in processes):
            raise RuntimeError(f"a soak process failed: {[p.exitcode for p in processes]}")
        report = _check(admin, folder, jobs, pollers, writers, writes, done_faults)
    report.seconds = time.perf_counter() - started
    admin.close()
    return report


def _inject(admin: Any, server: Optional[harness.RedisServer]) -> List[str]:
    """Faults while pollers run: a SCRIPT FLUSH, killed poller connections, a restart."""
    done = []
    time.sleep(0.2)
    admin.script_flush()
    done.append("SCRIPT FLUSH")
    for _ in range(5):
        time.sleep(0.1)
        killed = 0
        for client in admin.client_list():
            if client.get("name", "").startswith("soak-poller"):
                admin.client_kill_filter(_id=client["id"])
                killed += 1
        done.append(f"CLIENT KILL x{killed}")
    if server is not None and server.handle is not None:
        time.sleep(0.2)
        server.handle.stop()
        server.handle.start()
        done.append("restart")
    return done


def _check(admin: Any, folder: str, jobs: int, pollers: int, writers: int, writes: int,
           faults: List[str]) -> Report:  # fmt: skip
    claims: collections.Counter[Tuple[str, str]] = collections.Counter()
    errors = 0
    for i in range(pollers):
        for line in Path(folder, f"poller-{i}.log").read_text().splitlines():
            job_id, version = json.loads(line)
            claims[(job_id, version)] += 1
        errors += int(Path(folder, f"poller-{i}.errors").read_text())
    last: Dict[str, Optional[str]] = {f"job-{i:07}": "initial" for i in range(jobs)}
    for i in range(writers):
        for line in Path(folder, f"writer-{i}.log").read_text().splitlines():
            job_id, version = json.loads(line)
            last[job_id] = version
    scheduled = {}
    for job_id, _due in Scheduler(admin, PREFIX).scheduled_jobs(with_times=True):
        scheduled[job_id] = Scheduler(admin, PREFIX).job_details(job_id).get("v")
    lost = sum(
        1
        for job_id, version in last.items()
        if version is not None and (job_id, version) not in claims
        and scheduled.get(job_id) != version
    )  # fmt: skip
    return Report(
        jobs=jobs,
        pollers=pollers,
        writers=writers,
        writes=writers * writes,
        claims=sum(claims.values()),
        duplicates=sum(1 for n in claims.values() if n > 1),
        lost=lost,
        errors=errors,
        faults=faults,
        seconds=0.0,
    )


def main() -> int:
    """``make soak``: a full-size run on a throwaway server; exit 1 on any duplicate or loss."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--writes", type=int, default=10_000, help="per writer")
    parser.add_argument(
        "--faults", action="store_true", help="script flush, kills, a restart (no writers)"
    )
    parser.add_argument("--url", help="a Redis whose database may be flushed")
    options = parser.parse_args()
    if options.faults:
        options.writers = options.writes = 0  # a worker deletes what it handled: no writers
    spec = harness.discover(options.url, prefer_local=True)[0]
    durable = ["--appendonly", "yes", "--appendfsync", "always"] if options.faults else []
    server = harness.start(spec, args=durable)
    print(f"soak on {spec.describe()}")
    try:
        report = run(
            server.url, options.jobs, options.pollers, options.writers, options.writes,
            server=server, faults=options.faults,
        )  # fmt: skip
    finally:
        server.stop()
    for key, value in asdict(report).items():
        print(f"  {key:>10}: {value:,.1f}" if isinstance(value, float) else f"  {key:>10}: {value}")
    return 1 if report.duplicates or report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
