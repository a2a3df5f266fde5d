"""examples/celery_beat/: the example project, run as its docstring says (a worker, two beats)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, List

import pytest

pytest.importorskip("celery")

from rache import Scheduler
from tests.support import harness
from tests.support.beats import ROOT, Beat, start_beat, start_celery

pytestmark = pytest.mark.slow
EXAMPLE = ROOT / "examples" / "celery_beat"


def test_the_example_runs_each_occurrence_once_with_two_beats_and_a_worker(
    tmp_path: Path, solo: harness.RedisServer, solo_raw: Any
) -> None:
    env = {"REDIS_URL": solo.url}
    worker_args = ["worker", "-Q", "celery,maintenance", "-c", "1", "-P", "solo"]
    processes: List[Beat] = [
        start_celery(tmp_path, "worker", env, app="proj", command=worker_args, cwd=EXAMPLE)
    ]
    try:
        processes[0].wait_for("ready.", timeout=30)
        processes += [
            start_beat(tmp_path, f"beat{n}", env, app="proj", scheduler=None, cwd=EXAMPLE)
            for n in range(2)
        ]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = [run.decode() for run in solo_raw.lrange("proj:runs", 0, -1)]
            if sum(run.startswith("cleanup:") for run in runs) >= 2:
                break
            time.sleep(0.1)
        # The worker reports each run (report_outcomes in proj.py): succeeded, by its id.
        schedule = Scheduler(solo_raw, "proj-beat:")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = {
                run.occurrence_id for run in schedule.runs("cleanup") if run.state == "succeeded"
            }
            if len(done) >= 2:
                break
            time.sleep(0.1)
    finally:
        for process in reversed(processes):
            process.stop()
    ran = {run.decode() for run in solo_raw.lrange("proj:runs", 0, -1)}
    assert len(done) >= 2 and done <= ran, (done, ran)
    runs = [run.decode() for run in solo_raw.lrange("proj:runs", 0, -1)]
    assert len(runs) == len(set(runs)), runs  # each occurrence ran once
    for name, every in (("heartbeat", 2.0), ("cleanup", 3.0)):
        dues = sorted(float(run.split(":")[1]) for run in runs if run.startswith(f"{name}:"))
        assert len(dues) >= 2, runs
        assert [round(b - a, 3) for a, b in zip(dues, dues[1:])] == [every] * (len(dues) - 1)
    beats = [process.text() for process in processes[1:]]
    assert all("rache -> " in text and "prefix 'proj-beat:'" in text for text in beats)
    assert "Task proj.cleanup[cleanup:" in processes[0].text()
