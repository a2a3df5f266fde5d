"""``python -m rache.rq``: a runner process, taking ``rqscheduler``'s options."""

from __future__ import annotations

from . import main

if __name__ == "__main__":  # pragma: no cover - run as a process by the tests
    main()
