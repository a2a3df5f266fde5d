"""The exceptions rache raises beyond the built-in ``TypeError`` and ``ValueError``.

A wrong type is a ``TypeError`` and a wrong value a ``ValueError``, each naming the argument;
rache's own errors are::

    RacheError
    ├── ConfigurationError (ValueError)   REDIS_URL, the prefix or the layout cannot be used
    │   ├── LayoutMismatch   a scheduler of one shard count over a schedule of another
    │   └── UntaggedPrefix   on Redis Cluster, an unsharded schedule's prefix without a hash tag
    ├── ReservedFieldError (ValueError, RuntimeError)   job data named ``id``, ``schedule_at``...
    ├── JobNotFound (KeyError)   job_details() of a job with neither schedule nor data
    └── MissingExtra (ImportError)   a feature whose extra is not installed
"""

from __future__ import annotations

from typing import Tuple, Type

import redis

#: The errors that mean "Redis cannot be reached for now" (a connection refused or lost, a
#: timeout), not "Redis refused": a loop that polls (a dispatcher, Celery beat) backs off
#: and tries again on these, and lets any other error through.
CONNECTION_ERRORS: Tuple[Type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
)

#: What a Dispatcher catches to ride out with backoff (``transient``): CONNECTION_ERRORS,
#: and an error reply that is Redis refusing a write that may add memory (maxmemory reached
#: under noeviction), which passes as memory frees.
TRANSIENT_ERRORS: Tuple[Type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    redis.exceptions.ResponseError,
)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis refusing a write for memory (maxmemory, noeviction).

    redis-py's OutOfMemoryError, or, from a script on Redis 6.2, an error reply that wraps
    the refusal ("Error running script ... -OOM command not allowed ...").
    """
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return True
    return isinstance(
        exc, redis.exceptions.ResponseError
    ) and "command not allowed when used memory" in str(exc)


def transient(exc: BaseException) -> bool:
    """Whether a Dispatcher backs off and goes on after ``exc`` (one of TRANSIENT_ERRORS)."""
    return isinstance(exc, CONNECTION_ERRORS) or out_of_memory(exc)


class RacheError(Exception):
    """Base class of rache's own errors."""


class ReservedFieldError(RacheError, ValueError, RuntimeError):
    """Job data used a name that rache reports itself (the message names it).

    ``id`` (rache 0.3.1's only one), ``schedule_at``, ``recurring`` or ``next_occurrences``:
    ``job_details`` would hide the data behind its own value. A ``RuntimeError`` as in rache
    0.3.1, and a ``ValueError`` since it is bad input.
    """


class JobNotFound(RacheError, KeyError):
    """The job is neither scheduled nor has any data."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job with id {self.job_id!r}"


class ConfigurationError(RacheError, ValueError):
    """``REDIS_URL``, ``RACHE_REDIS_PREFIX`` or a schedule's layout cannot be used."""


class LayoutMismatch(ConfigurationError):
    """A scheduler of one shard count over a schedule laid out in another.

    ``prefix``, ``recorded`` (the schedule's count) and ``shards`` (the scheduler's) let a
    caller say it in its own words (the CLI says ``--shards N``).
    """

    def __init__(self, prefix: str, recorded: int, shards: int) -> None:
        self.prefix, self.recorded, self.shards = prefix, recorded, shards
        super().__init__(
            f"the schedule under prefix {prefix!r} is laid out in {recorded} shard(s), not "
            f"{shards}: pass shards={recorded}, or move it with rache.reshard() (or "
            "`rache reshard`)"
        )


class UntaggedPrefix(ConfigurationError):
    """On Redis Cluster, an unsharded schedule under a prefix without a hash tag.

    Every key a script touches must hash to one slot, which a prefix without ``{...}`` does
    not give. ``prefix`` and ``suggested`` (the same prefix with a hash tag, ``{rache}:``
    for ``rache:``) let a caller say it in its own words (the CLI says ``--prefix``).
    """

    def __init__(self, prefix: str, suggested: str) -> None:
        self.prefix, self.suggested = prefix, suggested
        super().__init__(
            f"prefix {prefix!r} has no hash tag, and on Redis Cluster every key of a "
            f"schedule must hash to one slot: use a prefix with one, such as {suggested!r}, "
            "or shards (which add their own)"
        )


class MissingExtra(RacheError, ImportError):
    """A feature needs a library that an extra of rache installs: the message names it.

    ``MissingExtra("a cron rule", "croniter", "cron")`` reads "a cron rule needs croniter:
    pip install '.[cron]' in rache's checkout". From a checkout, not ``rache[cron]``: the
    package index has only rache 0.3.1, which has no extras, until 1.0 is released.
    """

    def __init__(self, feature: str, library: str, extra: str) -> None:
        super().__init__(f"{feature} needs {library}: pip install '.[{extra}]' in rache's checkout")
        self.feature, self.library, self.extra = feature, library, extra
