"""What the pinned dependencies do that rache's examples and tests rely on.

requirements/holds.txt holds some packages back, each for a reason shown here: the newest row
of ``make test-matrix`` runs this file on the newest releases, so a fix upstream shows there.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import redis


def test_a_pubsub_thread_stops_at_once_once_unsubscribed(solo_raw: Any) -> None:
    """The rq 3.0 worker ends a burst so: unsubscribe, stop(), join(timeout=1), close().

    On redis-py 8.2.0 stop() joins the reading thread without a timeout, and that thread,
    having read its unsubscribe reply, waits out get_message's whole timeout (rq: 60 s) for a
    new subscription: a burst worker then hangs up to a minute at exit (the rq example timed
    out under a loaded machine's tests). The hold: ``redis<8.2``.
    """
    pubsub = solo_raw.pubsub()
    pubsub.subscribe(**{"rache-upstream": lambda message: None})
    worker = pubsub.run_in_thread(sleep_time=5, daemon=True)
    pubsub.unsubscribe()
    read = time.monotonic() + 5
    while pubsub.subscribed and time.monotonic() < read:  # the thread read the reply
        time.sleep(0.01)
    assert not pubsub.subscribed
    time.sleep(0.2)  # it is back in get_message, waiting for a subscription
    stopper = threading.Thread(target=worker.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=3)
    waiting = stopper.is_alive()
    worker.join(timeout=6)  # (to end it either way)
    pubsub.close()
    assert not waiting, f"redis {redis.__version__}: stop() still waiting after 3 s"


def test_the_how_tos_where_rq_workers_run_tell_of_the_hold() -> None:
    """While rache holds redis-py back, its users running rq workers are told why and what to do."""
    root = Path(__file__).resolve().parent.parent
    if "redis<8.2" not in (root / "requirements" / "holds.txt").read_text():
        return  # the hold lifted: its note goes with it
    for page in ("rq-scheduler.rst", "dispatcher.rst"):
        text = " ".join((root / "docs" / "howto" / page).read_text().split())
        assert "redis-py 8.2.0" in text and "pip install 'redis<8.2'" in text, page
