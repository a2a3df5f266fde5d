"""Lost replies on real servers: a TCP proxy that drops the reply of one chosen command.

A :class:`Proxy` sits in front of a redis-server and forwards both ways. Armed
(:meth:`Faults.arm`), it lets the next matching request (an EVALSHA of a given script) reach
Redis, waits for Redis's whole reply, runs a hook (the "between the run and the retry"
moment: another poller claims, another client schedules), then closes the client's
connection instead of forwarding the reply. redis-py sees a broken connection, reconnects
through the proxy and, under its Retry, sends the same command again: the script has run,
its reply is lost, and it runs a second time unless it knows the call.

The proxy parses RESP enough to find boundaries: each request (an array of bulk strings, or
an inline line) and each reply (RESP2 and RESP3 frames, in any number of TCP segments;
RESP3 pushes are forwarded and not counted as replies). So requests and replies pair up in
order, pipelined or not (redis-py's handshake sends several commands before it reads). A
connection in Pub/Sub mode is out of scope: its replies do not pair with requests.

Error replies (NOSCRIPT: the script did not run) are forwarded and keep the rule armed, so
a drop always means the script ran. ``Faults.drops`` counts the drops, so that a test can
assert its fault really happened. Several proxies (one per Redis Cluster node, behind
``address_remap``) share one :class:`Faults`.

:class:`Contender` is another process, which makes the contending moves on its own direct
connections (claims, schedules, drains), so that a fault test involves two processes, as
the real race does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from rache.scripts import Script

#: A request as the proxy sees it: its arguments, as bytes.
Command = List[bytes]
#: A hook, run after Redis answered the dropped request and before the connection closes.
Hook = Callable[[], Any]


class _Incomplete(Exception):
    """The buffer ends before the frame does: wait for more bytes."""


def _line(buf: bytearray, pos: int) -> Tuple[bytes, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    return bytes(buf[pos:end]), end + 2


def _frame_end(buf: bytearray, pos: int) -> int:
    """Where the RESP2/RESP3 frame starting at ``pos`` ends (nested frames included)."""
    if pos >= len(buf):
        raise _Incomplete
    kind = bytes(buf[pos : pos + 1])
    head, pos = _line(buf, pos + 1)
    if kind in (b"$", b"!", b"="):  # bulk string, bulk error, verbatim string
        size = int(head)
        if size < 0:
            return pos
        if pos + size + 2 > len(buf):
            raise _Incomplete
        return pos + size + 2
    if kind in (b"*", b"~", b">", b"%", b"|"):  # array, set, push, map, attribute
        count = int(head)
        if kind in (b"%", b"|"):
            count *= 2
        for _ in range(max(count, 0)):
            pos = _frame_end(buf, pos)
        return pos
    if kind in (b"+", b"-", b":", b",", b"#", b"_", b"("):
        return pos
    raise ValueError(f"not a RESP frame: {bytes(buf[pos - 1 : pos + 20])!r}")


def next_reply(buf: bytearray) -> Optional[Tuple[int, bool]]:
    """The length of the first whole reply in ``buf`` and whether it answers a request.

    A RESP3 attribute goes with the frame after it; a push answers no request. None when
    the buffer holds no whole frame yet.
    """
    try:
        pos = 0
        while buf[pos : pos + 1] == b"|":
            pos = _frame_end(buf, pos)
        return _frame_end(buf, pos), buf[pos : pos + 1] != b">"
    except _Incomplete:
        return None


def next_request(buf: bytearray) -> Optional[Tuple[Command, int]]:
    """The first whole request in ``buf`` (its arguments) and its length, or None."""
    try:
        if buf[:1] != b"*":  # an inline command: one line, arguments split on blanks
            line, end = _line(buf, 0)
            return line.split(), end
        head, pos = _line(buf, 1)
        args: Command = []
        for _ in range(int(head)):
            if buf[pos : pos + 1] != b"$":
                raise ValueError(f"not a bulk string in a request: {bytes(buf[pos : pos + 20])!r}")
            size_text, pos = _line(buf, pos + 1)
            size = int(size_text)
            if pos + size + 2 > len(buf):
                raise _Incomplete
            args.append(bytes(buf[pos : pos + size]))
            pos += size + 2
        return args, pos
    except _Incomplete:
        return None


def is_error(reply: bytes) -> bool:
    """Whether a reply frame is an error (simple or bulk)."""
    return reply[:1] in (b"-", b"!")


def evalsha_of(script: Script) -> Callable[[Command], bool]:
    """A matcher of the EVALSHA requests of ``script`` (rache.scripts.CLAIM, ...)."""
    sha = script.sha.encode()

    def matches(command: Command) -> bool:
        return len(command) > 1 and command[0].upper() == b"EVALSHA" and command[1] == sha

    return matches


@dataclass
class Faults:
    """What the proxies of one server (or cluster) drop, and what they dropped.

    One rule at a time: :meth:`arm` it, run the call under test, then check ``drops``.
    """

    #: replies dropped since the start
    drops: int = 0
    #: what each dropped request was
    dropped: List[Command] = field(default_factory=list)
    #: exceptions raised by hooks (a hook that fails is a test that fails)
    errors: List[BaseException] = field(default_factory=list)
    #: forward the reply after the hook instead of breaking the connection: what a client
    #: of a server that answers a retried call with its first run's reply ends up seeing.
    #: A check of the tests' expectations (``RACHE_FAULTS_DELIVER=1``), not a fault.
    deliver: bool = field(default_factory=lambda: os.environ.get("RACHE_FAULTS_DELIVER") == "1")
    _match: Optional[Callable[[Command], bool]] = None
    _hook: Optional[Hook] = None
    _skip: int = 0
    _left: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(
        self,
        match: Any,
        hook: Optional[Hook] = None,
        *,
        skip: int = 0,
        times: int = 1,
    ) -> None:
        """Drop the reply of the next request that ``match``es, after ``skip`` such replies.

        ``match`` is a :class:`rache.scripts.Script` (its EVALSHA) or a predicate over a
        request's arguments. ``hook`` runs once Redis has answered, before the connection
        closes. ``times`` drops in a row (the retries' replies too): more than the client's
        retries makes the call fail.
        """
        with self._lock:
            self._match = evalsha_of(match) if isinstance(match, Script) else match
            self._hook, self._skip, self._left = hook, skip, times

    def disarm(self) -> None:
        """Forward everything from now on."""
        with self._lock:
            self._match, self._left = None, 0

    def matches(self, command: Command) -> bool:
        """Whether ``command`` is one whose reply the armed rule may drop."""
        with self._lock:
            return self._left > 0 and self._match is not None and self._match(command)

    def take(self, command: Command, reply: bytes) -> Tuple[bool, Optional[Hook]]:
        """Whether to drop this reply of a matching ``command``, and the hook to run first."""
        with self._lock:
            if self._left <= 0 or is_error(reply):
                return False, None
            if self._skip > 0:
                self._skip -= 1
                return False, None
            self._left -= 1
            self.drops += 1
            self.dropped.append(command)
            hook = self._hook
            if self._left == 0:
                self._match = self._hook = None
            return True, hook

    def check(self, drops: int = 1) -> None:
        """Raise unless exactly ``drops`` replies were dropped and every hook succeeded."""
        if self.errors:
            raise AssertionError(f"a fault hook failed: {self.errors[0]!r}") from self.errors[0]
        assert self.drops == drops, (
            f"{self.drops} replies dropped, not {drops}: the fault never fired"
        )


#: A Redis Cluster redirection: ``-MOVED <slot> <host>:<port>`` (or ``-ASK``).
_REDIRECT = re.compile(rb"^-(MOVED|ASK) (\d+) ([^\s:]*):(\d+)\r\n$")
Remap = Callable[[Tuple[str, int]], Tuple[str, int]]


def redirected(reply: bytes, remap: Remap) -> bytes:
    """A MOVED or ASK reply naming the proxy of the node it names (any other reply as is).

    redis.asyncio's cluster client follows a redirection to the address as given, without
    its ``address_remap``: the proxy rewrites it, as a NAT in front of a cluster must.
    """
    match = _REDIRECT.match(reply)
    if match is None:
        return reply
    kind, slot, host, port = match.groups()
    new_host, new_port = remap((host.decode(), int(port)))
    return b"-%s %s %s:%d\r\n" % (kind, slot, new_host.encode(), new_port)


class _Pair:
    """One client connection and its own connection to Redis, forwarded both ways."""

    def __init__(
        self,
        client: socket.socket,
        server: socket.socket,
        faults: Faults,
        remap: Optional[Remap] = None,
    ) -> None:
        self.client, self.server, self.faults, self.remap = client, server, faults, remap
        #: each request forwarded and not answered yet: itself if the rule matched it
        self.waiting: Deque[Optional[Command]] = deque()
        self.lock = threading.Lock()
        self.closed = False
        for target in (self._requests, self._replies):
            threading.Thread(target=target, daemon=True).start()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _requests(self) -> None:
        buf = bytearray()
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                buf += data
                while (found := next_request(buf)) is not None:
                    command, end = found
                    with self.lock:  # queued before Redis can answer it
                        self.waiting.append(command if self.faults.matches(command) else None)
                    self.server.sendall(bytes(buf[:end]))
                    del buf[:end]
        except (OSError, ValueError):
            pass
        self.close()

    def _replies(self) -> None:
        buf = bytearray()
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                buf += data
                while (found := next_reply(buf)) is not None:
                    end, answers = found
                    reply = bytes(buf[:end])
                    del buf[:end]
                    command = None
                    if answers:
                        with self.lock:
                            command = self.waiting.popleft() if self.waiting else None
                    if command is not None:
                        drop, hook = self.faults.take(command, reply)
                        if drop and self.faults.deliver:
                            self._run(hook)
                        elif drop:
                            self._run(hook)
                            self.close()
                            return
                    if self.remap is not None:
                        reply = redirected(reply, self.remap)
                    self.client.sendall(reply)
        except (OSError, ValueError):
            pass
        self.close()

    def _run(self, hook: Optional[Hook]) -> None:
        """The script ran and its reply is in: the contending move, before the link breaks."""
        if hook is not None:
            try:
                hook()
            except BaseException as exc:  # reported by Faults.check
                self.faults.errors.append(exc)


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of one Redis server, dropping what ``faults`` says."""

    def __init__(
        self, host: str, port: int, faults: Optional[Faults] = None, remap: Optional[Remap] = None
    ) -> None:
        self.target = (host, port)
        self.faults = faults if faults is not None else Faults()
        #: rewrites the node addresses of MOVED and ASK replies (a cluster's proxies)
        self.remap = remap
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self.listener.getsockname()[:2]
        self.pairs: List[_Pair] = []
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """A redis:// URL of the proxy."""
        return f"redis://{self.host}:{self.port}/0"

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pairs.append(_Pair(client, server, self.faults, self.remap))

    def close(self) -> None:
        """Stop listening and break every connection."""
        self._closing = True
        with contextlib.suppress(OSError):  # wakes the accept() under way (Linux)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for pair in self.pairs:
            pair.close()


class ClusterProxies:
    """A proxy per Redis Cluster node, sharing one :class:`Faults`.

    ``remap`` is redis-py's ``RedisCluster(address_remap=...)``: the node addresses that
    CLUSTER SLOTS gives become their proxies', so every connection goes through one.
    """

    def __init__(self, nodes: Sequence[Tuple[str, int]]) -> None:
        self.faults = Faults()
        self.proxies = [Proxy(host, port, self.faults, self.remap) for host, port in nodes]
        self._map: Dict[Tuple[str, int], Tuple[str, int]] = {
            (host, port): (proxy.host, proxy.port)
            for (host, port), proxy in zip(nodes, self.proxies)
        }

    def remap(self, address: Tuple[str, int]) -> Tuple[str, int]:
        """A node's address -> its proxy's (any other address as it is)."""
        host, port = address
        return self._map.get((host, int(port)), address)

    def close(self) -> None:
        """Close every proxy."""
        for proxy in self.proxies:
            proxy.close()


# -- the contender: another process, on direct connections ------------------------------------


@dataclass(frozen=True)
class Target:
    """A schedule as the contender reaches it: a server (or cluster node) URL and its layout."""

    url: str
    prefix: str = "rache:"
    shards: int = 1
    cluster: bool = False


_clients: Dict[Tuple[str, bool], Any] = {}


def _scheduler(target: Target) -> Any:
    import redis

    from rache.scheduler import Scheduler

    key = (target.url, target.cluster)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = (
            redis.RedisCluster.from_url(target.url)
            if target.cluster
            else redis.Redis.from_url(target.url)
        )
    return Scheduler(client, target.prefix, shards=target.shards)


def handed_name(job: Any) -> str:
    """``id:due``, a job as handed out: one run handed out twice shows as the same name twice.

    Not ``occurrence_id``, which adds a plain job's run token: a schedule run twice would
    start two runs of two names, and the due time alone must show the second hand-out.
    """
    return f"{job['id']}:{job.due_at}"


def claim(
    target: Target, limit: Optional[int] = None, reschedule_in: Optional[float] = None
) -> List[str]:
    """One pending_jobs() call: the occurrence ids (``id:due``) it handed out."""
    return [handed_name(job) for job in _scheduler(target).pending_jobs(reschedule_in, limit)]


def drain(target: Target) -> List[str]:
    """Claim until a call hands out nothing: every occurrence id handed out."""
    handed: List[str] = []
    while batch := claim(target):
        handed += batch
    return handed


def schedule(target: Target, job_id: str, schedule_in: float) -> float:
    """schedule_job on a direct connection: the due time."""
    return float(_scheduler(target).schedule_job(job_id, schedule_in))


def _serve(pipe: Any) -> None:
    while True:
        try:
            request = pipe.recv()
        except EOFError:
            return
        if request is None:
            return
        function, args = request
        try:
            pipe.send((True, function(*args)))
        except BaseException as exc:
            pipe.send((False, exc))


class Contender:
    """Another process that makes moves on its own direct connections, one call at a time."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs,), daemon=True)
        self._process.start()
        self._lock = threading.Lock()
        #: every occurrence id the contender was handed, in order, since the last reset
        self.handed: List[str] = []

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in the other process (a module-level function of this module)."""
        with self._lock:
            self._pipe.send((function, args))
            if not self._pipe.poll(60):
                raise TimeoutError(f"the contender did not answer {function.__name__} in 60 s")
            ok, result = self._pipe.recv()
        if not ok:
            raise result
        return result

    def claim(
        self, target: Target, limit: Optional[int] = None, reschedule_in: Optional[float] = None
    ) -> List[str]:
        """Claim due jobs there; what was handed out is added to ``handed`` too."""
        got: List[str] = self.call(claim, target, limit, reschedule_in)
        self.handed += got
        return got

    def drain(self, target: Target) -> List[str]:
        """Drain the schedule there; added to ``handed`` too."""
        got: List[str] = self.call(drain, target)
        self.handed += got
        return got

    def schedule(self, target: Target, job_id: str, schedule_in: float) -> float:
        """Schedule a job there."""
        return float(self.call(schedule, target, job_id, schedule_in))

    def close(self) -> None:
        """Stop the process."""
        with contextlib.suppress(OSError):
            self._pipe.send(None)
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
