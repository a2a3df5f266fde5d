"""``python -m rache.cli``: the ``rache`` command (``python -m rache`` is the same)."""

from __future__ import annotations

from . import main

if __name__ == "__main__":  # pragma: no cover
    main()
