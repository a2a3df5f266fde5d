"""The checks of settings that every layer shares: seconds that must be positive, int ranges.

``rache.durations`` converts every argument in seconds; these add the bounds of a setting
(a dispatcher's sleeps and backoff, a batch size), so that ``rache.encode`` and the
dispatch loop check them alike without the loop building any script call. The error rule
is encode's: a value of the wrong type is a ``TypeError``, one of the right type but out of
bounds a ``ValueError``; each names the argument.
"""

from __future__ import annotations

from .durations import finite, seconds


def positive_seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """A setting in seconds (a dispatcher's sleeps and backoff): finite, up to 1e9."""
    number = seconds(value, name)
    low_ok = number >= 0 if allow_zero else number > 0
    if not finite(number) or not low_ok or not number <= 1e9:
        bound = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, not {value!r}")
    return float(number)


def count(value: object, name: str, low: int, high: int) -> int:
    """An int setting from ``low`` to ``high`` (a batch size, a shard count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, not {value}")
    return value
