"""Real ``celery beat`` processes and a real consumer of what reaches the broker.

For the beat tests, the example's test and the beat benchmark: :func:`start_beat` runs
``celery -A <app> beat -S <scheduler>`` as a subprocess logging to a file;
:class:`Collector` reads queues with kombu (a consumer of the broker, as a worker is) and
notes each message with the time it arrived.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
#: The RabbitMQ this machine runs (tests skip when it does not answer).
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: Celery's line for each entry a beat sends, and the time logged before it.
SENDING = re.compile(r"\[([\d-]+ [\d:,]+): INFO/\w+\] Scheduler: Sending due task (\S+) \((\S+)\)")


def amqp_answers(url: str = AMQP_URL) -> Optional[str]:
    """None if a RabbitMQ answers at ``url``, else why not (for a skip's reason)."""
    kombu = _kombu()
    try:
        with kombu.Connection(url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"no RabbitMQ answers at {url}: {exc!r}"
    return None


def _kombu() -> Any:
    """kombu, untyped here (its partial hints do not cover what we call)."""
    return importlib.import_module("kombu")


@dataclass
class Beat:
    """A running ``celery beat`` process and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        """The log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def sent(self) -> List[str]:
        """The entry names of every "Sending due task" line so far, in order."""
        return [match.group(2) for match in SENDING.finditer(self.text())]

    def last_sent_at(self) -> str:
        """The logged time of the last "Sending due task" line ('' if none)."""
        times = [match.group(1) for match in SENDING.finditer(self.text())]
        return times[-1] if times else ""

    def wait_for(self, text: str, timeout: float = 20) -> None:
        """Wait until the log holds ``text``; fail with the log if it does not in time."""
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"beat never logged {text!r}; its log:\n{self.text()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as a supervisor stops it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        self.process.kill()
        self.process.wait(10)


def start_beat(
    folder: Path,
    name: str,
    env: Mapping[str, str],
    *,
    app: str = "tests.support.beatapp",
    scheduler: Optional[str] = "rache.celery:BeatScheduler",
    args: Sequence[str] = (),
    cwd: Optional[Path] = None,
) -> Beat:
    """Start ``celery -A app beat -S scheduler -l info`` in ``folder`` (its log: NAME.log).

    ``scheduler=None``: no ``-S`` (the app's ``beat_scheduler`` setting, else Celery's).
    """
    command = ["beat", *(["-S", scheduler] if scheduler else [])]
    command += ["-s", str(folder / f"{name}-schedule"), *args]
    return start_celery(folder, name, env, app=app, command=command, cwd=cwd)


def start_celery(
    folder: Path,
    name: str,
    env: Mapping[str, str],
    *,
    app: str,
    command: Sequence[str],
    cwd: Optional[Path] = None,
) -> Beat:
    """Start ``celery -A app COMMAND... -l info`` (a beat, a worker) logging to NAME.log."""
    log = folder / f"{name}.log"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "celery", "-A", app, *command, "-l", "info"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd or folder, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    return Beat(process, log)


@dataclass
class Received:
    """One message as it reached the consumer."""

    at: float
    queue: str
    headers: Dict[str, Any]
    properties: Dict[str, Any]
    body: Any

    @property
    def id(self) -> str:
        """The Celery task id."""
        return str(self.headers["id"])

    @property
    def task(self) -> str:
        """The Celery task name."""
        return str(self.headers["task"])


@dataclass
class Collector:
    """A kombu consumer of ``queues`` in a thread: every message, acked, with its arrival."""

    broker: str
    queues: Sequence[str]
    messages: List[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Collector:
        self._thread.start()
        if not self._ready.wait(15):
            raise TimeoutError(f"the consumer did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop consuming (after what is in flight), then delete the queues."""
        self._stop.set()
        self._thread.join(15)
        if self._error is not None:
            raise RuntimeError("the consumer failed") from self._error

    def by_task(self, task: str) -> List[Received]:
        """The messages of one task, in the order they arrived."""
        return [message for message in self.messages if message.task == task]

    def wait_for(self, task: str, count: int, timeout: float = 20) -> None:
        """Wait until ``count`` messages of ``task`` arrived."""
        deadline = time.monotonic() + timeout
        while len(self.by_task(task)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.by_task(task))} of {count} {task} messages")
            time.sleep(0.02)

    def _run(self) -> None:
        kombu = _kombu()
        try:
            with kombu.Connection(self.broker) as connection:
                queues = [
                    kombu.Queue(q, kombu.Exchange(q, "direct"), routing_key=q) for q in self.queues
                ]
                with kombu.Consumer(connection, queues, callbacks=[self._on], accept=["json"]):
                    self._ready.set()
                    while not self._stop.is_set():
                        with contextlib.suppress(socket.timeout, TimeoutError):
                            connection.drain_events(timeout=0.1)
                for queue in queues:
                    queue(connection.default_channel).delete()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def _on(self, body: Any, message: Any) -> None:
        queue = str(message.delivery_info.get("routing_key", ""))
        self.messages.append(
            Received(time.time(), queue, dict(message.headers), dict(message.properties), body)
        )
        message.ack()
