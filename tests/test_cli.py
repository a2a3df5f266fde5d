"""The ``rache`` command, end to end against a real Redis."""

from __future__ import annotations

import datetime
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest
from click.testing import CliRunner

from rache import Cron, Every, Scheduler
from rache.cli import main, parse_duration, relative
from tests.support import harness
from tests.support.helpers import job_keys


@pytest.fixture
def cli(server: harness.RedisServer, raw: Any) -> Any:
    """Run ``rache ARGS...`` on the test server; the result has exit_code and output."""
    runner = CliRunner()

    def run(*args: str, input: Any = None) -> Any:
        env = {"REDIS_URL": server.url, "RACHE_REDIS_PREFIX": "rache:"}
        return runner.invoke(main, list(args), env=env, input=input)

    return run


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("-30s", -30),
        ("-5", -5),
        ("10m", 600),
        ("1h30m", 5400),
        ("2d", 172800),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "1h 30m", "m", "--5", "inf", "1e3", " 5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_relative_times() -> None:
    assert relative(100, 100.2) == "now"
    assert relative(112, 100) == "in 12s"
    assert relative(100, 400) == "5m overdue"
    assert relative(100 + 3600 + 125, 100) == "in 1h 2m"


def test_add_list_show_rm(cli: Any, raw: Any) -> None:
    result = cli("add", "feed:1", "--in", "10m", "--set", "url=http://x", "--set", "n=3")
    assert result.exit_code == 0 and "scheduled feed:1 at" in result.output
    assert "(in 10m)" in result.output or "(in 9m 59s)" in result.output
    assert cli("add", "late", "--in", "-30s").exit_code == 0
    listed = cli("list").output.splitlines()
    assert [line.split()[-1] for line in listed] == ["late", "feed:1"]
    assert "overdue" in listed[0] and "in " in listed[1]
    assert [
        json.loads(line)["id"] for line in cli("list", "--due", "--json").output.splitlines()
    ] == ["late"]
    assert len(cli("list", "--limit", "1").output.splitlines()) == 1
    shown = cli("show", "feed:1").output
    assert "url          'http://x'" in shown and "n            3" in shown
    assert json.loads(cli("show", "feed:1", "--json").output)["n"] == 3
    assert cli("rm", "-f", "feed:1", "late", "never").exit_code == 0  # -f: "never" no error
    assert job_keys(raw) == []


def test_runs_a_readable_table_newest_first_and_json(cli: Any, raw: Any) -> None:
    poller = Scheduler(raw, "rache:", name="worker\x1b[31m:1")
    poller.schedule_job("feed", 0, n=1)
    (first,) = poller.pending_jobs(reschedule_in=0, limit=1)
    poller.finish_run(first.occurrence_id, ValueError("bad input\nTraceback: " + "x" * 200))
    (second,) = poller.pending_jobs(reschedule_in=0, limit=1)
    poller.finish_run(second.occurrence_id, "flaky", retrying=True)
    poller.finish_run(second.occurrence_id, "flaky", retrying=True)
    (third,) = poller.pending_jobs(reschedule_in=3600, limit=1)
    shown = cli("runs", "feed")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].split() == ["STATE", "OCCURRENCE", "DUE", "CLAIMED", "BY", "FINISHED", "ERROR"]
    assert [line.split()[0] for line in lines[1:]] == ["running", "running", "failed"]
    assert lines[1].startswith("running   ")  # the column as wide as its widest cell
    assert third.occurrence_id in lines[1] and first.occurrence_id in lines[3]
    assert "running (2 failed attempts)" in lines[2] and lines[2].endswith("flaky")
    assert lines[3].endswith("ValueError: bad input") and "Traceback" not in shown.output
    assert "worker\\x1b[31m:1" in lines[3] and "\x1b" not in shown.output  # escaped
    assert re.search(r"  (now|\d+(\.\d+)?s ago)  ", lines[3])
    assert lines[1].rstrip().endswith("-")  # no outcome, no error
    assert len(cli("runs", "feed", "--limit", "1").output.splitlines()) == 2
    as_json = [json.loads(line) for line in cli("runs", "feed", "--json").output.splitlines()]
    assert [run["occurrence_id"] for run in as_json] == [
        third.occurrence_id, second.occurrence_id, first.occurrence_id
    ]  # fmt: skip
    assert as_json[2]["error"].startswith("ValueError: bad input\nTraceback: xxx")
    assert as_json[1]["attempts"] == 2 and as_json[0]["state"] == "running"
    # a job with none yet, and no job at all
    cli("add", "later", "--in", "1h")
    none = cli("runs", "later")
    assert none.exit_code == 0 and "no run of later recorded yet" in none.output
    assert cli("runs", "later", "--json").output == ""
    missing = cli("runs", "nope")
    assert missing.exit_code == 1 and "nope" in missing.output
    assert cli("runs", "feed", "--limit", "0").exit_code == 2


