"""Security: least privilege (an ACL user with only what rache needs) and TLS with a password.

Each test starts its own redis-server, from the binary of the session's ``server``, set up
as it needs: an ACL user, or TLS only (``--port 0``) with passwords. Everything rache
produces (reprs, errors, log records) is then searched for the password.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional
from urllib.parse import quote

import port_for
import pytest
import redis
import redis.asyncio
from redis.exceptions import NoPermissionError

import rache
from rache import Cron, Every, Poller
from rache.aio import AsyncDispatcher, AsyncScheduler
from rache.constants import DEFAULT_BATCH_SIZE
from rache.dispatch import Dispatcher
from rache.scheduler import Scheduler
from rache.scripts import SCRIPTS
from tests.support import harness as testing
from tests.support.helpers import job_keys
from tests.test_shards import exercise_sharded

#: The ACL line docs/howto/least-privilege-and-tls.rst gives operators: a user ``rache``
#: allowed rache's script commands, the commands its scripts run, and keys under ``rache:``
#: only; nothing else but the Dispatcher's wake-up channel (the schedule scripts PUBLISH, a
#: dispatcher SUBSCRIBEs).
#: Works on Redis 6.2 and 7.0 (no selectors). CHANGE-ME is the password to choose.
ACL_LINE = (
    "ACL SETUSER rache reset on >CHANGE-ME ~rache:* resetchannels &rache:*wakeup"
    " +evalsha +script|load +time +type +zadd +zrem +zrange +zrangebyscore +zscore +zrank"
    " +zcount +zcard +hset +hdel +hgetall +hmget +exists +del +get +set +lpush +ltrim"
    " +lrange +lset +lpop +hlen +hscan +publish +subscribe"
)
PERMISSIONS = [part[1:] for part in ACL_LINE.split() if part.startswith("+")]
HOWTO = Path(__file__).resolve().parent.parent / "docs" / "howto" / "least-privilege-and-tls.rst"


def grant(admin: redis.Redis, password: str, line: str = ACL_LINE) -> None:
    """Run ``line`` (an ACL SETUSER) with ``password`` in place of CHANGE-ME."""
    words = [f">{password}" if word == ">CHANGE-ME" else word for word in line.split()]
    assert admin.execute_command(*words) in (b"OK", "OK")  # type: ignore[no-untyped-call]


def refusals(admin: redis.Redis) -> list[tuple[str, str]]:
    """(reason, object) of each ACL LOG entry: what Redis refused, and why."""
    return [(str(e["reason"]), str(e["object"])) for e in admin.acl_log()]


def exercise(api: Any, batch_size: int) -> None:
    """Run every operation, and check what each does.

    With a ``batch_size`` of 2, this goes through every path of every script. ``api`` is a
    Scheduler with the prefix ``rache:`` on an empty database, or the rache module itself
    (its default scheduler), which has the same six operations.
    """
    api.schedule_job("a", 0, url="http://a", n=1)
    api.schedule_job("a", 0, n=None)  # HDEL
    assert api.schedule_jobs([("b", -10, {"x": "y"}), ("c", -20), ("d", 3600)]) == 3
    a = api.job_details("a")
    assert a["id"] == "a" and a["url"] == "http://a" and "n" not in a
    assert isinstance(a["schedule_at"], int)
    assert list(api.scheduled_jobs()) == ["c", "b", "a", "d"]

    # The anchor of the next page moves meanwhile: with pages of 2, that page starts by
    # counting what comes before the anchor's old time (ZCOUNT), the one after by ZRANK.
    pages = api.scheduled_jobs()
    assert [next(pages), next(pages)] == ["c", "b"]
    api.schedule_job("b", 7200)
    assert list(pages) == (["a", "d", "b"] if batch_size <= 2 else ["a", "d"])
    api.schedule_job("b", -10)

    # Closed early: the claimed jobs it never handed out are put back (release script).
    claims = api.pending_jobs()
    assert next(claims) == {"id": "c"}
    claims.close()
    assert list(api.scheduled_jobs()) == ["b", "a", "d"]
    with pytest.raises(rache.JobNotFound):
        api.job_details("c")  # claimed without reschedule_in, and it had no data
    claims = api.pending_jobs(reschedule_in=60)
    assert next(claims) == {"id": "b", "x": "y"}
    claims.close()
    assert api.job_details("a")["schedule_at"] == a["schedule_at"]  # put back as it was
    b = api.job_details("b")
    assert b["schedule_at"] >= a["schedule_at"] + 59

    assert list(api.pending_jobs()) == [{"id": "a", "url": "http://a"}]
    assert api.job_details("a")["schedule_at"] is None
    api.delete_job("a")
    api.delete_job("never-scheduled")
    with pytest.raises(rache.JobNotFound):
        api.job_details("a")
    times = list(api.scheduled_jobs(True))
    assert [job_id for job_id, _ in times] == ["b", "d"] and times[0][1] == b["schedule_at"]

    stats = api.stats()  # ZCARD, ZCOUNT, ZRANGE, ZRANGEBYSCORE
    assert (stats.total, stats.due, stats.next_due) == (2, 0, b["schedule_at"])
    if isinstance(api, Scheduler):  # methods only: no module function mirrors them
        me = Poller("acl:1", "dispatcher", "acl", 1, "1.0", 0.0, None, 0, 0)
        api.announce(me)  # announce-1.lua, pollers-1.lua: TIME, TYPE, HMGET, HGETALL, HSET
        assert [p.name for p in api.pollers()] == ["acl:1"] and api.health().ok
        assert api.withdraw("acl:1")  # HDEL, DEL: the last one out
    assert api.schedule_jobs([("e", b["schedule_at"], {"k": "v"})], at=True) == 1
    assert api.job_details("e") == {"id": "e", "schedule_at": b["schedule_at"], "k": "v"}
    exported = list(api.export_jobs())  # export-3.lua: ZRANGE, HGETALL
    assert [job_id for job_id, *_ in exported] == ["b", "e", "d"]
    assert exported[1][:3] == ("e", b["schedule_at"], {"k": "v"})
    # Taken back with their runs (restoreBulk-4.lua: ZADD, HSET, HDEL, PUBLISH), unchanged.
    assert api.schedule_jobs(exported, at=True) == 3
    assert list(api.export_jobs()) == exported

    # Recurring jobs, their rules in rache:recurring (HMGET): both long overdue, one run each.
    api.schedule_recurring("r", Every(3600), start=0, data={"k": 1})
    api.schedule_recurring("cron", Cron("0 0 1 1 *"), start=0)  # leased, then advanced
    claims = api.pending_jobs()
    assert next(claims) == {"id": "cron"}
    claims.close()  # 'r' goes back to its occurrence (release-5.lua)
    assert list(api.pending_jobs()) == [{"id": "r", "k": 1}]
    assert api.job_details("r")["recurring"]["every"] == 3600
    assert sorted(api.recurring_jobs()) == ["cron", "r"]  # recurringJobs-1.lua: HGETALL
    if isinstance(api, Scheduler):  # recurringRuns-3.lua: HMGET, ZSCORE, LRANGE
        read = {runs.job_id: runs for runs in api.health(late=10**9).recurring}
        assert sorted(read) == ["cron", "r"] and read["r"].last_run is not None
    assert api.delete_job("r") is True
    api.delete_job("cron")
    assert list(api.recurring_jobs()) == []
    assert api.schedule_job_at("h", 2e9, data={"k": 1}) == 2_000_000_000  # schedule-4.lua
    assert api.delete_job("h") is True
    assert api.server_time() > 0  # stats-3.lua: TIME

    # Runs: each newest in rache:lastrun (HMGET, HSET), the one before on its list (LPUSH);
    # a put-back restores it (LPOP); LRANGE and LSET read and rewrite them.
    api.schedule_job("r2", -1)
    (before,) = list(api.pending_jobs())
    api.schedule_job("r1", -2)
    api.schedule_job("r2", -1)
    claims = api.pending_jobs()
    first = next(claims)
    claims.close()  # r2's run taken back: the run before is its newest again
    runs = (api.runs if hasattr(api, "runs") else api.job_runs)("r1")  # a shell, or rache
    assert [run.occurrence_id for run in runs] == [first.occurrence_id]
    runs = (api.runs if hasattr(api, "runs") else api.job_runs)("r2")
    assert [run.occurrence_id for run in runs] == [before.occurrence_id]
    assert api.finish_run(first.occurrence_id, "failed") is True
    assert api.delete_job("r2") is True
    if isinstance(api, Scheduler):
        assert [run.state for run in api.failures()] == ["failed"]
        two = Scheduler(api.connection, api.keys.prefix, history=2)
        handed_r3 = []
        for _ in range(3):  # LTRIM: past the history kept
            two.schedule_job("r3", 0)
            handed_r3 += list(two.pending_jobs())
        assert len(two.runs("r3")) == 2
        assert two.finish_run(handed_r3[1].occurrence_id) is True  # LSET, on its list
        # The sweep (HLEN, HSCAN): with a ttl of a millisecond, r1 (not scheduled) goes.
        swept = Scheduler(api.connection, api.keys.prefix, history_ttl=0.001)
        for i in range(2):
            swept.schedule_job(f"s{i}", 0)
            list(swept.pending_jobs())
            time.sleep(0.01)
        assert swept.runs("r1") == []
    if isinstance(api, Scheduler):  # a Dispatcher: SUBSCRIBE to <prefix>wakeup, then claim
        handed: List[Any] = []
        api.schedule_job("f", -1)
        api.schedule_job("g", -1, data=1)
        Dispatcher(handed.append, scheduler=api, max_sleep=1, forget=True).run(until_idle=True)
        assert handed == [{"id": "f"}, {"id": "g", "data": 1}]
        with pytest.raises(rache.JobNotFound):  # forget-3.lua: ZSCORE, EXISTS, DEL
            api.job_details("g")


@pytest.fixture(scope="module")
def binary(server: testing.RedisServer) -> testing.ServerSpec:
    """The session server's redis-server binary, to start servers set up differently."""
    if server.spec.kind != "binary":
        pytest.skip(
            f"needs a redis-server binary to start servers with an ACL user or TLS, and "
            f"the session has {server.spec.describe()}"
        )
    return server.spec


