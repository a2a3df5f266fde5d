"""The soak and fault runs of tests/tools/soak.py at a CI size (make soak runs them full size)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support import harness
from tests.tools import soak


@pytest.mark.slow
def test_pollers_and_writers_never_duplicate_nor_lose(
    server: harness.RedisServer, raw: Any
) -> None:
    report = soak.run(server.url, jobs=3000, pollers=8, writers=2, writes=1500, progress=print)
    assert report.claims >= 3000
    assert report.duplicates == 0
    assert report.lost == 0


@pytest.fixture
def durable(server: harness.RedisServer, tmp_path: Path) -> Iterator[harness.RedisServer]:
    """A server of the session's kind with an append-only file fsynced on every write."""
    if server.spec.kind != "binary":
        pytest.skip("the fault run restarts a redis-server binary it starts itself")
    srv = harness.start(
        server.spec, tmp_path, args=["--appendonly", "yes", "--appendfsync", "always"]
    )
    yield srv
    srv.stop()


@pytest.mark.slow
def test_faults_lose_nothing_and_hand_nothing_out_twice(durable: harness.RedisServer) -> None:
    report = soak.run(
        durable.url, jobs=3000, pollers=4, writers=0, writes=0, server=durable, faults=True,
        progress=print,
    )  # fmt: skip
    assert report.faults[0] == "SCRIPT FLUSH" and report.faults[-1] == "restart"
    assert any(fault != "CLIENT KILL x0" for fault in report.faults[1:-1])
    assert report.errors > 0  # the faults were felt
    assert report.duplicates == 0
    assert report.lost == 0
    assert report.claims >= 3000
