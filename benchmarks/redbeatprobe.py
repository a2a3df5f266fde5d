"""RedBeat's scheduler stamping each message's due time, for ``make bench-beat``.

A module of its own: importing redbeat connects a ``beat_init`` handler that every other
scheduler in the process would then meet.
"""

from __future__ import annotations

from typing import Any

from redbeat import RedBeatScheduler

from benchmarks.beatapp import stamped


class RedBeatProbe(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat's scheduler, stamping ``x-due`` (see benchmarks/beatapp.py)."""

    def apply_async(self, entry: Any, *args: Any, **kwargs: Any) -> Any:
        """RedBeat's, with the stamp."""
        return super().apply_async(stamped(entry), *args, **kwargs)
