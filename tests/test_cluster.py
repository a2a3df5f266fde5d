"""rache on a real Redis Cluster (3 masters started from the session's redis-server binary)."""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import redis
import redis.asyncio.cluster

from rache import ConfigurationError, Every, Scheduler, reshard
from rache.aio import AsyncScheduler
from rache.keys import has_hash_tag, shard_of
from tests.support import harness as testing
from tests.support.helpers import snapshot
from tests.support.shells import Blocking, LoopThread
from tests.test_moves import PLAIN, claimed, copy_keys, fill, runs
from tests.test_security import exercise
from tests.test_shards import exercise_sharded


@pytest.mark.parametrize(
    ("prefix", "tagged"),
    [("{rache}:", True), ("app:{q1}:", True), ("rache:", False), ("{}rache:", False),
     ("{rache:", False), ("rache}:{", False), ("}{x}:", True)],
)  # fmt: skip
def test_hash_tags_follow_redis_rules(prefix: str, tagged: bool) -> None:
    assert has_hash_tag(prefix) is tagged


@pytest.fixture
def cluster(cluster_nodes: testing.RedisClusterServers) -> testing.RedisClusterServers:
    """The session's 3-master cluster of the server's binary (conftest.py)."""
    return cluster_nodes


@pytest.fixture
def client(cluster: testing.RedisClusterServers) -> Iterator[Any]:
    """A RedisCluster client of an empty cluster."""
    rc = cluster.client()
    rc.flushall()
    yield rc
    rc.close()


def test_an_untagged_prefix_is_refused_up_front(client: Any, cluster: Any) -> None:
    before = snapshot(client)
    for prefix in (None, "rache:"):
        with pytest.raises(ConfigurationError, match=r"no hash tag.*such as '\{rache\}:'"):
            Scheduler(client, prefix)
    cls: Any = redis.asyncio.cluster.RedisCluster
    aclient = cls(host=cluster.nodes[0].host, port=cluster.nodes[0].port)
    with pytest.raises(ConfigurationError, match="no hash tag"):
        AsyncScheduler(aclient, "jobs:")
    assert snapshot(client) == before


def test_the_whole_api_runs_on_a_cluster(client: Any) -> None:
    exercise(Scheduler(client, "{rache}:", batch_size=2), 2)
    slots = {client.keyslot(key) for key in client.keys("*")}
    assert len(slots) == 1  # the queue and every job hash in the prefix's slot


def test_a_sharded_schedule_runs_on_a_cluster_one_shard_a_node(client: Any) -> None:
    sched = Scheduler(client, "rache:", batch_size=2, shards=3)
    exercise_sharded(sched)
    owners = {client.get_node_from_key(keys.queue).name for keys in sched.shards}
    assert len(owners) == 3  # the shards' tags fall in the three masters' slot ranges
    for keys in sched.shards:  # and each shard's keys in its own slot
        mine = client.keys(keys.prefix.replace("{", "[{]") + "*")
        assert len({client.keyslot(key) for key in mine}) <= 1


def test_the_layout_probe_and_the_clock_on_a_cluster(client: Any) -> None:
    sharded, tagged = Scheduler(client, "rache:", shards=3), Scheduler(client, "{plain}:")
    assert sharded.recorded_shards() is None and tagged.recorded_shards() is None
    assert snapshot(client) == {}  # read-only, each call on its own key's node
    tagged.schedule_job("a", 10)
    sharded.schedule_recurring("r", Every(60))  # the first call records 3
    assert (sharded.recorded_shards(), tagged.recorded_shards()) == (3, 1)
    assert list(sharded.recurring_jobs()) == ["r"] and list(tagged.recurring_jobs()) == []
    node = client.get_node_from_key(sharded.shards[0].queue)
    seconds, micros = client.time(target_nodes=node)
    assert abs(sharded.server_time() - (seconds + micros / 1e6)) < 1


def test_the_asyncio_shell_runs_on_a_cluster(
    cluster: testing.RedisClusterServers, client: Any, loop_thread: LoopThread
) -> None:
    node = cluster.nodes[0]
    cls: Any = redis.asyncio.cluster.RedisCluster
    aclient = cls(host=node.host, port=node.port)
    exercise(Blocking(AsyncScheduler(aclient, "{rache}:", batch_size=2), loop_thread), 2)
    loop_thread.run(aclient.aclose())


