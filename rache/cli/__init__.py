"""The ``rache`` command (see ``group``)."""

from .group import main, parse_duration, relative

__all__ = ["main", "parse_duration", "relative"]
