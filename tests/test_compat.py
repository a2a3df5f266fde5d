"""Drop-in for code written against rache 0.3.1: module functions, names, data, clients."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import redis

import rache
from tests.support import harness
from tests.support.helpers import job_keys


def test_module_functions_use_redis_url_and_the_rache_prefix(default_env: None, raw: Any) -> None:
    rache.schedule_job("http://github.com/brutasse/rache", schedule_in=0, timeout=10)
    assert raw.zrange("rache:queue", 0, -1) == [b"http://github.com/brutasse/rache"]
    assert raw.hgetall("rache:job:http://github.com/brutasse/rache") == {b"timeout": b"10"}
    details = rache.job_details("http://github.com/brutasse/rache")
    assert details["timeout"] == 10 and isinstance(details["schedule_at"], int)
    assert list(rache.scheduled_jobs()) == ["http://github.com/brutasse/rache"]
    assert list(rache.pending_jobs()) == [{"id": "http://github.com/brutasse/rache", "timeout": 10}]
    rache.delete_job("http://github.com/brutasse/rache")
    assert job_keys(raw) == []


def test_the_prefix_comes_from_rache_redis_prefix(
    default_env: None, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RACHE_REDIS_PREFIX", "custom:")
    rache.schedule_job("a", 5, n=1)
    assert job_keys(raw) == [b"custom:job:a", b"custom:queue", b"custom:runs"]
    assert len(raw.keys("custom:call:*")) == 1  # the call's record, under the prefix
    assert rache.REDIS_PREFIX == "custom:"
    assert rache.REDIS_KEY == "custom:queue"


def test_a_passed_connection_is_used(server: harness.RedisServer, raw: Any) -> None:
    client = redis.StrictRedis.from_url(server.url, decode_responses=True)
    rache.schedule_job("a", -1, connection=client, n=1)
    assert list(rache.pending_jobs(connection=client, reschedule_in=60)) == [{"id": "a", "n": 1}]
    assert rache.job_details("a", connection=client)["n"] == 1
    assert [job_id for job_id, _ in rache.scheduled_jobs(True, client)] == ["a"]
    rache.delete_job("a", connection=client)
    assert job_keys(raw) == []


def test_0_3_1_names_are_lazy_and_reflect_redis_url(
    default_env: None, server: harness.RedisServer
) -> None:
    assert rache.REDIS == {
        "host": server.host,
        "port": server.port,
        "password": None,
        "db": int(redis.connection.parse_url(server.url).get("db", 0)),  # type: ignore[no-untyped-call]
    }
    assert rache.REDIS_PREFIX == "rache:"
    assert rache.REDIS_KEY == "rache:queue"
    assert isinstance(rache.r, redis.Redis)
    assert rache.r.ping()
    assert rache.r is rache.r  # the default client is made once
    with pytest.raises(AttributeError):
        rache.nothing_here  # noqa: B018


def test_redis_dict_for_a_unix_socket_and_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "unix:///tmp/redis.sock?db=2")
    assert rache.REDIS == {"unix_socket_path": "/tmp/redis.sock", "password": None, "db": 2}
    monkeypatch.setenv("REDIS_URL", "redis://:s3cret@example.com:6380/3")
    assert rache.REDIS == {"host": "example.com", "port": 6380, "password": "s3cret", "db": 3}


def test_importing_reads_no_environment_and_connects_nowhere() -> None:
    code = (
        "import os; os.environ['REDIS_URL'] = 'bogus://nowhere'; import rache; "
        "os.environ['REDIS_URL'] = 'redis://h:1/5'; print(rache.REDIS['db'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "5", out.stderr


def test_a_malformed_redis_url_is_a_clear_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://user:hunter2@example.com")
    monkeypatch.setattr(rache, "_default", None)
    with pytest.raises(rache.ConfigurationError, match="REDIS_URL is not a Redis URL") as info:
        rache.schedule_job("a", 1)
    assert "hunter2" not in str(info.value)


def test_data_written_by_0_3_1_works_unchanged(sched: Any, raw: Any) -> None:
    # What rache 0.3.1 wrote: ZADD of int(time.time()) + schedule_in, HMSET of str() values.
    now = raw.time()[0]
    raw.zadd("rache:queue", {"old": now - 30, "new": now + 3600})
    raw.hset("rache:job:old", mapping={"timeout": "10", "url": "http://x"})
    assert sched.job_details("old") == {
        "id": "old",
        "schedule_at": now - 30,
        "timeout": 10,
        "url": "http://x",
    }
    assert list(sched.scheduled_jobs(with_times=True)) == [("old", now - 30), ("new", now + 3600)]
    assert list(sched.pending_jobs()) == [{"id": "old", "timeout": 10, "url": "http://x"}]
