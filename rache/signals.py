"""SIGTERM and SIGINT for a dispatcher's run(): installed for the run, restored after it."""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable, List, Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_signals(on_signal: Callable[[int, Any], None]) -> Optional[List[Any]]:
    """SIGTERM and SIGINT call ``on_signal`` (main thread only); the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = [signal.getsignal(sig) for sig in SIGNALS]
    for sig in SIGNALS:
        signal.signal(sig, on_signal)
    return previous


def restore_signals(previous: Optional[List[Any]]) -> None:
    if previous is None:
        return
    for sig, handler in zip(SIGNALS, previous):
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
