"""What recording runs costs a claim of 1,000 jobs: this tree against two commits, interleaved.

Each version's claim script (this tree's, and those of ``--before`` and ``--main``, read from
this clone's git history with their includes) is driven and decoded by this tree's client
(``Claim.take``): the reply's layout is the same in all three, so they differ only by their
script. Per round and scenario, each version claims 1,000 jobs on its own prefix, in a
shuffled order; jobs/s (the script call and the decode) and server time (INFO commandstats)
are paired per round against ``--before``. Scenarios: plain jobs removed, plain jobs
rescheduled (new ids each round: a first run each), every-N jobs (the same 1,000 each round:
a run before each). Results in benchmarks/results/claim_runs.md.

    python -m benchmarks.claim_runs [--url redis://...] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import redis

from benchmarks.bare import _git
from rache import Every, Scheduler, scripts
from tests.support import harness

N = 1000
DATA: Dict[str, Any] = {"url": "http://example.com/feed", "timeout": 10}
#: The commit before runs (c11ca04), and main with an LPUSH per run (f54070f).
BEFORE = "c11ca04"
MAIN = "f54070f"


def load_claim(commit: str) -> scripts.Script:
    """The claim script of ``commit``, its includes expanded as rache does."""
    names = _git("ls-tree", "--name-only", commit, "rache/lua/").split()
    (path,) = [name for name in names if Path(name).name.startswith("claim-")]
    folder = "rache/lua/includes/"
    included = _git("ls-tree", "--name-only", commit, folder).split()
    includes = {Path(name).stem: _git("show", f"{commit}:{name}") for name in included}
    source = scripts.expand(_git("show", f"{commit}:{path}"), includes)
    return scripts.Script("claim", int(Path(path).stem.split("-")[1]), source, recorded=True)


def adapt(version: str, script: scripts.Script, call: scripts.Call) -> scripts.Call:
    """A claim call of this tree's (queue, recurring, runs, aside, clock, lastrun, call) for one."""
    keys, args = list(call.keys), list(call.args)
    if version == "this tree":
        return call
    if script.numkeys == 4:  # before runs and the edges: queue, recurring, runs, call
        return scripts.Call(script, [*keys[:3], keys[-1]], args[:6])
    return scripts.Call(script, [*keys[:5], keys[-1]], args)  # no lastrun


def measure(
    client: Any, version: str, script: scripts.Script, scenario: str, start: float
) -> Tuple[float, float]:
    """One claim of N jobs on ``version``'s prefix: (jobs/s, server usec)."""
    prefix = f"{version.replace(' ', '-')}:"
    sched = Scheduler(client, prefix, batch_size=N, name="poller-host-01:12345")
    sched.server_time()  # the layout check, not measured
    if scenario == "every-N":
        client.zadd(f"{prefix}queue", {f"e{i:05}": start for i in range(N)})
    else:
        tag = os.urandom(4).hex()
        sched.schedule_jobs((f"job-{tag}-{i:05}", -10, DATA) for i in range(N))
    claim = sched.claim(60 if scenario == "rescheduled" else None, N)
    call = claim.next_call()
    assert call is not None
    made = adapt(version, script, call)
    before = client.info("commandstats")["cmdstat_evalsha"]["usec"]
    began = time.perf_counter()
    jobs = claim.take(made.script(client, made.keys, made.args))
    took = time.perf_counter() - began
    usec = client.info("commandstats")["cmdstat_evalsha"]["usec"] - before
    assert jobs is not None and len(jobs) == N
    return N / took, float(usec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Redis whose database this flushes")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--main", default=MAIN)
    options = parser.parse_args()
    specs = harness.discover(options.url, prefer_local=True)
    server = harness.start(specs[0])
    versions = {
        f"before ({options.before})": load_claim(options.before),
        f"main ({options.main})": load_claim(options.main),
        "this tree": scripts.CLAIM,
    }
    first = next(iter(versions))
    lines = [
        f"# A claim of {N:,} jobs, runs recorded ({specs[0].describe()}, "
        f"paired medians of {options.rounds} rounds)",
        "",
        "| scenario | version | jobs/s | vs before | server time | vs before |",
        "|---|---|---|---|---|---|",
    ]
    try:
        client = redis.Redis.from_url(server.url)
        client.flushdb()
        start = 0.0
        for version in versions:  # every-N jobs: one schedule per version, each run once
            sched = Scheduler(client, f"{version.replace(' ', '-')}:", batch_size=N)
            start = sched.server_time() - 3600
            for i in range(N):
                sched.schedule_recurring(f"e{i:05}", Every(60), start=start)
        for scenario in ("removed", "rescheduled", "every-N"):
            samples: Dict[str, List[Tuple[float, float]]] = {version: [] for version in versions}
            for round_ in range(options.rounds + 1):  # the first round warms up
                order = list(versions)
                random.shuffle(order)
                for version in order:
                    sample = measure(client, version, versions[version], scenario, start)
                    if round_:
                        samples[version].append(sample)
            for version, got in samples.items():
                pairs = list(zip(got, samples[first]))
                speed = statistics.median(a[0] / b[0] for a, b in pairs)
                usec = statistics.median(a[1] / b[1] for a, b in pairs)
                lines.append(
                    f"| {scenario} | {version} | {statistics.median(g[0] for g in got):,.0f} "
                    f"| {speed:.2f}x | {statistics.median(g[1] for g in got) / 1000:.2f} ms "
                    f"| {usec:.2f}x |"
                )
    finally:
        server.stop()
    lines += ["", "`python -m benchmarks.claim_runs`"]
    out = Path(__file__).parent / "results" / "claim_runs.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