def test_a_new_cron_job_is_shown_at_its_next_occurrence(cli: Any, raw: Any) -> None:
    # 11 to 12 hours away: no poller has run, and nothing calls it due or overdue.
    hour = (
        datetime.datetime.fromtimestamp(int(raw.time()[0]), datetime.timezone.utc).hour + 12
    ) % 24
    Scheduler(raw, "rache:").schedule_recurring("report", Cron(f"0 {hour} * * *"))
    listed = cli("list").output
    assert "overdue" not in listed and re.search(r" in 1[12]h", listed)
    assert listed.split()[-1] == "report"
    assert re.search(r"due .*\(in 1[12]h", cli("show", "report").output)
    figures = cli("stats").output
    assert "due now     0" in figures and "oldest due" not in figures
    assert re.search(r"next due    in 1[12]h", figures)


def test_stats(cli: Any, raw: Any) -> None:
    now = raw.time()[0]
    raw.zadd("rache:queue", {"due": now - 90, "soon": now + 30, "later": now + 130})
    human = cli("stats").output
    assert "jobs        3" in human and "due now     1" in human
    assert "oldest due  1m 30s overdue" in human or "oldest due  1m 31s overdue" in human
    figures = json.loads(cli("stats", "--json").output)
    assert (figures["total"], figures["due"], figures["earliest"]) == (3, 1, now - 90)
    assert figures["coming"][:3] == [1, 0, 1] and 89 <= figures["lag"] <= 92
    assert figures["set_aside"] == []


def test_stats_shows_the_jobs_set_aside(cli: Any, raw: Any) -> None:
    # A rule value no rache wrote: the claim sets the job aside, stats says which and what.
    Scheduler(raw, "rache:").schedule_recurring("broken", Every(60), start=0)
    raw.hset("rache:recurring", "broken", "e|x|y")
    assert list(Scheduler(raw, "rache:").pending_jobs()) == []
    human = cli("stats").output
    assert "set aside   1 job whose rule does not parse" in human
    assert "broken: rule 'e|x|y', was due" in human
    figures = json.loads(cli("stats", "--json").output)
    assert figures["set_aside"] == [{"id": "broken", "rule": "e|x|y", "due": 0}]


def test_user_errors_are_one_line_and_exit_2(cli: Any, raw: Any) -> None:
    for args in (["add", "x", "--in", "soon"], ["add", "x", "--in", "1", "--set", "nokey"],
                 ["list", "--limit", "-1"], ["add", "", "--in", "5"]):  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert raw.keys("*") == []
    missing = cli("show", "nope")
    assert missing.exit_code == 1 and "no job with id 'nope'" in missing.output


def test_an_unreachable_or_bad_url(server: harness.RedisServer) -> None:
    runner = CliRunner()
    down = runner.invoke(main, ["--url", "redis://127.0.0.1:1/0", "list"])
    assert down.exit_code == 1 and "cannot reach Redis at redis://127.0.0.1:1/0" in down.output
    bad = runner.invoke(main, ["--url", "http://user:secret@host", "list"])
    assert bad.exit_code == 2 and "not a Redis URL" in bad.output and "secret" not in bad.output


def test_doctor(cli: Any, server: harness.RedisServer, raw: Any) -> None:
    raw.config_set("appendonly", "no")
    raw.config_set("save", "")
    raw.config_set("maxmemory-policy", "allkeys-lru")
    try:
        result = cli("doctor")
        assert result.exit_code == 1
        assert "FAIL maxmemory-policy allkeys-lru" in result.output
        assert "FAIL persistence" in result.output
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("appendonly", "yes")
        result = cli("doctor")
        assert result.exit_code == 0, result.output
        assert "ok   rache's scripts run" in result.output
    finally:
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("appendonly", "no")


