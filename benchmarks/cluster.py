"""make bench-cluster: dispatch on one node against a 3-master cluster, unsharded and sharded.

Issue #6's benchmark. Three setups run interleaved by round (A B C, then C B A, ...) in one
run, on servers started for it (the local redis-server binary):

* ``standalone``: one node, an unsharded schedule (prefix ``rache:``);
* ``cluster, K=1``: a 3-master cluster, one shard (prefix ``{rache}:``, all on one master);
* ``cluster, K=3``: the same cluster, three shards (prefix ``rache:``, one per master).

Each round flushes, schedules ``--jobs`` due jobs (two small data fields), snapshots
``INFO cpu`` and ``INFO commandstats`` on every node, drains the schedule with 4 poller
processes (``limit=1000``), and snapshots again. Reported, as medians over the rounds:
dispatch jobs/s (first poller's start to last poller's finish), Redis server CPU per job
summed over the nodes, each node's share of that CPU and of the EVALSHA calls, the pollers'
own CPU per job, and a *projection* (not a measurement) of the server-side ceiling: the
busiest node saturates its one core at 1e6 / (its CPU µs per job) jobs/s. Writes
``cluster.md`` and ``cluster.json`` to ``benchmarks/results/``.

    python -m benchmarks.cluster [--jobs 60000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import redis

from benchmarks.bench import DATA, machine
from rache import Scheduler
from tests.support import harness

RESULTS = Path(__file__).resolve().parent / "results"
POLLERS = 4
LIMIT = 1000
CPU_FIELDS = ("used_cpu_sys", "used_cpu_user")
MAIN_FIELDS = ("used_cpu_sys_main_thread", "used_cpu_user_main_thread")


@dataclass
class Timed(harness.Polled):
    """A poller's claims and times, with the CPU seconds its process spent draining."""

    cpu: float = 0.0


def timed_drain(
    url: str,
    prefix: str,
    limit: int,
    cluster: bool,
    shards: int,
    barrier: Any = None,
) -> Timed:
    """:func:`tests.support.harness.drain`'s loop, and this process's CPU time over the loop alone.

    The CPU of connecting (a RedisCluster client reads the slot map) is left out, as the
    wall-clock window leaves it out.
    """
    client: Any = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    scheduler = Scheduler(client, prefix, shards=shards)
    client.ping()
    if barrier is not None:
        barrier.wait()
    cpu, started = time.process_time(), time.perf_counter()
    claimed: List[str] = []
    while True:
        batch = [job["id"] for job in scheduler.pending_jobs(limit=limit)]
        if not batch:
            break
        claimed += batch
    finished, cpu = time.perf_counter(), time.process_time() - cpu
    client.close()
    return Timed(claimed, started, finished, 0, cpu)


@dataclass
class Snapshot:
    """What one node says about itself: CPU seconds and EVALSHA calls so far."""

    cpu: float
    main: Optional[float]
    evalsha: int


def snapshot(client: Any) -> Snapshot:
    """``INFO cpu`` (the process and, if given, its main thread) and EVALSHA calls."""
    cpu = client.info("cpu")
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    main = sum(float(cpu[k]) for k in MAIN_FIELDS) if all(k in cpu for k in MAIN_FIELDS) else None
    return Snapshot(sum(float(cpu[k]) for k in CPU_FIELDS), main, int(stats.get("calls", 0)))


