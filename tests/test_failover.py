"""Redis Cluster under failure: a master dies (SIGKILL) while pollers run; its replica takes over.

What the README promises here: jobs of the other shards are handed out exactly once; on the
failed shard, only claims still in flight or not yet replicated when the master died can go
wrong (a job handed out twice, or claimed with the reply lost), since Redis replicates
asynchronously.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from rache import Scheduler
from tests.support import harness as testing

JOBS = 3000
POLLERS = 4
LIMIT = 50


@pytest.fixture
def replicated(
    server: testing.RedisServer, tmp_path: Path
) -> Iterator[testing.RedisClusterServers]:
    """3 masters with a replica each; a master unreachable for 1 s is replaced."""
    if server.spec.kind != "binary":
        pytest.skip(
            f"a cluster needs a redis-server binary, and the session has {server.spec.describe()}"
        )
    nodes = testing.start_cluster(
        server.spec, tmp_path, masters=3, replicas=1, node_timeout_ms=1000
    )
    yield nodes
    nodes.stop()


@pytest.mark.slow
def test_a_replica_takes_over_while_pollers_run(replicated: testing.RedisClusterServers) -> None:
    client: Any = replicated.client()
    sched = Scheduler(client, "rache:", shards=3)
    ids = [f"job-{i:05}" for i in range(JOBS)]
    sched.schedule_jobs((job_id, round(4 * i / JOBS, 3)) for i, job_id in enumerate(ids))
    masters = {keys.prefix: client.get_node_from_key(keys.queue) for keys in sched.shards}
    for node in masters.values():  # every schedule write is on the replica before the crash
        assert client.get_redis_connection(node).wait(1, 5000) == 1
    failed = sched.shards[0]
    victim = next(n for n in replicated.nodes if n.port == masters[failed.prefix].port)
    survivor = next(n for n in replicated.nodes if n.port == masters[sched.shards[1].prefix].port)
    client.close()

    started = time.monotonic()

    def crash_after_a_second() -> None:
        if victim.handle is not None and time.monotonic() - started > 1.0:
            victim.crash()

    per_poller = testing.run_pollers(
        survivor.url, POLLERS, poll=testing.poll_for, on_wait=crash_after_a_second,
        seconds=9, cluster=True, shards=3, limit=LIMIT,
    )  # fmt: skip
    assert victim.handle is None  # it was killed while they polled

    after: Any = redis.RedisCluster(host=survivor.host, port=survivor.port)
    promoted = after.get_node_from_key(failed.queue)
    assert promoted.port != victim.port  # its replica serves the shard now
    leftover = Scheduler(after, "rache:", shards=3)
    late = [job["id"] for job in leftover.pending_jobs()]  # due, but not claimed in time
    assert after.zcard(failed.queue) == 0  # the promoted replica hands its shard's jobs out
    after.close()

    counts = collections.Counter(job_id for polled in per_poller for job_id in polled.ids)
    counts.update(late)
    errors = sum(polled.errors for polled in per_poller)
    shard_of = {job_id: sched.layout.of(job_id.encode()) for job_id in ids}
    others = [job_id for job_id in ids if shard_of[job_id] is not failed]
    assert [job_id for job_id in others if counts[job_id] != 1] == []  # exactly once
    on_failed = [job_id for job_id in ids if shard_of[job_id] is failed]
    twice = [job_id for job_id in on_failed if counts[job_id] > 1]
    lost = [job_id for job_id in on_failed if counts[job_id] == 0]
    # Only what was in flight when the master died: at most a batch per poller.
    assert len(twice) + len(lost) <= POLLERS * LIMIT
    # Whether a poller sees an error is up to the client: redis-py 8.2 rides a failover out
    # inside its own retries, so the errors count is reported, not asserted.
    print(
        f"\nfailover: {len(others)} jobs on the surviving shards exactly once; "
        f"{len(on_failed)} on the failed one: {len(twice)} twice, {len(lost)} lost; "
        f"{errors} errors ridden out; {len(late)} claimed after the pollers stopped"
    )
