"""The ``rache`` command under least privilege and on bad days, against real servers.

README's ACL user runs every command; wrong addresses, passwords and topologies are said in
one line and a hint; ``watch`` rides out a restart; ids cannot drive the terminal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from click.testing import CliRunner

from rache import Scheduler, __version__
from rache.cli import main
from tests.support import harness as testing
from tests.test_security import ACL_LINE, grant

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, **env: str) -> Any:
    """``rache ARGS...`` through click's runner; stdout and stderr apart."""
    return CliRunner().invoke(main, list(args), env=env)


def one_line(result: Any, status: int = 1) -> str:
    """The error of a result that failed with ``status``: no traceback, a line and a hint."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2, lines
    return str(result.stderr)


@pytest.fixture
def own(server: testing.RedisServer, tmp_path: Path) -> Iterator[testing.RedisServer]:
    """A server of this test's own (to restart it, or give it a password or an ACL user)."""
    if server.spec.kind != "binary":
        pytest.skip(f"needs a redis-server binary, not {server.spec.describe()}")
    srv = testing.start(server.spec, tmp_path)
    yield srv
    srv.stop()


def test_the_acl_user_runs_every_command(own: testing.RedisServer, tmp_path: Path) -> None:
    admin = own.client()
    grant(admin, "pw", ACL_LINE)
    url = f"redis://rache:pw@127.0.0.1:{own.port}/0"
    env = {"REDIS_URL": url, "RACHE_REDIS_PREFIX": "rache:"}
    assert run("add", "a", "--in", "60", "--set", "x=1", **env).exit_code == 0
    assert run("add", "b", "--in", "-5", **env).exit_code == 0
    assert [line.split()[-1] for line in run("list", **env).stdout.splitlines()] == ["b", "a"]
    assert (
        "x            '1'" in run("show", "a", **env).stdout
        or "x            1" in run("show", "a", **env).stdout
    )
    assert "jobs        2" in run("stats", **env).stdout
    doctor = run("doctor", **env)  # INFO and CONFIG refused: said, not a crash
    assert doctor.exit_code == 1, doctor.output  # b is due, and no poller runs
    assert "FAIL 1 job is due and no poller is alive" in doctor.stdout
    assert run("pollers", **env).exit_code == 0
    assert "ok   Redis " in doctor.stdout  # from HELLO
    assert "??   maxmemory-policy: CONFIG GET refused, cannot check" in doctor.stdout
    assert "??   persistence: CONFIG GET refused, cannot check" in doctor.stdout
    assert "ok   rache's scripts run" in doctor.stdout
    exported = tmp_path / "jobs.jsonl"
    assert run("export", str(exported), **env).exit_code == 0
    assert run("rm", "a", "b", **env).exit_code == 0
    assert run("import", str(exported), **env).exit_code == 0
    assert run("--shards", "1", "list", **env).stdout.count("\n") == 2
    # reshard and orphans need SCAN, which the line does not give: said, nothing changed.
    before = {key: admin.dump(key) for key in admin.keys("*")}
    for args in (["reshard", "--to", "3"], ["orphans", "--delete"]):
        refused = one_line(run(*args, **env))
        assert "SCAN, which this Redis user may not run" in refused and "+scan" in refused
    assert {key: admin.dump(key) for key in admin.keys("*")} == before
    # watch and dispatch, real processes
    process = subprocess.Popen(
        [sys.executable, "-m", "rache", "watch", "--every", "0.2"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("rache watch  rache:")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0 and err == ""
    assert run("add", "c", "--in", "-1", "--set", "y=1", **env).exit_code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "rache", "dispatch", "--call", "json:dumps", "--forget"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    # c's data goes once c is handed out (--forget), after b, due earlier: both handled.
    while admin.zmscore("rache:queue", ["b", "c"]) != [None, None] or admin.exists("rache:job:c"):
        assert time.monotonic() < deadline, "rache dispatch did not hand out b and c"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0 and "2 jobs claimed, 2 handled, 0 failed" in err, err  # b and c
    # Redis refused only what doctor reports it could not check, the SCANs above, and
    # (Redis 6.2) the CLIENT SETINFO that redis-py sends on connecting and ignores.
    objects = {str(entry["object"]).split("|")[0] for entry in admin.acl_log()}
    assert {"scan", "info", "config"} <= objects <= {"scan", "info", "config", "client"}
    admin.close()


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"rache, version {__version__}\n"


def test_control_characters_in_ids_are_escaped_in_text_and_exact_in_json(
    server: testing.RedisServer, raw: Any
) -> None:
    env = {"REDIS_URL": server.url, "RACHE_REDIS_PREFIX": "rache:"}
    evil, split = "evil\x1b[31m", "two\nlines"
    Scheduler(raw, "rache:").schedule_jobs([(evil, -2, {"k\x07": "v"}), (split, -1)])
    listed = run("list", **env).stdout
    assert "\x1b" not in listed and listed.count("\n") == 2
    assert listed.splitlines()[0].endswith("evil\\x1b[31m")
    assert listed.splitlines()[1].endswith("two\\nlines")
    as_json = run("list", "--json", **env).stdout.splitlines()
    assert [json.loads(line)["id"] for line in as_json] == [evil, split]
    shown = run("show", evil, **env).stdout
    assert "\x1b" not in shown and "\x07" not in shown and "id           evil\\x1b[31m" in shown
    assert json.loads(run("show", evil, "--json", **env).stdout)["id"] == evil
    added = run("add", "new\rline", "--in", "5", **env).stdout
    assert "\r" not in added and added.startswith("scheduled new\\rline at")
    removed = run("rm", split, **env).stdout
    assert removed == "removed two\\nlines\n"


def test_rm_of_an_unknown_id_says_so_and_exits_1_unless_forced(
    server: testing.RedisServer, raw: Any
) -> None:
    env = {"REDIS_URL": server.url, "RACHE_REDIS_PREFIX": "rache:"}
    Scheduler(raw, "rache:").schedule_jobs([("a", 60), ("b", 60)])
    result = run("rm", "a", "nope", **env)
    assert result.exit_code == 1
    assert result.stdout == "removed a\n" and result.stderr == "rache: no job with id 'nope'\n"
    assert raw.zrange("rache:queue", 0, -1) == [b"b"]
    forced = run("rm", "-f", "b", "nope", **env)
    assert forced.exit_code == 0 and forced.stdout == "removed b\n"


def test_stats_of_an_empty_schedule_shows_a_peak_of_0(
    server: testing.RedisServer, raw: Any
) -> None:
    result = run("stats", REDIS_URL=server.url, RACHE_REDIS_PREFIX="rache:")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].endswith("| 0 in 1h, peak 0")


def test_no_color_is_honoured(server: testing.RedisServer, raw: Any) -> None:
    Scheduler(raw, "rache:").schedule_job("late", -30)
    env = {"REDIS_URL": server.url, "RACHE_REDIS_PREFIX": "rache:"}
    runner = CliRunner()
    coloured = runner.invoke(main, ["list"], env=env, color=True).stdout
    assert "\x1b[33m" in coloured  # overdue in yellow, on a terminal
    plain = runner.invoke(main, ["list"], env={**env, "NO_COLOR": "1"}, color=True).stdout
    assert "\x1b" not in plain and "overdue" in plain


def test_the_shards_messages_speak_the_command(server: testing.RedisServer, raw: Any) -> None:
    env = {"REDIS_URL": server.url, "RACHE_REDIS_PREFIX": "rache:"}
    Scheduler(raw, "rache:", shards=3).schedule_job("a", 60)
    wrong = run("list", **env)
    assert wrong.exit_code == 2
    assert "is laid out in 3 shard(s), not 1: pass --shards 3" in wrong.output
    assert "rache --shards 3 reshard --to 1" in wrong.output and "shards=" not in wrong.output
    raw.flushdb()
    Scheduler(raw, "rache:").schedule_job("a", 60)
    wrong = run("--shards", "3", "list", **env)
    assert wrong.exit_code == 2 and "not 3: pass --shards 1 (or none)" in wrong.output
    assert "shards=" not in wrong.output


class _Web(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html></html>")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_web_server_at_the_url_is_said_in_one_line() -> None:
    web = ThreadingHTTPServer(("127.0.0.1", 0), _Web)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        result = run("--url", f"redis://127.0.0.1:{web.server_address[1]}/0", "stats")
    finally:
        web.shutdown()
        web.server_close()
    said = one_line(result)
    assert "does not answer as Redis does" in said and "not of a web server?" in said


def test_authentication_failures_are_called_that(own: testing.RedisServer) -> None:
    own.client().config_set("requirepass", "right")
    for url in (f"redis://:wrong@127.0.0.1:{own.port}/0", f"redis://127.0.0.1:{own.port}/0"):
        said = one_line(run("--url", url, "list"))
        assert said.startswith("rache: authentication failed at ") and "cannot reach" not in said
        assert "wrong" not in said and "check the user and password" in said


def test_cluster_and_no_cluster_mixed_up(
    server: testing.RedisServer, cluster_nodes: testing.RedisClusterServers
) -> None:
    plain = one_line(run("--cluster", "--url", server.url, "--prefix", "{rache}:", "stats"))
    assert "is not a Redis Cluster node" in plain and "drop --cluster" in plain
    cluster = cluster_nodes.client()
    owner = cluster.get_node_from_key("rache:layout")  # type: ignore[no-untyped-call]
    cluster.close()
    other = next(node for node in cluster_nodes.nodes if node.port != owner.port)
    moved = one_line(run("--url", other.url, "list", RACHE_REDIS_PREFIX="rache:"))
    assert "is a Redis Cluster node (it answered MovedError" in moved and "add --cluster" in moved
    untagged = run("--cluster", "--url", other.url, "list", RACHE_REDIS_PREFIX="rache:")
    assert untagged.exit_code == 2 and "--prefix '{rache}:', or --shards N" in untagged.output


@pytest.mark.slow
def test_watch_rides_out_a_redis_restart(own: testing.RedisServer, tmp_path: Path) -> None:
    Scheduler(own.client(), "rache:").schedule_job("a", 60)
    process = subprocess.Popen(
        [sys.executable, "-m", "rache", "--url", own.url, "watch", "--every", "0.1"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: List[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()

    def wait_for(text: str, after: int = 0) -> int:
        deadline = time.monotonic() + 15
        while not any(text in line for line in lines[after:]):
            assert time.monotonic() < deadline, (text, lines[-5:])
            time.sleep(0.05)
        return len(lines)

    seen = wait_for("jobs        1")
    port = own.port
    own.stop()
    seen = wait_for("cannot reach Redis", seen)
    restarted = testing.start(own.spec, tmp_path, port=port)
    try:
        Scheduler(restarted.client(), "rache:").schedule_jobs([("b", 60), ("c", 60)])
        wait_for("jobs        2", seen)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        restarted.stop()
    assert process.returncode == 0 and "Traceback" not in err, err
