"""Times and ids as people read and write them: once for the ``rache`` command and the dashboard.

Pure functions of plain values (no Redis, no clock of their own: ``now`` is passed in, the
server's). Due times are Unix seconds and are shown in UTC, as Redis keeps them.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, Optional

#: Seconds in each unit a person writes: ``90s``, ``10m``, ``1h``, ``2d``.
UNITS: Dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``1.5``, ``-30s``, ``10m`` or ``1h30m``; ValueError otherwise."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text)
    if _NUMBER.fullmatch(body):
        return sign * float(body)
    parts = _DURATION.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise ValueError(f"not a duration: {text!r} (try 90, 1.5, 10m or 1h30m)")
    return sign * sum(float(number) * UNITS[unit] for number, unit in parts)


def timestamp(seconds: float, milliseconds: bool = False) -> str:
    """A moment as UTC text, ``2026-12-07 17:30:00 UTC``.

    With ``milliseconds``, a moment that has a fraction of a second shows it
    (``17:30:00.250 UTC``); the command's columns leave it out, the dashboard's pages show it.
    """
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if milliseconds and not float(seconds).is_integer():
        text += f".{moment.microsecond // 1000:03d}"
    return text + " UTC"


def at(due: Optional[float]) -> str:
    """A job's due time as UTC text with its milliseconds, or ``not scheduled`` (None)."""
    if due is None:
        return "not scheduled"
    return timestamp(due, milliseconds=True)


def span(seconds: float) -> str:
    """A length of time, its two largest units: ``2m 10s``, ``3d 4h``, ``0.25s``.

    Its sign is dropped. Under 10 s a fraction shows (to the hundredth); from an hour on,
    rounded to the smaller unit shown (2h 59m 59.6s is ``3h``, not ``2h 59m``).
    """
    seconds = abs(seconds)
    if seconds < 10 and not float(seconds).is_integer():
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    whole = round(seconds)
    if whole >= 3600:
        unit = 3600 if whole >= 86400 else 60
        whole = round(seconds / unit) * unit
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours)
    parts += [f"{minutes}m"] * bool(minutes) + [f"{secs}s"] * bool(secs)
    return " ".join(parts[:2]) or "0s"


def relative(due: Optional[float], now: float) -> str:
    """A due time from ``now``: ``in 5m 3s``, ``12s overdue``, ``now`` (within half a second).

    ``''`` for None (nothing scheduled).
    """
    if due is None:
        return ""
    delta = due - now
    if abs(delta) < 0.5:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} overdue"


def ago(moment: Optional[float], now: float) -> str:
    """A past moment from ``now``: ``12s ago``, ``now``; ``never`` for None.

    For what happened (a claim, a run's end), where :func:`relative` speaks of due times.
    A moment ahead of ``now`` (another host's clock) reads ``in 2s``.
    """
    if moment is None:
        return "never"
    shown = relative(moment, now)
    return shown.replace(" overdue", " ago") if shown.endswith(" overdue") else shown


def run_state(state: str, attempts: int) -> str:
    """A run's state and its failed attempts, in words: ``running (2 failed attempts)``.

    The attempts are those recorded with ``finish_run(..., retrying=True)``: ``failed``,
    ``succeeded (after 1 failed attempt)``.
    """
    if not attempts or state == "skipped":
        return state
    counted = f"{attempts} failed attempt{'' if attempts == 1 else 's'}"
    if state in ("running", "unknown"):
        return f"{state} ({counted})"
    return f"{state} (after {counted})"


def text(value: Any) -> str:
    """``value`` as text for a message or a name: bytes as UTF-8 (what is not, replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def printable(value: Any) -> str:
    r"""An id or a name for a terminal: control characters escaped (``\x1b``, ``\n``).

    So that an id cannot colour the terminal or split a line. Bytes that are not UTF-8 are
    decoded with their escapes (``\xff``).
    """
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def literal(value: Any) -> str:
    r"""An id or a value for a page: text as it is, bytes as Python writes them (``b'\xff'``).

    So that a page tells bytes from text; the page's template escapes what it shows.
    """
    return repr(value) if isinstance(value, bytes) else str(value)
