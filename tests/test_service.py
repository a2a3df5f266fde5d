"""``rache dispatch``, as real processes: exactly once across processes, stop, logs, health.

Each test writes a module of targets into a temporary directory and runs the ``rache``
command there (``--call MODULE:FUNCTION`` imports from the current directory).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import port_for
import pytest

from rache import Scheduler
from tests.support import harness as testing

ROOT = Path(__file__).resolve().parent.parent

#: The targets: each records the job's id in a file of its process (pid), one line a job.
TARGETS = '''
import os, sys, time

def record(job):
    with open(f"called-{os.getpid()}.txt", "a") as out:
        out.write(job["id"] + "\\n")

def slow(job):
    print("start", job["id"], flush=True)
    time.sleep(float(os.environ.get("SLOW", "1")))
    record(job)
    print("done", job["id"], flush=True)

def again(job):
    """Record, and schedule the job 'keep' again from inside the call (it keeps its data)."""
    record(job)
    if job["id"] == "keep":
        import rache
        rache.schedule_job("keep", 3600)

not_callable = 42
'''


#: Every process started, so that a failing test leaves none behind (they would go on
#: claiming from the session's server, under the next tests' feet).
_STARTED: List[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # and its pipes closed


def rache_command(
    *args: str, cwd: Path, env: Optional[Dict[str, str]] = None, **options: Any
) -> subprocess.Popen[str]:
    """Start ``rache ARGS...`` in ``cwd`` (a real process), its stdout and stderr piped."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "rache", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )
    _STARTED.append(process)
    return process


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding ``targets.py``, where the processes run."""
    (tmp_path / "targets.py").write_text(TARGETS)
    return tmp_path


def called(workdir: Path) -> Dict[int, List[str]]:
    """The ids each process called its target with, by pid."""
    return {
        int(path.stem.split("-")[1]): path.read_text().split()
        for path in workdir.glob("called-*.txt")
    }


def wait_for(condition: Callable[[], Any], seconds: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.02)
    return result


def stop(process: subprocess.Popen[str], sig: Optional[int] = signal.SIGTERM) -> str:
    """Signal it (unless ``sig`` is None), wait (20 s at most); its stderr. It must exit 0."""
    if sig is not None:
        process.send_signal(sig)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return err


@pytest.mark.slow
def test_three_processes_call_each_job_exactly_once_and_forget_its_data(
    solo: testing.RedisServer, solo_raw: Any, workdir: Path
) -> None:
    # 3,000 jobs with data: a third due now, the rest falling due over 1.5 s.
    now = float(solo_raw.time()[0])
    ids = [f"job-{i:05}" for i in range(3000)]
    scheduler = Scheduler(solo_raw, "rache:")
    scheduler.schedule_jobs([(job_id, 0, {"n": i}) for i, job_id in enumerate(ids)])
    solo_raw.zadd("rache:queue", {job_id: now - 1 + i / 1000 for i, job_id in enumerate(ids)})
    env = {"REDIS_URL": solo.url}
    processes = [
        rache_command("dispatch", "--call", "targets:record", "--batch", "20", "--forget",
                      cwd=workdir, env=env)
        for _ in range(3)
    ]  # fmt: skip
    try:
        wait_for(lambda: sum(len(v) for v in called(workdir).values()) == len(ids), 30)
        wait_for(lambda: not solo_raw.keys("rache:job:*"), 5, "the data forgotten")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        errors = [stop(process, None) for process in processes]
    by_process = called(workdir)
    counts = collections.Counter(job_id for per in by_process.values() for job_id in per)
    assert {job_id: n for job_id, n in counts.items() if n > 1} == {}
    assert sorted(counts) == ids
    assert len(by_process) == 3 and all(by_process.values())  # each process took a share
    assert solo_raw.zcard("rache:queue") == 0 and solo_raw.keys("rache:job:*") == []
    for err in errors:
        assert "Traceback" not in err
        assert "stopped on SIGTERM" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_puts_the_batch_back_at_once_while_a_slow_call_finishes(
    solo: testing.RedisServer, solo_raw: Any, workdir: Path, sig: int
) -> None:
    # One batch of 300 jobs, a call of 2 s each: working through it would take 10 minutes.
    scheduler = Scheduler(solo_raw, "rache:")
    scheduler.schedule_jobs([(f"job-{i:03}", -60 + i / 10, {"n": i}) for i in range(300)])
    before = dict(solo_raw.zrange("rache:queue", 0, -1, withscores=True))
    process = rache_command(
        "dispatch", "--call", "targets:slow", "--batch", "300",
        cwd=workdir, env={"REDIS_URL": solo.url, "SLOW": "2"},
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().split() == ["start", "job-000"]
    assert solo_raw.zcard("rache:queue") == 0  # all 300 claimed
    signalled = time.monotonic()
    process.send_signal(sig)
    wait_for(lambda: solo_raw.zcard("rache:queue") == 299, 1, "the put-back")
    assert time.monotonic() - signalled < 1.0  # at once, not after the call
    assert process.poll() is None  # the call begun is still running
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert time.monotonic() - signalled < 5
    assert out.split() == ["done", "job-000"]  # it finished; no other call began
    after = dict(solo_raw.zrange("rache:queue", 0, -1, withscores=True))
    assert after == {job_id: due for job_id, due in before.items() if job_id != b"job-000"}
    assert called(workdir) == {process.pid: ["job-000"]}
    assert f"stopped on {signal.Signals(sig).name}" in err and "299 put back" in err
    assert "put back 299 claimed jobs at once" in err


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("nosuch:thing", "--call nosuch:thing: no module named 'nosuch'"),
        ("os:nosuch", "--call os:nosuch: module 'os' has no attribute 'nosuch'"),
        ("nocolon", "--call nocolon: expected MODULE:FUNCTION"),
        ("targets:not_callable", "--call targets:not_callable: int object, not a function"),
    ],
)
def test_a_bad_target_exits_2_with_one_line(
    solo: testing.RedisServer, workdir: Path, target: str, says: str
) -> None:
    process = rache_command("--url", solo.url, "dispatch", "--call", target, cwd=workdir)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.splitlines() == [f"rache: {says}" + err.split(says, 1)[1].splitlines()[0]]
    assert out == "" and "Traceback" not in err


def test_no_target_or_two_targets_are_refused(solo: testing.RedisServer, workdir: Path) -> None:
    for args, says in [
        ([], "give one target of --call, --rq, --rq-scheduler, --celery, --arq (given: none)"),
        (["--call", "targets:record", "--arq"], "(given: --call, --arq)"),
        (["--rq", "feeds"], "--rq needs --task"),
    ]:
        process = rache_command("--url", solo.url, "dispatch", *args, cwd=workdir)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 2 and says in err and len(err.splitlines()) == 1, err


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_flags_win_over_the_environment_and_metrics_health_and_logs(
    solo: testing.RedisServer, solo_raw: Any, workdir: Path
) -> None:
    Scheduler(solo_raw, "mine:").schedule_job("a", 0)
    port = port_for.select_random()
    health = workdir / "alive"
    process = rache_command(
        "dispatch", "--call", "targets:record", "--url", solo.url, "--prefix", "mine:",
        "--metrics-port", str(port), "--health-file", str(health), "--log-level", "DEBUG",
        "--reschedule-in", "10m",
        cwd=workdir, env={"REDIS_URL": "redis://127.0.0.1:1/0", "RACHE_REDIS_PREFIX": "other:"},
    )  # fmt: skip
    try:
        wait_for(lambda: called(workdir), what="job a")
        wait_for(lambda: get(f"http://127.0.0.1:{port}/metrics")[0] == 200, what="/metrics")
        _, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert "rache_dispatcher_claimed_total 1.0" in metrics
        assert "rache_dispatcher_handled_total 1.0" in metrics
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert get(f"http://127.0.0.1:{port}/nothing")[0] == 404
        first = wait_for(lambda: health.exists() and health.stat().st_mtime, what="health")
        wait_for(lambda: health.stat().st_mtime > first, 5, "the health file touched again")
    finally:
        err = stop(process)
    assert called(workdir) == {process.pid: ["a"]}
    now = float(solo_raw.time()[0])
    assert 590 < solo_raw.zscore("mine:queue", "a") - now <= 600  # --reschedule-in 10m
    lines = err.splitlines()
    start = [line for line in lines if "handing jobs to targets:record" in line]
    assert len(start) == 1 and "schedule 'mine:'" in start[0]
    assert f"on {solo.url}" in start[0]
    assert any("DEBUG rache.service: rache dispatch: job 'a' (due at " in line for line in lines)
    assert "stopped on SIGTERM: 1 jobs claimed, 1 handled, 0 failed, 0 put back" in err


def test_healthz_fails_while_a_call_stalls_the_loop(
    solo: testing.RedisServer, solo_raw: Any, workdir: Path
) -> None:
    Scheduler(solo_raw, "rache:").schedule_job("stuck", 0)
    port = port_for.select_random()
    process = rache_command(
        "dispatch", "--call", "targets:slow", "--metrics-port", str(port),
        "--health-timeout", "1", cwd=workdir, env={"REDIS_URL": solo.url, "SLOW": "3"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        assert process.stdout.readline().split() == ["start", "stuck"]
        _, text = wait_for(
            lambda: (got := get(f"http://127.0.0.1:{port}/healthz"))[0] == 503 and got, 3
        )
        assert text.startswith("stalled: the loop turned")
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 5, "alive again")
    finally:
        stop(process)


@pytest.mark.slow
def test_an_outage_is_logged_once_and_the_password_never(
    solo: testing.RedisServer, tmp_path: Path, workdir: Path
) -> None:
    if solo.spec.kind != "binary":
        pytest.skip(f"needs a redis-server binary to restart, not {solo.spec.describe()}")
    password = "s3cret-pw"
    (tmp_path / "redis").mkdir()
    own = testing.start(solo.spec, tmp_path / "redis", args=["--requirepass", password])
    url = f"redis://:{password}@127.0.0.1:{own.port}/0"
    process = rache_command(
        "dispatch", "--call", "targets:record", "--max-sleep", "0.5",
        cwd=workdir, env={"REDIS_URL": url},
    )  # fmt: skip
    try:
        client = own.client(password=password)
        Scheduler(client, "rache:").schedule_job("before", 0)
        wait_for(lambda: called(workdir), what="before")
        client.close()
        own.stop()
        time.sleep(2)  # down for 2 s: many failed attempts
        own = testing.start(
            solo.spec, tmp_path / "redis", args=["--requirepass", password], port=own.port
        )
        client = own.client(password=password)
        Scheduler(client, "rache:").schedule_job("after", 0)
        wait_for(lambda: len(called(workdir).get(process.pid, [])) == 2, 20, "after")
        client.close()
    finally:
        err = stop(process)
        own.stop()
    assert password not in err
    assert f"redis://:***@127.0.0.1:{own.port}/0" in err
    assert err.count("Redis unreachable") == 1, err
    assert err.count("reachable again") == 1, err
    assert "Traceback" not in err


def test_a_wrong_password_is_called_that(
    solo: testing.RedisServer, tmp_path: Path, workdir: Path
) -> None:
    if solo.spec.kind != "binary":
        pytest.skip(f"needs a redis-server binary, not {solo.spec.describe()}")
    (tmp_path / "redis").mkdir()
    own = testing.start(solo.spec, tmp_path / "redis", args=["--requirepass", "right"])
    try:
        url = f"redis://:wrong@127.0.0.1:{own.port}/0"
        process = rache_command("dispatch", "--call", "targets:record", "--url", url, cwd=workdir)
        _, err = process.communicate(timeout=30)
    finally:
        own.stop()
    assert process.returncode == 1
    assert err.startswith(f"rache: authentication failed at redis://:***@127.0.0.1:{own.port}/0")
    assert "wrong" not in err and "Traceback" not in err


# Task queues through the adapters ------------------------------------------------------------


CELERY_APP = """
import os
from celery import Celery
app = Celery("feeds", broker=os.environ["BROKER"])
"""


def test_the_task_queue_targets(solo: testing.RedisServer, solo_raw: Any, workdir: Path) -> None:
    pytest.importorskip("rq")
    pytest.importorskip("celery")
    pytest.importorskip("arq")
    import rq

    (workdir / "celeryapp.py").write_text(CELERY_APP)
    scheduler = Scheduler(solo_raw, "rache:")
    targets = {
        "rq": ["--rq", "feeds", "--task", "targets.record"],
        "celery": ["--celery", "celeryapp", "--task", "feeds.fetch"],
        "arq": ["--arq", "--task", "fetch", "--arq-queue", "arq:feeds"],
    }
    due: Dict[str, Any] = {}
    for name, args in targets.items():
        due[name] = scheduler.schedule_job(f"{name}-job", -1, url=f"https://example.com/{name}")
        process = rache_command(
            "dispatch", *args, cwd=workdir,
            env={"REDIS_URL": solo.url, "BROKER": solo.url},
        )  # fmt: skip
        try:
            wait_for(lambda: solo_raw.zcard("rache:queue") == 0, 30, name)
            time.sleep(0.2)
        finally:
            err = stop(process)
        assert "stopped on SIGTERM: 1 jobs claimed, 1 handled, 0 failed" in err, err

    def occurrence(name: str) -> str:
        """The pattern of the job's occurrence id: its run's token is drawn by its schedule."""
        return rf"{name}-job:{re.escape(str(due[name]))}:[0-9a-f]{{16}}"

    queue = rq.Queue("feeds", connection=solo_raw)
    (enqueued,) = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    assert enqueued is not None and enqueued.args == (
        {"id": "rq-job", "url": "https://example.com/rq"},
    )
    named = enqueued.meta["rache_occurrence"]
    assert re.fullmatch(occurrence("rq"), named)
    digest = hashlib.sha256(named.encode()).hexdigest()[:40]
    assert enqueued.id == f"rache-{digest}"  # adapters.rq_job_id's form
    # Celery's broker (Redis): one message, its task id the occurrence id.
    (message,) = [json.loads(raw) for raw in solo_raw.lrange("celery", 0, -1)]
    assert re.fullmatch(occurrence("celery"), message["headers"]["id"])
    assert message["headers"]["task"] == "feeds.fetch"
    # arq's queue: the occurrence id as arq's job id.
    (arq_id,) = solo_raw.zrange("arq:feeds", 0, -1)
    assert re.fullmatch(occurrence("arq"), arq_id.decode())
