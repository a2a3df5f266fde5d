"""make soak-beat: three rache beats for minutes, one of them killed and restarted at random.

Every few seconds a beat gets SIGKILL or SIGTERM and is started anew, and every occurrence
is counted at the broker.

    python -m tests.tools.soak_beat [--minutes 3] [--seed N]

The schedule: ``fast`` every 1 s, ``odd`` every 2.5 s, ``minute`` a crontab every minute in
Asia/Kathmandu (UTC+05:45). At least two beats run at any time. At the end: no task id
twice, every interval occurrence from the first to the last exactly once (a step of exactly
one interval), every minute's crontab occurrence once, and the largest lag. Exit 1 if any
occurrence came twice or is missing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from tests.support import harness
from tests.support.beats import Beat, Collector, start_beat

SCHEDULE = {
    "fast": {"task": "soak.fast", "every": 1},
    "odd": {"task": "soak.odd", "every": 2.5},
    "minute": {"task": "soak.minute", "crontab": {"minute": "*"}},
}
PERIODS = {"fast": 1.0, "odd": 2.5, "minute": 60.0}


def main() -> int:
    """Run the soak; 0 if every occurrence reached the broker exactly once."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="rache-soak-beat-"))
    [spec, *_] = harness.local_binaries()
    server = harness.start(spec, folder)
    env = {
        "BEAT_BROKER": server.url,
        "BEAT_PREFIX": "soak:",
        "BEAT_TZ": "Asia/Kathmandu",
        "BEAT_SCHEDULE": json.dumps(SCHEDULE),
    }
    kills = {"SIGKILL": 0, "SIGTERM": 0}
    beats: List[Beat] = []
    started = 0
    try:
        with Collector(server.url, ["celery"]) as collector:
            for _ in range(3):
                beats.append(start_beat(folder, f"beat{started}", env))
                started += 1
            deadline = time.time() + options.minutes * 60
            while time.time() < deadline:
                time.sleep(rng.uniform(3, 8))
                index = rng.randrange(len(beats))
                if rng.random() < 0.5:
                    beats[index].kill()
                    kills["SIGKILL"] += 1
                else:
                    beats[index].stop()
                    kills["SIGTERM"] += 1
                time.sleep(rng.uniform(0.5, 2))
                beats[index] = start_beat(folder, f"beat{started}", env)
                started += 1
            for beat in beats:
                beat.stop()
            time.sleep(1)
    finally:
        for beat in beats:
            beat.stop()
        server.stop()
    ids = [message.id for message in collector.messages]
    duplicates = len(ids) - len(set(ids))
    print(f"seed {seed}; {started} beats started, kills {kills}; {len(ids)} messages")
    print(f"duplicate task ids: {duplicates}")
    failed = duplicates > 0
    for name, period in PERIODS.items():
        messages = [m for m in collector.messages if m.id.startswith(f"{name}:")]
        dues = sorted(float(m.id[len(name) + 1 :].split(":")[0]) for m in messages)
        steps: Dict[float, int] = {}
        for a, b in zip(dues, dues[1:]):
            step = round(b - a, 3)
            steps[step] = steps.get(step, 0) + 1
        missing = sum(round(step / period) - 1 for step in steps if step > period) if dues else 0
        lags = [m.at - float(m.id[len(name) + 1 :].split(":")[0]) for m in messages]
        print(
            f"{name}: {len(dues)} occurrences, steps {dict(sorted(steps.items()))}, "
            f"missing {missing}, max lag {max(lags, default=0):.3f} s"
        )
        failed = failed or missing > 0 or any(step < period for step in steps)
    print("FAILED" if failed else "ok: every occurrence exactly once")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
