"""rq-scheduler's API over rache (see :mod:`rache.rq.scheduler`), imported as before."""

from .scheduler import (
    DEFAULT_LEASE,
    DEFAULT_PREFIX,
    QUEUE_FIELD,
    RQ_SCHEDULER_KEY,
    Runner,
    Scheduler,
    Until,
    local_timezone,
    main,
)

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_PREFIX",
    "QUEUE_FIELD",
    "RQ_SCHEDULER_KEY",
    "Runner",
    "Scheduler",
    "Until",
    "local_timezone",
    "main",
]
