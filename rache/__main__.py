"""``python -m rache``: the ``rache`` command."""

from rache.cli import main

main()
