"""``python -m rache`` and the ``rache`` console script: the command, or what to install."""

from __future__ import annotations

import sys

from rache.errors import MissingExtra


def main() -> None:
    """Run the ``rache`` command; without click, say which extra to install, not a traceback."""
    try:
        from rache.cli import main as command
    except MissingExtra as missing:
        sys.exit(f"rache: {missing}")
    command()


if __name__ == "__main__":
    main()
