"""One converter for every argument in seconds: a number or a ``timedelta``.

A value of the wrong type is a ``TypeError``, out of bounds a ``ValueError``; each names the
argument. Pure: no I/O.
"""

from __future__ import annotations

import math
import numbers
from datetime import timedelta
from typing import Union

from .constants import MAX_RULE_MS


def seconds(value: object, name: str) -> Union[int, float]:
    """A duration argument (seconds as an int or float, or a timedelta) as a number.

    Whole seconds come back as an int; the bounds are the caller's. ``TypeError`` names
    ``name`` for any other type.
    """
    if isinstance(value, timedelta):
        whole = value.days * 86400 + value.seconds
        return whole if value.microseconds == 0 else whole + value.microseconds / 1e6
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number of seconds or a datetime.timedelta, "
            f"not {type(value).__name__}"
        )
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def finite(number: Union[int, float]) -> bool:
    """Whether a number of seconds is finite (an int always is, however large)."""
    return isinstance(number, int) or math.isfinite(number)


def millis(value: object, name: str, *, allow_zero: bool) -> int:
    """A rule's duration (``every``, ``grace``, ``jitter``) in whole ms, up to ~31 years."""
    number = seconds(value, name)
    ms = round(number * 1000) if finite(number) else -1
    if not (0 if allow_zero else 1) <= ms <= MAX_RULE_MS:
        what = "0 or more" if allow_zero else "more than 0"
        raise ValueError(
            f"{name} must be {what} seconds, up to {MAX_RULE_MS // 1000:,} (kept to the "
            f"millisecond), not {shown(value)}"
        )
    return ms


def shown(value: object) -> str:
    """``repr(value)`` for an error message; an int too long for Python to write, by its size.

    Python refuses to write an int past ``sys.get_int_max_str_digits()`` digits (its own
    ``ValueError``, naming nothing), so a message that shows such a value says how long it is.
    """
    try:
        return repr(value)
    except ValueError:
        if isinstance(value, int):
            sign = "a negative" if value < 0 else "an"
            return f"{sign} int of about {digits(value)} digits"
        raise


def digits(value: int) -> int:
    """About how many decimal digits ``value`` has, without writing it out (Python may not)."""
    return int(abs(value).bit_length() * math.log10(2)) + 1


def ms_to_seconds(ms: int) -> Union[int, float]:
    """Milliseconds as seconds: an int when whole, else a float."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000