@pytest.mark.slow
def test_export_import_round_trips_100000_jobs(cli: Any, raw: Any, tmp_path: Path) -> None:
    source = Scheduler(raw, "rache:")
    source.schedule_jobs(
        (f"job-{i:06}", i % 5000 - 2500 + i / 1000, {"n": i, "s": "x"}) for i in range(100_000)
    )
    source.schedule_job("odd", 60, raw=b"\xff\x00")
    dump = tmp_path / "jobs.jsonl"
    assert cli("export", str(dump)).exit_code == 0
    lines = dump.read_text().splitlines()
    assert len(lines) == 100_001
    before = list(source.export_jobs())
    raw.flushdb()
    result = cli("import", str(dump))
    assert result.exit_code == 0 and "imported 100,001 jobs" in result.output
    assert list(source.export_jobs()) == before


def test_import_checks_every_line_before_writing(cli: Any, raw: Any, tmp_path: Path) -> None:
    dump = tmp_path / "bad.jsonl"
    dump.write_text('{"id": "a", "due": 1, "data": {}}\n{"id": "b"}\n')
    result = cli("import", str(dump))
    assert result.exit_code == 2 and "line 2: not a job" in result.output
    dump.write_text('{"id": "a", "due": 1}\n{"id": "b", "due": "soon"}\n')
    result = cli("import", str(dump))
    assert result.exit_code == 2 and "jobs[1]: due time must be a Unix timestamp" in result.output
    assert raw.keys("*") == []


def read_until(fd: int, text: bytes, seconds: float = 10) -> bytes:
    """What a pseudo-terminal printed, up to ``text`` (or the deadline)."""
    seen, deadline = b"", time.monotonic() + seconds
    while text not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_watch_refreshes_in_a_terminal_and_quits_on_q(
    server: harness.RedisServer, raw: Any
) -> None:
    now = raw.time()[0]
    raw.zadd("rache:queue", {"a": now - 5})
    pid, fd = pty.fork()
    if pid == 0:  # the child: rache watch in a real terminal
        os.environ.update(REDIS_URL=server.url, RACHE_REDIS_PREFIX="rache:", TERM="xterm")
        os.execv(sys.executable, [sys.executable, "-m", "rache", "watch", "--every", "0.2"])
    screens: List[bytes] = [read_until(fd, b"q: quit")]
    raw.zadd("rache:queue", {"b": now - 5})  # the next refreshes show it
    screens.append(read_until(fd, b"due now     2"))
    os.write(fd, b"q")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"jobs        1" in screens[0] and b"q: quit" in screens[0]
    assert b"due now     2" in screens[1]
    assert os.waitstatus_to_exitcode(status) == 0


def test_python_dash_m_rache(server: harness.RedisServer, raw: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rache", "--url", server.url, "stats", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and json.loads(result.stdout)["total"] == 0


def test_reshard_and_the_shards_option(cli: Any, raw: Any) -> None:
    Scheduler(raw, "rache:").schedule_jobs([("a", 60, {"n": 1}), ("b", 120)])
    moved = cli("reshard", "--to", "3")
    assert moved.exit_code == 0, moved.output
    assert "moved 2 jobs: the schedule under 'rache:' has 3 shard(s)" in moved.output
    assert cli("--shards", "3", "list").output.split()[-1] == "b"
    assert json.loads(cli("--shards", "3", "show", "a", "--json").output)["n"] == 1
    wrong = cli("list")  # an unsharded view of a sharded schedule: refused, not empty
    assert wrong.exit_code == 2 and "laid out in 3 shard(s), not 1" in wrong.output
    assert cli("reshard", "--to", "0").exit_code == 2
    assert cli("reshard", "--to", "1").output.startswith("moved 2 jobs")
    assert cli("list").output.split()[-1] == "b"


def test_an_export_file_of_before_runs_still_imports(cli: Any, raw: Any, tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"id": "a", "due": 1700000000, "data": {"n": 1}}) + "\n")
    assert cli("import", str(old)).exit_code == 0
    assert Scheduler(raw, "rache:").job_details("a") == {
        "id": "a",
        "schedule_at": 1700000000,
        "n": 1,
    }
    new = tmp_path / "new.jsonl"
    assert cli("export", str(new)).exit_code == 0
    line = json.loads(new.read_text())
    assert line["run"] == next(iter(Scheduler(raw, "rache:").export_jobs())).run
    raw.flushdb()
    assert cli("import", str(new)).exit_code == 0
    assert next(iter(Scheduler(raw, "rache:").export_jobs())).run == line["run"]
