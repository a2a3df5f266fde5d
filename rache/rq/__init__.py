"""rq-scheduler's API over rache: the same calls, and any number of runners at once.

:class:`Scheduler` takes rq-scheduler's arguments and returns what it returns: the rq job is
created and saved in rq's Redis when it is scheduled (so ``job.id`` is known and
``get_jobs`` gives rq jobs), and a rache job of the same id, whose data holds the queue
name (``rq_queue``), stands for it in the schedule under the prefix ``rache:rq:``.
Interval and cron jobs are rache recurring jobs (``rache.Every``, ``rache.Cron``); ``repeat``
counts down in the rq job's ``meta``, as rq-scheduler keeps it.

:class:`Runner` is the other half, rq-scheduler's ``rqscheduler`` process: a handler for
:class:`rache.Dispatcher` that moves each due job into its rq queue (``Queue.enqueue_job``
of the saved job, ``at_front`` honoured). Any number of runners may run at once, with no
lock: rache hands each due job to one of them, and the move itself is a transaction that
checks the rq job first (a one-off job still ``scheduled``; a periodic one not yet moved for
this occurrence), so a job handed out again (a runner killed mid-batch, its lease over) is
moved once. ``Scheduler.run()``, ``python -m rache.rq`` and ``rache dispatch --rq-scheduler``
run one.

Naive datetimes are UTC, as in rq-scheduler. Bad input raises ``TypeError`` or
``ValueError`` naming the argument before anything is written.

The package, by what each part is: ``scheduler`` (the ``Scheduler`` API), ``jobs`` (the rq
job built and saved as rq-scheduler does), ``runner`` (the ``Runner``), ``conventions``
(rq-scheduler's names, and its arguments as rache's values) and ``command`` (``python -m
rache.rq``). Needs rq (``pip install '.[rq]'``), checked once here.
"""

from __future__ import annotations

from ..errors import MissingExtra

try:
    import rq  # noqa: F401
except ImportError:  # pragma: no cover - the rq extra is missing
    raise MissingExtra("rache.rq", "rq", "rq") from None

from .command import main
from .conventions import (
    DEFAULT_LEASE,
    DEFAULT_PREFIX,
    QUEUE_FIELD,
    RQ_SCHEDULER_KEY,
    Until,
    local_timezone,
)
from .runner import Runner
from .scheduler import Scheduler

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