@dataclass
class Setup:
    """One of the contenders: its nodes, how to reach and fill its schedule, its samples."""

    name: str
    prefix: str
    shards: int
    cluster: bool
    url: str
    #: one client per node, for flushing and INFO
    nodes: List[Any]
    #: the client that schedules (a RedisCluster on the cluster)
    client: Any
    samples: List[Dict[str, Any]] = field(default_factory=list)
    #: each node's idle CPU seconds per second: the process, and its main thread
    idle: List[float] = field(default_factory=list)
    idle_main: List[float] = field(default_factory=list)

    def measure_idle(self, seconds: float = 2.0) -> None:
        """Each node's CPU seconds per second while nobody calls it (cron, cluster bus)."""
        before, opened = [snapshot(node) for node in self.nodes], time.perf_counter()
        time.sleep(seconds)
        after, elapsed = [snapshot(node) for node in self.nodes], time.perf_counter() - opened
        self.idle = [(a.cpu - b.cpu) / elapsed for a, b in zip(after, before)]
        self.idle_main = [
            (float(a.main or 0) - float(b.main or 0)) / elapsed for a, b in zip(after, before)
        ]

    def round(self, jobs: int) -> Dict[str, Any]:
        """Flush, schedule ``jobs`` due jobs, drain them with the pollers; the figures."""
        for node in self.nodes:
            node.flushall()
        scheduler = Scheduler(self.client, self.prefix, shards=self.shards)
        scheduler.schedule_jobs((f"job-{i:08}", -10, DATA) for i in range(jobs))
        before = [snapshot(node) for node in self.nodes]
        opened = time.perf_counter()
        ticks: List[Any] = []  # (perf_counter, /proc/stat) every tenth of a second
        polled: List[Any] = harness.run_pollers(
            self.url,
            POLLERS,
            poll=timed_drain,
            prefix=self.prefix,
            limit=LIMIT,
            cluster=self.cluster,
            shards=self.shards,
            on_wait=lambda: ticks.append((time.perf_counter(), cpu_times())),
        )
        after = [snapshot(node) for node in self.nodes]
        outside = time.perf_counter() - opened
        ids = [job_id for p in polled for job_id in p.ids]
        assert len(ids) == len(set(ids)) == jobs, (self.name, len(ids), len(set(ids)), jobs)
        window = max(p.finished for p in polled) - min(p.started for p in polled)
        # The nodes' idle work (cron, cluster bus) between the snapshots but outside the
        # drain (spawning the pollers, collecting their results) is taken off.
        outside -= window
        raw = [a.cpu - b.cpu for a, b in zip(after, before)]
        cpu = [max(0.0, c - rate * outside) for c, rate in zip(raw, self.idle)]
        main: Optional[List[float]] = None
        if all(a.main is not None and b.main is not None for a, b in zip(after, before)):
            main = [
                max(0.0, float(a.main or 0) - float(b.main or 0) - rate * outside)
                for a, b, rate in zip(after, before, self.idle_main)
            ]
        calls = [a.evalsha - b.evalsha for a, b in zip(after, before)]
        sample = {
            "jobs_per_s": jobs / window,
            "seconds": window,
            "server_cpu_us_per_job": 1e6 * sum(cpu) / jobs,
            "main_thread_cpu_us_per_job": None if main is None else 1e6 * sum(main) / jobs,
            "client_cpu_us_per_job": 1e6 * sum(p.cpu for p in polled) / jobs,
            "cpu_share": [c / sum(cpu) for c in cpu],
            "evalsha_share": [c / max(1, sum(calls)) for c in calls],
            "evalsha_calls": sum(calls),
            "machine_cores_busy": machine_busy(ticks, polled),
            "node_cpu_s": cpu,
            "node_cpu_s_uncorrected": raw,
            "seconds_outside_drain": outside,
        }
        self.samples.append(sample)
        return sample

    def medians(self) -> Dict[str, Any]:
        """The median of every figure over the rounds; shares per node, nodes sorted."""

        def median(key: str) -> Any:
            values = [s[key] for s in self.samples]
            if any(v is None for v in values):
                return None
            if isinstance(values[0], list):
                # per node, each round's shares sorted (busiest last), then the median of each
                ordered = [sorted(v) for v in values]
                return [statistics.median(column) for column in zip(*ordered)]
            return statistics.median(values)

        figures = {key: median(key) for key in self.samples[0] if not key.startswith("node_")}
        # The busiest node's CPU per job, median over rounds: what saturates first.
        busiest = [
            max(s["cpu_share"]) * (s["main_thread_cpu_us_per_job"] or s["server_cpu_us_per_job"])
            for s in self.samples
        ]
        figures["busiest_node_cpu_us_per_job"] = statistics.median(busiest)
        figures["jobs_per_s_min"] = min(s["jobs_per_s"] for s in self.samples)
        figures["jobs_per_s_max"] = max(s["jobs_per_s"] for s in self.samples)
        figures["projected_server_ceiling_jobs_per_s"] = (
            1e6 / figures["busiest_node_cpu_us_per_job"]
        )
        figures["our_cores_busy"] = statistics.median(
            s["jobs_per_s"] * (s["server_cpu_us_per_job"] + s["client_cpu_us_per_job"]) / 1e6
            for s in self.samples
        )
        return figures


