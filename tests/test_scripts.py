"""The one-script-per-call property: EVALSHA only, reloading on a cold script cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from rache import Scheduler, scripts
from tests.support import harness
from tests.support.helpers import commands_sent, warm_up


def test_every_call_is_one_evalsha(sched: Scheduler, raw: Any) -> None:
    warm_up(sched)
    assert commands_sent(raw, lambda: sched.schedule_job("a", -1, n=1)) == ["EVALSHA"]
    assert commands_sent(raw, lambda: sched.job_details("a")) == ["EVALSHA"]
    assert commands_sent(raw, lambda: list(sched.scheduled_jobs())) == ["EVALSHA"]
    assert commands_sent(raw, lambda: list(sched.pending_jobs())) == ["EVALSHA"]
    assert commands_sent(raw, lambda: sched.delete_job("a")) == ["EVALSHA"]


def test_claims_go_by_batches_of_one_round_trip(make: Any, raw: Any) -> None:
    sched = make(batch_size=1000)
    warm_up(sched)
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"j{i}": now - 1 for i in range(2500)})
    assert commands_sent(raw, lambda: list(sched.pending_jobs(limit=1000))) == ["EVALSHA"]
    assert commands_sent(raw, lambda: list(sched.pending_jobs())) == ["EVALSHA"] * 2


def test_generator_claims_lazily(make: Any, raw: Any) -> None:
    sched = make(batch_size=10)
    now = raw.time()[0]
    raw.zadd("rache:queue", {f"j{i:02}": now - 1 for i in range(30)})
    jobs = sched.pending_jobs()
    assert raw.zcard("rache:queue") == 30  # nothing claimed before the first next()
    for _ in range(10):
        next(jobs)
    assert raw.zcard("rache:queue") == 20  # one batch
    next(jobs)
    assert raw.zcard("rache:queue") == 10
    jobs.close()
    assert raw.zcard("rache:queue") == 19  # the unreceived nine are back


def test_script_flush_reloads_transparently(sched: Scheduler, raw: Any) -> None:
    sched.schedule_job("a", -1)
    raw.script_flush()
    assert raw.script_exists(scripts.CLAIM.sha) == [False]
    sent = commands_sent(raw, lambda: list(sched.pending_jobs()))
    assert sent == ["EVALSHA", "SCRIPT", "EVALSHA"]
    assert raw.script_exists(scripts.CLAIM.sha) == [True]
    assert raw.zcard("rache:queue") == 0


def test_every_shipped_script_has_a_header_naming_its_inputs() -> None:
    for script in scripts.SCRIPTS.values():
        assert script.source.startswith("--[[")
        assert "Input:" in script.source and "Output:" in script.source
        for i in range(1, script.numkeys + 1):
            assert f"KEYS[{i}]" in script.source
        assert "@include" not in script.source


def test_key_count_is_checked_before_anything_is_sent(conn: Any) -> None:
    with pytest.raises(ValueError, match="claim takes 7 keys, not 1"):
        scripts.CLAIM(conn, [b"a"], [])


@pytest.fixture
def own_server(server: harness.RedisServer, tmp_path: Path) -> Iterator[harness.RedisServer]:
    """A server of the session's kind that this test may restart."""
    if server.spec.kind != "binary":
        pytest.skip("restarting needs a redis-server binary this run starts")
    srv = harness.start(server.spec, tmp_path)
    yield srv
    srv.stop()


def test_a_server_restart_reloads_the_scripts(own_server: harness.RedisServer) -> None:
    client = own_server.client()
    sched = Scheduler(client)
    sched.schedule_job("a", -1)
    own_server.handle.stop()
    own_server.handle.start()  # same port, empty script cache (and, without persistence, data)
    for _ in range(50):  # the pool's old connection is dead; redis-py reconnects
        try:
            sched.schedule_job("b", -1, n=1)
            break
        except Exception:
            time.sleep(0.1)
    assert list(sched.pending_jobs()) == [{"id": "b", "n": 1}]
    client.close()