# Least privilege ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server(
    binary: testing.ServerSpec, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[testing.RedisServer]:
    """A server of our own, whose default user (no password) plays the operator."""
    srv = testing.start(binary, tmp_path_factory.mktemp(f"acl-{binary.label}"))
    yield srv
    srv.stop()


@pytest.fixture
def admin(acl_server: testing.RedisServer) -> Iterator[redis.Redis]:
    """The operator: an empty server, a cold script cache, an empty ACL LOG, user ``rache``."""
    client = acl_server.client(decode_responses=True)
    client.flushall()
    client.script_flush()
    client.acl_log_reset()
    client.acl_deluser("rache")
    yield client
    client.close()


def login(
    server: testing.RedisServer, password: str, protocol: int = 2, db: int = 0
) -> redis.Redis:
    """A client logged in as user ``rache``."""
    return redis.Redis(
        host=server.host,
        port=server.port,
        db=db,
        username="rache",
        password=password,
        protocol=protocol,
    )


def test_the_docs_give_the_acl_line_the_tests_use() -> None:
    text = HOWTO.read_text()
    assert ACL_LINE in text  # the line to paste into redis-cli
    assert "".join(re.findall(r"^        '(.*)'$", text, re.M)) == ACL_LINE  # the Python block


@pytest.mark.parametrize("protocol", [2, 3])
def test_the_acl_user_runs_the_whole_api(
    acl_server: testing.RedisServer,
    admin: redis.Redis,
    protocol: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = secrets.token_hex(16)
    grant(admin, password)
    user = login(acl_server, password, protocol)
    caplog.set_level(logging.DEBUG, logger="rache")
    exercise(Scheduler(user, "rache:", batch_size=2), 2)
    exercise_sharded(Scheduler(user, "rache:sharded:", batch_size=2, shards=3))
    user.close()
    # The user loaded every script itself (the cache was cold: SCRIPT LOAD), Redis refused
    # it nothing rache needs (redis-py's CLIENT SETINFO on connecting, if refused, is
    # ignored), and rache logged no failure (a failed put-back is only logged). Only
    # rache.reshard(), an administrator's move, runs restoreBulk and deleteBulk.
    admin_only = ("restoreBulk", "deleteBulk")
    used = [script.sha for name, script in SCRIPTS.items() if name not in admin_only]
    assert all(admin.script_exists(*used))
    assert [r for r in refusals(admin) if r != ("command", "client")] == []
    assert rache_logs(caplog) == []
    keys = {key.decode() for key in job_keys(admin)}
    keys = {key for key in keys if not key.startswith("rache:sharded:")}
    histories = {key for key in keys if key.startswith("rache:history:")}
    assert histories == set()  # r3's, the one list, swept with its job's runs
    # (rache:clock: the latest time a claim moved recurring jobs, for clock jumps)
    assert keys - histories == {
        "rache:queue", "rache:job:b", "rache:job:e", "rache:runs", "rache:lastrun",
        "rache:failures", "rache:clock",
    }  # fmt: skip
    assert admin.keys("rache:call:*", NEVER_DECODE=True)  # and the records of its calls
    assert admin.hgetall("rache:sharded:layout") == {"shards": "3"}


def test_each_command_of_the_acl_line_is_needed(
    acl_server: testing.RedisServer, admin: redis.Redis
) -> None:
    """Without any one permission of the line, some operation is refused that permission."""
    password = secrets.token_hex(16)
    unneeded = []
    for permission in PERMISSIONS:
        admin.flushall()
        admin.script_flush()
        admin.acl_log_reset()
        grant(admin, password, " ".join(w for w in ACL_LINE.split() if w != f"+{permission}"))
        user = login(acl_server, password)
        try:
            exercise(Scheduler(user, "rache:", batch_size=2), 2)
        except (redis.RedisError, AssertionError, rache.JobNotFound):
            pass  # refused, or a put-back refused (logged), so a check failed
        finally:
            user.close()
        # Redis 6.2 logs a refused subcommand (script|load) under its command (script).
        if not {("command", permission), ("command", permission.split("|")[0])} & set(
            refusals(admin)
        ):
            unneeded.append(permission)
    assert unneeded == []


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_the_acl_line_of_before_the_dispatcher_still_schedules_and_dispatches(
    acl_server: testing.RedisServer,
    admin: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """An ACL line from before the Dispatcher and the call records still works.

    Without ``&rache:*wakeup +publish +subscribe`` (no wake-up) nor ``+get +set`` (its calls
    run unrecorded).
    """
    old_line = ACL_LINE.replace(" &rache:*wakeup", "").replace(" +publish +subscribe", "")
    old_line = old_line.replace(" +get +set", "")
    password = secrets.token_hex(16)
    grant(admin, password, old_line)
    user = login(acl_server, password)
    Scheduler(user, "rache:").schedule_job("a", -1)  # PUBLISH refused, ignored (redis.pcall)
    handed: List[Any] = []
    caplog.set_level(logging.WARNING, logger="rache")
    if kind == "sync":
        dispatcher = Dispatcher(handed.append, scheduler=Scheduler(user), max_sleep=0.2)
        threading.Timer(0.8, dispatcher.stop).start()
        dispatcher.run()
    else:

        async def main() -> None:
            aclient = redis.asyncio.Redis(
                host=acl_server.host, port=acl_server.port, username="rache", password=password
            )
            adispatcher = AsyncDispatcher(
                handed.append, scheduler=AsyncScheduler(aclient), max_sleep=0.2
            )
            asyncio.get_running_loop().call_later(0.8, adispatcher.stop)
            await adispatcher.run()
            await aclient.aclose()

        asyncio.run(main())
    user.close()
    assert handed == [{"id": "a"}]  # claimed by the timer, not woken
    assert ("command", "publish") in refusals(admin)
    assert ("command", "get") in refusals(admin)
    assert admin.keys("rache:call:*", NEVER_DECODE=True) == []
    assert ("command", "subscribe") in refusals(admin)
    [warning] = rache_logs(caplog)  # said once; the loop went on
    assert "cannot SUBSCRIBE" in warning and "max_sleep" in warning


def test_the_acl_user_is_refused_other_keys_and_commands(
    acl_server: testing.RedisServer, admin: redis.Redis
) -> None:
    password = secrets.token_hex(16)
    grant(admin, password)
    user = login(acl_server, password)
    other = Scheduler(user, "other:")
    operations: List[Callable[[], object]] = [
        lambda: other.schedule_job("x", 0, a=1),
        lambda: other.schedule_jobs([("x", 0)]),
        lambda: list(other.pending_jobs()),
        lambda: other.job_details("x"),
        lambda: list(other.scheduled_jobs()),
        lambda: other.delete_job("x"),
        # Each call above is refused at the layout check (other:layout), before the rest:
        # one script on the schedule's own keys, without it.
        lambda: rache.scripts.SCHEDULE(
            user,
            [b"other:queue", b"other:job:x", b"other:runs", b"other:call:"],
            [b"other:wakeup", b"x", 0, b"s", 0],
        ),
        lambda: user.eval("return 1", 0),  # rache never sends EVAL
        lambda: user.sadd("rache:x", 1),  # a command rache does not need, on its own keys
        lambda: user.keys("*"),
    ]
    for operation in operations:
        with pytest.raises(NoPermissionError):
            operation()
    # SCRIPT LOAD lets the user run any Lua, but Lua runs with the user's rights.
    sha = user.script_load("return redis.call('HSET', 'other:x', 'a', 1)")
    with pytest.raises(redis.ResponseError, match="can't access at least one of the keys"):
        user.evalsha(sha, 0)
    user.close()
    assert admin.keys("*") == []
    assert ("key", "other:layout") in refusals(admin)
    assert ("key", "other:queue") in refusals(admin)
    assert ("key", "other:x") in refusals(admin)


def test_a_database_other_than_0_needs_select_as_the_readme_says(
    acl_server: testing.RedisServer, admin: redis.Redis
) -> None:
    password = secrets.token_hex(16)
    grant(admin, password)
    user = login(acl_server, password, db=1)
    with pytest.raises(NoPermissionError, match="select"):
        Scheduler(user, "rache:").schedule_job("a", 0)
    user.close()
    grant(admin, password, ACL_LINE + " +select")
    user = login(acl_server, password, db=1)
    Scheduler(user, "rache:").schedule_job("a", 0)
    user.close()
    other_db = redis.Redis(host=acl_server.host, port=acl_server.port, db=1)
    assert other_db.exists("rache:queue")
    other_db.close()


# TLS and passwords ---------------------------------------------------------------------------


def tls_support(binary: str) -> Optional[str]:
    """None if ``binary`` can serve TLS, else why not.

    A redis-server built without TLS stops at the first ``tls-*`` option of its command line
    ("Bad directive"); one built with it gets past it, to the bad option that follows.
    """
    result = subprocess.run(
        [binary, "--tls-port", "0", "--rache-no-such-option", "x"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if "tls-port" in result.stdout + result.stderr:
        return "was built without TLS support (it rejects --tls-port as a bad directive)"
    return None


@dataclass
class TLSServer:
    """A TLS-only server, its operator, and user ``rache`` with its password."""

    server: testing.RedisServer
    admin: redis.Redis
    password: str
    ca: Path

    def url(self, password: Optional[str] = None, *, verify: bool = True) -> str:
        """A ``rediss://`` URL as user ``rache``, the CA to verify the server by if ``verify``."""
        query = f"?ssl_ca_certs={quote(str(self.ca))}" if verify else ""
        secret = self.password if password is None else password
        return f"rediss://rache:{secret}@127.0.0.1:{self.server.port}/0{query}"


def make_certificates(folder: Path) -> None:
    """A self-signed CA (ca.crt) and a certificate it signs for 127.0.0.1 (server.crt/.key)."""
    (folder / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    ca = "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
    for command in [
        f"req -x509 {key} -keyout ca.key -out ca.crt -days 2 -subj /CN=rache-test-CA {ca}",
        f"req -new {key} -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 1 -days 2"
        " -extfile server.ext -out server.crt",
    ]:
        subprocess.run(["openssl", *command.split()], cwd=folder, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls(
    binary: testing.ServerSpec, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TLSServer]:
    """A server that speaks TLS only, and needs a password from everyone."""
    why_not = tls_support(binary.target)
    if why_not:
        pytest.skip(f"redis-server {binary.version} at {binary.target} {why_not}")
    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make the test certificates with")
    folder = tmp_path_factory.mktemp(f"tls-{binary.label}")
    make_certificates(folder)
    port = port_for.select_random()
    admin_password = secrets.token_hex(16)
    options = ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
    options += ["--requirepass", admin_password]
    for option, name in [("cert", "server.crt"), ("key", "server.key"), ("ca-cert", "ca.crt")]:
        options += [f"--tls-{option}-file", str(folder / name)]
    srv = testing.start(binary, folder, args=options, port=port)
    admin = redis.Redis(
        host="127.0.0.1",
        port=port,
        password=admin_password,
        ssl=True,
        ssl_ca_certs=str(folder / "ca.crt"),
        decode_responses=True,
    )
    try:
        password = secrets.token_hex(16)
        grant(admin, password)
        yield TLSServer(srv, admin, password, folder / "ca.crt")
    finally:
        admin.close()
        srv.stop()


def assert_hidden(secret: str, *texts: str) -> None:
    """None of ``texts`` shows ``secret``."""
    for text in texts:
        assert secret not in text


def shown(error: BaseException) -> list[str]:
    """What an error shows: its str(), repr() and traceback."""
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


def rache_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Each record of rache's loggers as a handler would write it, traceback included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [
        formatter.format(record)
        for record in caplog.records
        if record.name == "rache" or record.name.startswith("rache.")
    ]


def fail_a_put_back(api: Any, admin: redis.Redis, password: str) -> None:
    """Make rache log: a put-back refused (EVALSHA revoked for a moment)."""
    api.schedule_jobs([("p", -2), ("q", -1)])
    claims = api.pending_jobs()
    assert next(claims)["id"] == "p"
    grant(admin, password, ACL_LINE + " -evalsha")
    try:
        claims.close()  # the put-back of q fails: logged, not raised
    finally:
        grant(admin, password)
    api.delete_job("p")
    api.delete_job("q")


def test_tls_module_functions(
    tls: TLSServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tls.admin.flushall()
    monkeypatch.setenv("REDIS_URL", tls.url())
    monkeypatch.delenv("RACHE_REDIS_PREFIX", raising=False)
    monkeypatch.setattr(rache, "_default", None)
    caplog.set_level(logging.DEBUG, logger="rache")
    try:
        exercise(rache, DEFAULT_BATCH_SIZE)
        fail_a_put_back(rache, tls.admin, tls.password)
        default = rache._default
        assert default is not None
        pool = default.connection.connection_pool
        assert issubclass(pool.connection_class, redis.SSLConnection)
        assert any(client["user"] == "rache" for client in tls.admin.client_list())
        with pytest.raises(rache.JobNotFound) as missing:
            rache.job_details("gone")
        logs = rache_logs(caplog)
        assert len(logs) == 1 and "could not put back 1 claimed jobs" in logs[0]
        assert "NoPermissionError" in logs[0]  # the traceback is there, checked too
        assert_hidden(tls.password, repr(default), str(default), *shown(missing.value), *logs)
    finally:
        if rache._default is not None:
            rache._default.connection.close()


def test_tls_scheduler(tls: TLSServer, caplog: pytest.LogCaptureFixture) -> None:
    tls.admin.flushall()
    caplog.set_level(logging.DEBUG, logger="rache")
    client = redis.Redis.from_url(tls.url())
    sched = Scheduler(client, "rache:", batch_size=2)
    exercise(sched, 2)
    fail_a_put_back(sched, tls.admin, tls.password)
    logs = rache_logs(caplog)
    assert len(logs) == 1 and "could not put back" in logs[0]
    # Refused (an error reply): the script did not run, so "could not"; the job named.
    assert (
        "rache: could not put back 1 claimed jobs that were never handed out (1 plain, "
        "0 recurring: 'q'): Redis refused the call (NoPermissionError: "
    ) in logs[0]
    assert repr(sched) == (
        f"<Scheduler prefix='rache:' connection=<redis.client.Redis "
        f"rediss://127.0.0.1:{tls.server.port}/0>>"
    )
    assert_hidden(tls.password, repr(sched), *logs)
    client.close()


def test_tls_server_refuses_plain_unverified_and_unauthenticated_clients(tls: TLSServer) -> None:
    tls.admin.flushall()
    port = tls.server.port
    wrong = secrets.token_hex(16)
    attempts: List[tuple[str, type[Exception], Optional[str]]] = [
        (f"redis://rache:{tls.password}@127.0.0.1:{port}/0", redis.ConnectionError, None),
        (tls.url(verify=False), redis.ConnectionError, "certificate verify failed"),
        (tls.url().replace(f"rache:{tls.password}@", ""), redis.AuthenticationError, None),
        (tls.url(wrong), redis.AuthenticationError, "invalid username-password pair"),
    ]
    for url, error, message in attempts:
        client = redis.Redis.from_url(url)
        with pytest.raises(error, match=message) as info:
            Scheduler(client).schedule_job("a", 0)
        client.close()
        assert_hidden(tls.password, *shown(info.value))
        assert_hidden(wrong, *shown(info.value))
    assert tls.admin.keys("*") == []


def test_the_password_is_in_no_repr_even_where_redis_py_shows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Some redis-py releases show the password in a client's repr: a Scheduler's does not."""
    password = secrets.token_hex(16)
    # What redis-py 6.x to 7.3 print (fixed in 7.4): every connection setting, password too.
    monkeypatch.setattr(redis.ConnectionPool, "SENSITIVE_REPR_KEYS", frozenset(), raising=False)
    client = redis.Redis.from_url(f"rediss://rache:{password}@127.0.0.1:1/0")
    if password not in repr(client):
        pytest.skip("this redis-py hides the password from a client's repr() regardless")
    assert_hidden(password, repr(Scheduler(client)), str(Scheduler(client)))


@pytest.mark.parametrize(
    "template",
    [
        "http://rache:{}@127.0.0.1:1/0",
        "rache:{}@127.0.0.1",  # no scheme
        "rache:{}://@127.0.0.1",  # no scheme, and "://" in the password
    ],
)
def test_a_bad_redis_url_shows_no_password(template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    password = secrets.token_hex(16)
    monkeypatch.setenv("REDIS_URL", template.format(password))
    monkeypatch.setattr(rache, "_default", None)
    with pytest.raises(rache.ConfigurationError, match="REDIS_URL is not a Redis URL") as info:
        rache.schedule_job("a", 0)
    assert_hidden(password, *shown(info.value))
    with pytest.raises(rache.ConfigurationError) as info:
        Scheduler()
    assert_hidden(password, *shown(info.value))
