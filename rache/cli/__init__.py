"""The ``rache`` command: see, change, check, copy, watch and dispatch a schedule.

Needs click (the ``cli`` extra: ``pip install '.[cli]'`` in rache's checkout). Reads
``REDIS_URL`` and ``RACHE_REDIS_PREFIX``, or ``--url`` and ``--prefix``. Exit status: 0
done, 1 something is wrong (``doctor`` found a problem, ``show`` or ``rm`` found no job,
Redis cannot be reached or refused), 2 bad usage or input. Text output escapes control
characters in ids (``--json`` is exact), and ``NO_COLOR`` turns colours off.

The package, by what each part is: ``group`` (the group, its context and errors), then
the commands: ``jobs`` (list, show, add, rm, runs), ``schedule`` (stats, watch, doctor),
``pollers``, ``dispatch``, ``failures``, ``maintenance`` (orphans, reshard, export,
import) and ``web``. Importing a command's module adds it to the group.
"""

from __future__ import annotations

from ..errors import MissingExtra

try:
    import click  # noqa: F401
except ImportError:  # pragma: no cover - depends on the installed extras
    raise MissingExtra("the rache command", "click", "cli") from None

from ..formatting import parse_duration, printable, relative, timestamp
from . import (  # noqa: F401 - each adds its commands
    dispatch,
    failures,
    jobs,
    maintenance,
    pollers,
    schedule,
    web,
)
from .group import Context, RacheGroup, explain, fail, main, wrong_shards
from .schedule import render_stats

__all__ = [
    "Context",
    "RacheGroup",
    "explain",
    "fail",
    "main",
    "parse_duration",
    "printable",
    "relative",
    "render_stats",
    "timestamp",
    "wrong_shards",
]
