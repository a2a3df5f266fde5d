"""What exactly-once and run history cost on the server, against the bare scripts.

Server time (INFO commandstats, usec per EVALSHA) of:

- one ``schedule_job`` with two fields: the bare script of before (``benchmarks.bare``), and
  rache's (a call record and a run token);
- one claim of 500 due jobs with two fields, in a schedule of 20,000: bare, rache's without
  run tokens (the jobs' tokens removed: the record only), rache's recording no run
  (``history=0``), and rache's recording each job's run (``history=20``, the default);

interleaved rounds, medians. Then the memory of a record (MEMORY USAGE), of the run
tokens per scheduled job, and of runs (``<prefix>lastrun`` and the lists): per job with one
run, and with 20. Results in benchmarks/results/records.md.

    python -m benchmarks.records [--url redis://...] [--rounds N]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import redis

from benchmarks import bare
from rache import Scheduler, scripts
from rache.constants import CALL_RECORD_TTL
from tests.support import harness

DATA: Dict[str, Any] = {"url": "http://example.com/feed", "timeout": 10}
BARE = bare.load()


def server_usec(client: Any, action: Callable[[], int]) -> float:
    """Server time per EVALSHA while ``action`` runs; it returns how many calls it made."""
    none = {"calls": 0, "usec": 0}  # a new server has run no EVALSHA yet
    before = client.info("commandstats").get("cmdstat_evalsha", none)
    calls = action()
    after = client.info("commandstats")["cmdstat_evalsha"]
    assert after["calls"] - before["calls"] == calls
    return float(after["usec"] - before["usec"]) / calls


def schedules(client: Any, recorded: bool, n: int = 2000) -> int:
    script = scripts.SCHEDULE if recorded else BARE["schedule"]
    for i in range(n):
        job = f"job-{i}"
        args = [b"s:wakeup", job, 60000, b"s", 2, b"url", DATA["url"], b"timeout", b"10"]
        keys: List[Any] = ["s:queue", "s:job:" + job]
        if recorded:  # schedule-4.lua: the runs and the record's keys too
            made = os.urandom(12)
            args += [CALL_RECORD_TTL * 1000, made]
            keys += ["s:runs", b"s:call:" + made]
        client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    return n


def claim_usec(client: Any, kind: str) -> float:
    """Server time per claim call of 500 through 20,000 due jobs (the fill not counted).

    ``kind``: ``bare``, ``records`` (rache's script with the jobs' run tokens removed),
    ``records+runs`` (rache's, recording no run) or ``history`` (rache's, as it runs: each
    job's run recorded, ``<prefix>lastrun`` holding the 20,000 jobs' runs by the end).
    """
    client.flushdb()
    Scheduler(client, "c:").schedule_jobs((f"job-{i:08}", -10, DATA) for i in range(20_000))
    if kind == "records":
        client.delete("c:runs")
    script = BARE["claim"] if kind == "bare" else scripts.CLAIM

    def drain() -> int:
        calls, cutoff = 0, b""
        while True:
            args: List[Any] = [b"c:job:", 500, cutoff, b"", b"", 5000]
            keys: List[Any] = ["c:queue", "c:recurring"]
            if kind != "bare":  # claim-7.lua: the runs, aside, clock, lastrun and record keys
                made = os.urandom(12)
                history = 20 if kind == "history" else 0
                args += [b"c:history:", history, b"bench:1", 3_600_000, 7 * 86_400_000]
                args += [CALL_RECORD_TTL * 1000, made]
                keys += ["c:runs", "c:aside", "c:clock", "c:lastrun", b"c:call:" + made]
            command = ("EVALSHA", script.sha, len(keys), *keys, *args)
            reply = client.execute_command(*command)
            calls, cutoff = calls + 1, reply[0]
            if len(reply) <= 5:  # nothing was due any more
                return calls

    return server_usec(client, drain)


def run_memory(client: Any, jobs: int = 2000) -> Tuple[float, float]:
    """Bytes per job of its runs (MEMORY USAGE of <prefix>lastrun and the lists): 1 run, 20."""
    client.flushdb()
    once = Scheduler(client, "o:", batch_size=1000, name="poller-host-01:12345")
    once.schedule_jobs((f"job-{i:08}", -10) for i in range(jobs))
    list(once.pending_jobs())
    one = (client.memory_usage("o:lastrun", samples=0) or 0) / jobs
    many = Scheduler(client, "t:", batch_size=1000, name="poller-host-01:12345")
    for _ in range(20):
        many.schedule_jobs((f"job-{i:08}", -10) for i in range(jobs))
        list(many.pending_jobs())
    total = client.memory_usage("t:lastrun", samples=0) or 0
    for i in range(jobs):
        total += client.memory_usage(f"t:history:job-{i:08}", samples=0) or 0
    assert len(many.runs("job-00000007")) == 20
    return one, total / jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Redis whose database this flushes")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    specs = harness.discover(options.url, prefer_local=True)
    server = harness.start(specs[0])
    try:
        client = redis.Redis.from_url(server.url)
        client.flushdb()
        for script in (*BARE.values(), scripts.SCHEDULE, scripts.CLAIM):
            client.script_load(script.source)
        samples: Dict[str, List[float]] = {}
        for _ in range(options.rounds):
            for name, recorded in (("schedule, bare", False), ("schedule, rache", True)):
                samples.setdefault(name, []).append(
                    server_usec(client, functools.partial(schedules, client, recorded))
                )
            for kind in ("bare", "records", "records+runs", "history"):
                samples.setdefault(f"claim of 500, {kind}", []).append(claim_usec(client, kind))
        med = {name: statistics.median(values) for name, values in samples.items()}
        client.flushdb()
        sched = Scheduler(client, "m:")
        sched.schedule_job("job-00000001", 60, url=DATA["url"], timeout=DATA["timeout"])
        (key,) = client.keys("m:call:*")
        schedule_record = client.memory_usage(key, samples=0)
        client.flushdb()
        sched.schedule_jobs([(f"job-{i:08}", -10, DATA) for i in range(500)])
        for key in client.keys("m:call:*"):
            client.delete(key)
        list(sched.pending_jobs(limit=500))
        (key,) = client.keys("m:call:*")
        claim_record = client.memory_usage(key, samples=0)
        client.flushdb()
        sched.schedule_jobs([(f"job-{i:08}", 60) for i in range(100_000)])
        runs_bytes = client.memory_usage("m:runs", samples=0) or 0
        runs_per_job = runs_bytes / client.hlen("m:runs")
        one_run, twenty_runs = run_memory(client)
    finally:
        server.stop()
    bare_claim = med["claim of 500, bare"]
    lines = [
        f"# What exactly-once costs ({specs[0].describe()}, medians of {options.rounds} rounds)",
        "",
        "| server time per call | bare | rache | rache / bare |",
        "|---|---|---|---|",
        f"| schedule_job | {med['schedule, bare']:.1f} us | {med['schedule, rache']:.1f} us "
        f"| {med['schedule, rache'] / med['schedule, bare']:.2f} |",
        f"| claim of 500, records only | {bare_claim / 1000:.2f} ms "
        f"| {med['claim of 500, records'] / 1000:.2f} ms "
        f"| {med['claim of 500, records'] / bare_claim:.2f} |",
        f"| claim of 500, records and runs | {bare_claim / 1000:.2f} ms "
        f"| {med['claim of 500, records+runs'] / 1000:.2f} ms "
        f"| {med['claim of 500, records+runs'] / bare_claim:.2f} |",
        f"| claim of 500, each run recorded | {bare_claim / 1000:.2f} ms "
        f"| {med['claim of 500, history'] / 1000:.2f} ms "
        f"| {med['claim of 500, history'] / bare_claim:.2f} |",
        "",
        f"Memory: a schedule_job's record {schedule_record} bytes, a 500-job claim's "
        f"{claim_record:,} bytes (both expire after 60 s); run tokens {runs_per_job:.0f} bytes "
        "per scheduled job.",
        "",
        f"Runs (a poller name of 20 bytes): a job with one run {one_run:.0f} bytes "
        f"(its newest run in <prefix>lastrun), with 20 runs {twenty_runs:.0f} bytes "
        f"({twenty_runs / 20:.0f} bytes a run: 19 on its list).",
        "",
        "`make bench-records`",
    ]
    out = Path(__file__).parent / "results" / "records.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