def test_schedules_with_different_tags_spread_over_the_nodes(client: Any) -> None:
    owners = set()
    for n in range(12):
        sched = Scheduler(client, f"{{s{n}}}:")
        sched.schedule_job("a", 10)
        owners.add(client.get_node_from_key(sched.keys.queue).name)
    assert len(owners) == 3


def test_scripts_reload_after_a_flush_on_every_node(client: Any) -> None:
    sched = Scheduler(client, "{rache}:")
    sched.schedule_job("a", -1, n=1)
    client.script_flush()
    assert not any(client.script_exists(codec_sha()))
    assert list(sched.pending_jobs()) == [{"id": "a", "n": 1}]


def codec_sha() -> str:
    from rache import scripts

    return scripts.CLAIM.sha


@pytest.mark.slow
def test_four_threads_claim_each_job_once_on_a_cluster(client: Any) -> None:
    sched = Scheduler(client, "{rache}:", batch_size=50)
    ids = [f"job-{i:05}" for i in range(3000)]
    sched.schedule_jobs((job_id, -1) for job_id in ids)
    claimed: List[str] = []
    lock = threading.Lock()

    def poll() -> None:
        while batch := [job["id"] for job in sched.pending_jobs(limit=25)]:
            with lock:
                claimed.extend(batch)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = collections.Counter(claimed)
    assert [job_id for job_id, n in counts.items() if n > 1] == []
    assert sorted(counts) == ids


def test_a_cluster_needs_a_binary(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a redis-server binary"):
        testing.start_cluster(testing.ServerSpec("url", "redis://x"), tmp_path)


def test_the_rache_command_on_a_cluster(cluster: testing.RedisClusterServers, client: Any) -> None:
    from click.testing import CliRunner

    from rache.cli import main

    node = cluster.nodes[0]
    url = f"redis://{node.host}:{node.port}/0"

    def rache(*args: str) -> Any:
        return CliRunner().invoke(main, ["--url", url, *args])

    assert rache("--cluster", "--prefix", "{rache}:", "add", "a", "--in", "-5").exit_code == 0
    assert rache("--cluster", "--prefix", "{rache}:", "list").output.split()[-1] == "a"
    assert "due now     1" in rache("--cluster", "--prefix", "{rache}:", "stats").output
    doctor = rache("--cluster", "--prefix", "{rache}:", "doctor").output
    assert "ok   prefix '{rache}:' on a cluster" in doctor and "ok   rache's scripts run" in doctor
    untagged = rache("--prefix", "rache:", "doctor")  # a cluster node, even without --cluster
    assert untagged.exit_code == 1 and "FAIL prefix 'rache:' on a cluster" in untagged.output
    refused = rache("--cluster", "--prefix", "rache:", "list")
    assert refused.exit_code == 2 and "no hash tag" in refused.output


@pytest.mark.slow
def test_four_processes_claim_each_job_once_from_a_sharded_schedule(
    cluster: testing.RedisClusterServers, client: Any
) -> None:
    sched = Scheduler(client, "rache:", shards=3)
    ids = [f"job-{i:05}" for i in range(5000)]
    sched.schedule_jobs((job_id, -1) for job_id in ids)
    per_shard = collections.Counter(shard_of(job_id.encode(), 3) for job_id in ids)
    assert sorted(per_shard) == [0, 1, 2] and min(per_shard.values()) > 1500
    node = cluster.nodes[0]
    per_poller = testing.run_pollers(
        f"redis://{node.host}:{node.port}/0", 4, cluster=True, shards=3, limit=50
    )
    counts = collections.Counter(job_id for polled in per_poller for job_id in polled.ids)
    assert [job_id for job_id, n in counts.items() if n > 1] == []
    assert sorted(counts) == ids
    assert all(polled.ids for polled in per_poller)  # all four took part
    assert sched.stats().total == 0


def test_a_reshard_on_a_cluster_hands_out_the_same_occurrences(client: Any) -> None:
    """3 shards to 2 across the masters: each job keeps its run and rule (tests/test_moves.py).

    The reference keeps the shards' hash tags (``ref:{0-0}:``...), so it lives in their slots.
    """
    fill(Scheduler(client, "rache:", shards=3))
    copy_keys(client, "rache:", "ref:")
    assert reshard(client, "rache:", shards=2, batch_size=7) > 0
    assert runs(client, "rache:", 2) == PLAIN + 1
    expected = claimed(Scheduler(client, "ref:", shards=3))
    assert len(expected) == PLAIN + 2
    assert claimed(Scheduler(client, "rache:", shards=2)) == expected
