"""The behaviour suite on Redis Cluster: its prefixes made hash-tagged, and a raw view to match.

On a cluster, a schedule's prefix must carry a hash tag: the suite's ``rache:``, ``src:``...
become ``{rache}:``, ``{src}:``. Tests look behind rache's back with ``raw.zscore('rache:queue',
...)``; ``ClusterView`` is the real cluster client with those key names tagged the same way.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import redis

#: The prefixes the behaviour suite uses, tagged on a cluster.
_SUITE_PREFIX = re.compile(r"^(rache|src|dst|bulk|single):")
_SUITE_PREFIX_BYTES = re.compile(rb"^(rache|src|dst|bulk|single):")


def tag(value: Any) -> Any:
    """``rache:queue`` -> ``{rache}:queue`` (str or bytes); anything else as it is."""
    if isinstance(value, str):
        return _SUITE_PREFIX.sub(r"{\1}:", value)
    if isinstance(value, bytes):
        return _SUITE_PREFIX_BYTES.sub(rb"{\1}:", value)
    return value


def tag_prefix(prefix: Optional[str]) -> str:
    """The prefix a behaviour test asked for, as the cluster run uses it."""
    return str(tag("rache:" if prefix is None else prefix))


class ClusterView:
    """A ``RedisCluster`` client whose key arguments are tagged as the suite's prefixes are.

    Only positional and keyword arguments that are key names change; mappings (members and
    scores, fields and values) pass as they are.
    """

    def __init__(self, client: redis.RedisCluster) -> None:
        self.cluster = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.cluster, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*map(tag, args), **{k: tag(v) for k, v in kwargs.items()})

        return call

    def _node(self) -> redis.Redis:
        """A plain client of the master that holds the ``{rache}`` slot."""
        node = self.cluster.get_node_from_key("{rache}:queue")  # type: ignore[no-untyped-call]
        return redis.Redis(host=node.host, port=node.port)

    def time(self) -> Any:
        """TIME of the node the default schedule lives on (each node has its own clock)."""
        return self._node().time()

    def client(self) -> redis.Redis:
        """A connection of its own to the schedule's node (for MONITOR markers)."""
        return self._node()

    def monitor(self) -> Any:
        """MONITOR of the schedule's node: what rache sent there."""
        return self._node().monitor()  # type: ignore[no-untyped-call]