def cpu_times() -> Optional[List[int]]:
    """The machine's CPU time counters (``/proc/stat``), or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def machine_busy(ticks: List[Any], polled: List[Any]) -> Optional[float]:
    """How many cores the whole machine kept busy during the drain (everyone's work).

    From the first to the last ``/proc/stat`` reading taken inside the drain's window; None
    when fewer than two fall in it (a drain shorter than a few tenths of a second).
    """
    start, end = min(p.started for p in polled), max(p.finished for p in polled)
    inside = [stat for at, stat in ticks if start <= at <= end and stat is not None]
    if len(inside) < 2:
        return None
    before, after = inside[0], inside[-1]
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
    return None if total <= 0 else (os.cpu_count() or 1) * (total - delta[3] - delta[4]) / total


def shares(values: List[float]) -> str:
    """Per-node shares as whole percents, e.g. ``33/33/34%``."""
    return "/".join(f"{100 * v:.0f}" for v in values) + "%"


def markdown(
    results: Dict[str, Dict[str, Any]], about: Dict[str, str], command: str, seconds: float
) -> str:
    """The results as Markdown: the table, the projection and what to make of them."""
    lines = [
        "| setup | dispatch jobs/s (range over rounds) | server CPU µs/job (all nodes) "
        "| main thread µs/job "
        "| pollers' CPU µs/job | CPU share per node | EVALSHA share per node "
        "| cores busy: this drain / whole machine | **projection**: server-side ceiling, jobs/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in results.items():
        main = f["main_thread_cpu_us_per_job"]
        lines.append(
            f"| {name} | {f['jobs_per_s']:,.0f} ({f['jobs_per_s_min']:,.0f} to "
            f"{f['jobs_per_s_max']:,.0f}) | {f['server_cpu_us_per_job']:.1f} "
            f"| {'' if main is None else f'{main:.1f}'} | {f['client_cpu_us_per_job']:.1f} "
            f"| {shares(f['cpu_share'])} | {shares(f['evalsha_share'])} "
            f"| {f['our_cores_busy']:.2f} / {busy(f['machine_cores_busy'])} "
            f"| {f['projected_server_ceiling_jobs_per_s']:,.0f} |"
        )
    about_text = "; ".join(f"{k}: {v}" for k, v in about.items())
    return (
        f"Measured with `{command}` in {seconds:.0f} s on {about_text}.\n\n"
        + "\n".join(lines)
        + "\n\n"
        "Medians over the rounds. Jobs/s: distinct jobs handed out by "
        f"{POLLERS} poller processes (`pending_jobs(limit={LIMIT})`), from the first "
        "poller's start to the last one's finish. Server CPU: `used_cpu_sys + used_cpu_user` "
        "of every node between snapshots taken just before and after the drain, less each "
        "node's idle rate (cron, cluster bus; measured over 2 s at the start) times the part "
        "of that interval outside the drain (spawning the pollers); "
        "main thread: the `_main_thread` variants, the single thread that saturates. "
        "Shares: per node, sorted, so the busiest node is last; on the cluster the node "
        "the pollers connect through also serves their clients' start-up (slot map, "
        "command table) within the snapshots, a little more CPU than EVALSHA share. "
        "Cores busy: this drain's, (server + pollers' CPU per job) times jobs/s; the whole "
        "machine's, from `/proc/stat` read every tenth of a second within the drain (any "
        f"other work on the machine included); it has {os.cpu_count()} cores, "
        "shared by every node and poller.\n\n"
        "**The last column is a projection, not a measurement**: with c µs of server CPU "
        "(main thread) per job on the busiest node, that node's one core saturates at "
        "~1e6 / c jobs/s; with the work spread over K masters, that is ~K times a single "
        "node's ceiling, *if* the client side scales too (more pollers, on more cores or "
        "machines).\n\n" + verdict(results)
    )


def busy(cores: Optional[float]) -> str:
    """A core count, or a dash when unknown."""
    return "-" if cores is None else f"{cores:.2f}"


def verdict(results: Dict[str, Dict[str, Any]]) -> str:
    """Where the CPU per job goes and what bounded the rates, as the figures say it."""
    parts = [
        f"{name}: Redis {f['server_cpu_us_per_job']:.1f} µs, pollers "
        f"{f['client_cpu_us_per_job']:.1f} µs"
        for name, f in results.items()
    ]
    text = (
        "CPU per job, all nodes / all pollers: " + "; ".join(parts) + ". "
        "Redis and the pollers share this machine's cores, so the measured jobs/s are "
        "bounded by the CPU left to both, not by any one Redis node's core: they cannot "
        "show what masters on machines of their own would give; only the projection "
        "speaks to that, and it needs pollers to match: "
        + "; ".join(
            f"{name}'s {f['projected_server_ceiling_jobs_per_s']:,.0f} jobs/s would take "
            f"~{f['projected_server_ceiling_jobs_per_s'] * f['client_cpu_us_per_job'] / 1e6:.1f}"
            " cores of pollers"
            for name, f in results.items()
        )
        + " (at their CPU per job here, if they spread perfectly)."
    )
    machine = [f["machine_cores_busy"] for f in results.values() if f["machine_cores_busy"]]
    ours = [f["our_cores_busy"] for f in results.values()]
    cores = os.cpu_count() or 1
    if machine and min(machine) > 0.9 * cores and max(ours) < 0.9 * min(machine):
        text += (
            f" The machine was {min(machine):.2f} to {max(machine):.2f} of {cores} cores "
            f"busy during the drains, while the drains themselves used {min(ours):.2f} to "
            f"{max(ours):.2f}: other work on the machine took the rest, so the rates were "
            "CPU-starved and swing from round to round (the ranges above)."
        )
    return text + "\n"


def main() -> int:
    """Start the servers, run the rounds, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=60_000, help="jobs per drain")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (median of them)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6,000 jobs, 1 round")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    jobs, rounds = (6_000, 1) if options.quick else (options.jobs, options.rounds)

    specs = [spec for spec in harness.discover(prefer_local=True) if spec.kind == "binary"]
    if not specs:
        print("no redis-server binary: install redis-server (a cluster needs redis-cli too)")
        return 2
    spec = specs[0]
    datadir = Path(tempfile.mkdtemp(prefix="rache-bench-cluster-"))
    started = time.perf_counter()
    servers: List[Any] = []
    try:
        (datadir / "standalone").mkdir()
        single = harness.start(spec, datadir / "standalone")
        servers.append(single)
        cluster = harness.start_cluster(spec, datadir / "cluster", masters=3)
        servers.append(cluster)
        cluster_nodes = [node.client() for node in cluster.nodes]
        cluster_url = cluster.nodes[0].url
        setups = [
            Setup("standalone", "rache:", 1, False, single.url, [single.client()], single.client()),
            Setup(
                "cluster, K=1", "{rache}:", 1, True, cluster_url, cluster_nodes, cluster.client()
            ),
            Setup("cluster, K=3", "rache:", 3, True, cluster_url, cluster_nodes, cluster.client()),
        ]
        about = machine(setups[0].client)
        setups[0].measure_idle()
        setups[1].measure_idle()  # the cluster's nodes, at once
        setups[2].idle, setups[2].idle_main = setups[1].idle, setups[1].idle_main
        print(
            f"bench-cluster on {spec.describe()}: {jobs:,} jobs, {rounds} round(s); "
            + "; ".join(f"{k} {v}" for k, v in about.items())
        )
        for r in range(rounds):
            for setup in setups if r % 2 == 0 else reversed(setups):
                s = setup.round(jobs)
                print(
                    f"round {r + 1} {setup.name}: {s['jobs_per_s']:,.0f} jobs/s, "
                    f"server {s['server_cpu_us_per_job']:.1f} µs/job, "
                    f"pollers {s['client_cpu_us_per_job']:.1f} µs/job, "
                    f"CPU {shares(s['cpu_share'])}, EVALSHA {shares(s['evalsha_share'])}"
                )
        results = {setup.name: setup.medians() for setup in setups}
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(datadir, ignore_errors=True)
    seconds = time.perf_counter() - started
    command = "make bench-cluster"
    if options.quick:
        command += " BENCH_ARGS=--quick"
    elif (jobs, rounds) != (60_000, 5):
        command += f' BENCH_ARGS="--jobs {jobs} --rounds {rounds}"'
    options.out.mkdir(parents=True, exist_ok=True)
    table = markdown(results, about, command, seconds)
    (options.out / "cluster.md").write_text(table)
    (options.out / "cluster.json").write_text(
        json.dumps(
            {
                "machine": about,
                "command": command,
                "seconds": seconds,
                "jobs": jobs,
                "rounds": rounds,
                "pollers": POLLERS,
                "limit": LIMIT,
                "medians": results,
                "idle_cpu_s_per_s": {setup.name: setup.idle for setup in setups},
                "samples": {setup.name: setup.samples for setup in setups},
            },
            indent=2,
        )
    )
    print(f"\n{table}\nwrote {options.out}/cluster.md, cluster.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
