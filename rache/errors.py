"""The exceptions rache raises beyond the built-in ``TypeError`` and ``ValueError``."""

from __future__ import annotations


class RacheError(Exception):
    """Base class of rache's own errors."""


class ReservedFieldError(RacheError, ValueError, RuntimeError):
    """Job data used a reserved name (``id``).

    A ``RuntimeError`` as in rache 0.3.1, and a ``ValueError`` since it is bad input.
    """


class JobNotFound(RacheError, KeyError):
    """The job is neither scheduled nor has any data."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job with id {self.job_id!r}"


class ConfigurationError(RacheError, ValueError):
    """``REDIS_URL`` or ``RACHE_REDIS_PREFIX`` cannot be used."""
