"""make bench-beat: three rache beats against three default Celery beats and three RedBeat beats.

Each contender runs three real ``celery beat`` processes on the same schedule, on a
redis-server of its own (the broker, and rache's or RedBeat's store), and a consumer pops
what reaches the broker's queue (LPOP, every 2 ms) and notes when. Three measures:

1. Kill: one entry every 1 s; once the beats run steadily, the beat that sent last
   (RedBeat: the lock holder) is killed with SIGKILL, and the longest time without a
   message after it is the gap.
2. Idle: the commands the beats send Redis per minute (MONITOR; not those scripts run
   inside) while nothing falls due (one entry every hour).
3. Lag: 1,000 entries every 10 s; from each occurrence's time (rache: its task id; the
   others: the probe's ``x-due`` header, see ``benchmarks/beatapp.py``) to its message
   popped from the broker, p50 and p99, and messages per occurrence (messages whose time
   falls in the measured rounds, over entries times rounds).

RedBeat runs with ``beat_max_loop_interval=5`` (its lock then times out in 25 s; at
Celery's default of 300 s the lock lasts 1,500 s, too long to measure here), and idle
again at its defaults; rache and Celery at their defaults.

    python -m benchmarks.beat [--quick]

Writes ``benchmarks/results/beat.md`` and ``beat.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import redis

import rache
from benchmarks.dispatch import monitor
from tests.support import harness as testing
from tests.support.beats import Beat, start_beat

RESULTS = Path(__file__).resolve().parent / "results"
APP = "benchmarks.beatapp"
#: name -> (scheduler class, more environment)
CONTENDERS: Dict[str, Tuple[str, Dict[str, str]]] = {
    "rache": ("rache.celery:BeatScheduler", {}),
    "celery": ("benchmarks.beatapp:CeleryProbe", {}),
    "redbeat": ("benchmarks.redbeatprobe:RedBeatProbe", {"BENCH_MAX_INTERVAL": "5"}),
}


class Popper:
    """Pops every message off the broker's ``celery`` list, noting (arrival, due, id)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        #: (arrival, due time or None when the message does not say, task id)
        self.seen: List[Tuple[float, Optional[float], str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            raw: Any = self.client.lpop("celery", 1000)
            now = time.time()
            if not raw:
                time.sleep(0.002)
                continue
            for item in raw:
                headers = json.loads(item)["headers"]
                task_id = str(headers["id"])
                due: Optional[float] = None
                if "x-due" in headers:
                    due = float(headers["x-due"])
                elif ":" in task_id:  # rache: <entry>:<due time>
                    due = float(task_id.rpartition(":")[2])
                self.seen.append((now, due, task_id))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.client.close()


def beats_of(
    name: str, server: testing.RedisServer, folder: Path, env: Dict[str, str], count: int = 3
) -> List[Beat]:
    """Start ``count`` beats of one contender."""
    scheduler, more = CONTENDERS[name] if name in CONTENDERS else CONTENDERS["redbeat"]
    if name == "redbeat-default":
        more = {}
    environment = {"BENCH_BROKER": server.url, **more, **env}
    folder.mkdir(parents=True, exist_ok=True)
    return [
        start_beat(folder, f"{name}-{n}", environment, app=APP, scheduler=scheduler)
        for n in range(count)
    ]


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kill(servers: Dict[str, testing.RedisServer], folder: Path, quick: bool) -> Dict[str, Any]:
    """One entry every 1 s: messages per occurrence, then the gap after a SIGKILL."""
    steady, after = (4.0, 6.0) if quick else (8.0, 8.0)
    poppers = {name: Popper(servers[name].url) for name in CONTENDERS}
    beats = {
        name: beats_of(name, servers[name], folder / f"kill-{name}", {"BENCH_EVERY": "1"})
        for name in CONTENDERS
    }
    out: Dict[str, Any] = {name: {} for name in CONTENDERS}
    try:
        time.sleep(6 + steady)  # started, declared, running steadily
        killed: Dict[str, float] = {}
        for name, group in beats.items():
            if name == "redbeat":
                victim = next(b for b in group if "Acquired lock" in b.text())
            else:
                victim = max(group, key=lambda beat: beat.last_sent_at())
            victim.kill()
            killed[name] = time.time()
        deadline = time.time() + after
        while time.time() < deadline or any(
            not [s for s in poppers[name].seen if s[0] > killed[name] + 1.5]
            for name in CONTENDERS
            if time.time() < killed[name] + 60
        ):
            time.sleep(0.2)
    finally:
        for group in beats.values():
            for beat in group:
                beat.stop()
        for popper in poppers.values():
            popper.stop()
    for name in CONTENDERS:
        arrivals = [s[0] for s in poppers[name].seen]
        before = [a for a in arrivals if a <= killed[name]]
        later = [a for a in arrivals if a > killed[name]]
        gaps = [b - a for a, b in zip(before[-1:] + later, later)] if before else []
        out[name]["gap_after_kill"] = max(gaps) if gaps else None
        out[name]["first_after_kill"] = (later[0] - killed[name]) if later else None
    return out


def idle(servers: Dict[str, testing.RedisServer], folder: Path, seconds: float) -> Dict[str, Any]:
    """Redis commands per minute of three beats with nothing due, each contender at once."""
    names = [*CONTENDERS, "redbeat-default"]
    beats = {
        name: beats_of(name, servers[name], folder / f"idle-{name}", {"BENCH_EVERY": "3600"})
        for name in names
    }
    counts: Dict[str, Dict[str, int]] = {}
    try:
        for name, group in beats.items():
            for beat in group:
                beat.wait_for("beat: Starting...", timeout=60)
                if name == "rache":
                    beat.wait_for("rache: beat_schedule declared", timeout=60)
        time.sleep(5)  # declared, first tick made; RedBeat's standbys wait on the lock

        def watch(name: str) -> None:
            counts[name] = monitor(servers[name], seconds)

        watchers = [threading.Thread(target=watch, args=(name,)) for name in names]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
    finally:
        for group in beats.values():
            for beat in group:
                beat.stop()
    scale = 60 / seconds
    return {
        name: {
            "per_minute": sum(seen.values()) * scale,
            "by_command": {k: v * scale for k, v in sorted(seen.items())},
        }
        for name, seen in counts.items()
    }


def lag(
    name: str, server: testing.RedisServer, folder: Path, entries: int, rounds: int
) -> Dict[str, Any]:
    """``entries`` entries every 10 s, three beats: lag from due time to the broker."""
    popper = Popper(server.url)
    env = {"BENCH_EVERY": "10", "BENCH_ENTRIES": str(entries)}
    beats = beats_of(name, server, folder / f"lag-{name}", env)
    try:
        # Wait for the first round to be sent, then measure the next ``rounds`` rounds.
        deadline = time.time() + 60
        while len(popper.seen) < entries and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(5)  # the first round is over
        start = time.time()
        time.sleep(10 * rounds)
        end = time.time()
        time.sleep(3)  # the round's last messages
    finally:
        for beat in beats:
            beat.stop()
        popper.stop()
    window = [(at, due, i) for at, due, i in popper.seen if due is not None and start <= due < end]
    lags = [(at - due) * 1000 for at, due, _ in window]
    ids = [i for _, _, i in window]
    return {
        "messages": len(window),
        "duplicate_ids": len(ids) - len(set(ids)),
        "messages_per_occurrence": len(window) / (entries * (end - start) / 10),
        "p50_ms": percentile(lags, 0.5) if lags else None,
        "p99_ms": percentile(lags, 0.99) if lags else None,
        "max_ms": max(lags) if lags else None,
    }


def write(results: Dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "beat.json").write_text(json.dumps(results, indent=2) + "\n")
    kill, idle, lag = results["kill"], results["idle"], results["lag"]

    def num(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [
        "# Celery beat benchmark",
        "",
        f"{results['machine']}; {results['when']}; `python -m benchmarks.beat"
        f"{' --quick' if results['quick'] else ''}`.",
        "",
        "Three beats of each contender on the same schedule, each contender on a redis-server "
        "of its own (the broker, and rache's or RedBeat's store); a consumer pops the "
        "broker's queue every 2 ms.",
        "",
        f"| contender | messages per occurrence ({results['entries']:,} entries, 10 s) | gap "
        "after killing the beat that sent last (s) | Redis commands per idle minute | lag p50 "
        "(ms) | lag p99 (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    owed = {"rache": 1, "celery": 3, "redbeat": 1}  # Celery's beats each send every entry
    for name in CONTENDERS:
        per = num(lag[name]["messages_per_occurrence"], 2)
        if lag[name]["messages_per_occurrence"] < 0.9 * owed[name]:
            per += f" (owes {owed[name]}: fell behind)"
        lines.append(
            f"| {name} | {per} | "
            f"{num(kill[name]['gap_after_kill'], 2)} | {num(idle[name]['per_minute'], 0)} | "
            f"{num(lag[name]['p50_ms'])} | {num(lag[name]['p99_ms'])} |"
        )
    lines += [
        f"| redbeat, defaults (lock 1,500 s) | | | {num(idle['redbeat-default']['per_minute'], 0)}"
        " | | |",
        "",
        "Kill: one entry every 1 s, three beats running steadily, then SIGKILL to the beat "
        "that sent last (RedBeat: the lock holder); the gap is the longest time without a "
        "message from the last one before the kill (1 s: none missed). Celery's default beats "
        "each send every entry (three messages an occurrence), so losing one of them leaves "
        "no gap, only fewer duplicates.",
        "",
        f"Idle: every command the beats sent their Redis in {results['idle_seconds']:.0f} s "
        "(MONITOR; the commands scripts run inside are not counted), scaled to a minute, with "
        "one entry every hour (nothing due), after every beat had started. By command:",
        "",
    ]
    for name, counts in idle.items():
        by = ", ".join(f"{k} {v:.0f}" for k, v in counts["by_command"].items()) or "none"
        lines.append(f"- {name}: {by}")
    lines += [
        "",
        f"Lag: {results['entries']:,} entries every 10 s, {results['rounds']} rounds measured "
        "after the first; from the occurrence's time (rache: the task id; Celery and RedBeat: "
        "the entry's last run plus its interval, stamped by a probe) to the consumer's pop.",
        "",
    ]
    for name in CONTENDERS:
        item = lag[name]
        due = owed[name] * results["entries"] * results["rounds"]
        line = (
            f"- {name}: {item['messages']:,} messages of the {due:,} its beats owe in the "
            f"window ({owed[name]} per occurrence), {item['duplicate_ids']:,} duplicate task "
            f"ids, max lag {num(item['max_ms'])} ms"
        )
        if item["messages"] < 0.9 * due:
            line += (
                "; it did not keep up (the lag of what it did send understates its delay: "
                "the rest was later still, or never sent)"
            )
        lines.append(line)
    lines += [
        "",
        "RedBeat's idle figure at its defaults is 0 in this window because it ticks every "
        "300 s (and its standbys retry the lock as rarely); over a longer window it is a few "
        "commands per 5 minutes.",
    ]
    (RESULTS / "beat.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    """Run the three measures and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows (a smoke run)")
    parser.add_argument(
        "--rewrite", action="store_true", help="write beat.md again from beat.json, run nothing"
    )
    options = parser.parse_args()
    if options.rewrite:
        write(json.loads((RESULTS / "beat.json").read_text()))
        print((RESULTS / "beat.md").read_text())
        return 0
    [spec, *_] = testing.local_binaries()
    folder = Path(tempfile.mkdtemp(prefix="rache-bench-beat-"))
    names = [*CONTENDERS, "redbeat-default"]
    results: Dict[str, Any] = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, redis-py "
        f"{redis.__version__}, redis-server {spec.version}, rache {rache.__version__}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": options.quick,
        "entries": 200 if options.quick else 1000,
        "rounds": 1 if options.quick else 2,
        "idle_seconds": 20.0 if options.quick else 60.0,
    }

    servers: Dict[str, testing.RedisServer] = {}
    for name in names:
        (folder / f"redis-{name}").mkdir()
        servers[name] = testing.start(spec, folder / f"redis-{name}")
    try:
        print("kill...", file=sys.stderr)
        results["kill"] = kill(servers, folder, options.quick)
        for server in servers.values():
            server.client().flushall()
        print("idle...", file=sys.stderr)
        results["idle"] = idle(servers, folder, results["idle_seconds"])
        results["lag"] = {}
        for name in CONTENDERS:
            print(f"lag {name}...", file=sys.stderr)
            servers[name].client().flushall()
            results["lag"][name] = lag(
                name, servers[name], folder, results["entries"], results["rounds"]
            )
    finally:
        for server in servers.values():
            server.stop()
    write(results)
    print((RESULTS / "beat.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
