"""Reading a schedule in pages, as flows without I/O: ``scheduled_jobs`` and ``export_jobs``.

Each flow has the claim's protocol: a shell asks ``next_call()`` for the next script call
(None: the reading is over) and hands its reply to ``take()``, which gives the entries to
yield next (perhaps none yet, while a sharded schedule's other shards are read)::

    while (call := pages.next_call()) is not None:
        yield from pages.take(run(call))
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, List, Optional, Protocol, Sequence, Set, Tuple

from . import decode, scripts, wire
from .keys import Keys, Layout
from .models import Exported, text
from .scripts import Args, Call
from .wire import decode_time

#: What a flow hands out: ids, (id, due time) or an ``Exported`` (id, due, data, run, rule).
Entry = Any


class Flow(Protocol):
    """What the shells drive: a reading of the schedule, one script call at a time."""

    def next_call(self) -> Optional[Call]:
        """The next script call, or None when the reading is over."""

    def take(self, reply: Sequence[Any]) -> List[Entry]:
        """The entries that the reply of ``next_call()``'s call gives."""


class Pages:
    """scheduled_jobs() on one shard: page-1.lua calls, each page after the last one read."""

    script = scripts.PAGE

    def __init__(self, keys: Keys, count: int, with_times: bool) -> None:
        self.keys = keys
        self.count = count
        self.with_times = with_times
        self.anchor = (b"", b"")
        #: whether the last page has been read
        self.done = False

    def _args(self) -> Args:
        return [self.count, *self.anchor]

    def next_call(self) -> Optional[Call]:
        """The call that reads the next page, or None when every page was read."""
        return None if self.done else Call(self.script, [self.keys.queue], self._args())

    def take(self, reply: Sequence[Any]) -> List[Entry]:
        """The ids, or (id, due time) pairs, of one page (id, due, id, due, ...)."""
        self.done = len(reply) < 2 * self.count
        if not self.done:
            self.anchor = (reply[-2], reply[-1])  # always after the previous one
        it = iter(reply)
        if self.with_times:
            return [(text(raw_id), decode_time(due)) for raw_id, due in zip(it, it)]
        return [text(raw_id) for raw_id, _ in zip(it, it)]


class Exports(Pages):
    """export_jobs() on one shard: export-3.lua calls, pages of jobs with all they have."""

    script = scripts.EXPORT

    def __init__(self, keys: Keys, count: int) -> None:
        super().__init__(keys, count, True)

    def next_call(self) -> Optional[Call]:
        """The call that reads the next page, or None when every page was read."""
        if self.done:
            return None
        keys = self.keys
        args: Args = [keys.job_prefix, self.count, *self.anchor]
        return Call(self.script, [keys.queue, keys.recurring, keys.runs], args)

    def take(self, reply: Sequence[Any]) -> List[Entry]:
        """An ``Exported`` (id, due time, data, run, rule) of each job of one page."""
        tokens, rules = reply[0], reply[1]
        it = iter(reply)
        for _ in range(wire.EXPORT_HEAD):
            next(it)
        jobs = decode.jobs(it)
        exported: List[Entry] = []
        i = last = wire.EXPORT_HEAD
        for n, job in enumerate(jobs):
            last = i
            run = tokens[n] if tokens else None
            rule = rules[n] if rules else None
            exported.append(
                Exported(
                    job.pop("id"),
                    decode_time(reply[i + 1]),
                    job,
                    None if run is None else run.hex(),
                    None if rule is None else rule.decode(),
                )
            )
            i += wire.JOB_HEAD + 2 * reply[i + 2]
        self.done = len(jobs) < self.count
        if not self.done:
            self.anchor = (reply[last], reply[last + 1])
        return exported


class Merged:
    """Several shards' pages (each with due times) merged into one order, earliest first.

    A shard's next page is read only when its buffered entries are used up, so the flow
    holds about one page per shard.
    """

    def __init__(self, pages: Sequence[Pages], transform: Optional[Callable[[Any], Any]] = None):
        self.pages, self.transform = pages, transform
        self._buffers: List[List[Any]] = [[] for _ in pages]
        self._heap: List[Tuple[Any, int, int, Any]] = []
        self._hungry: Set[int] = set(range(len(pages)))  # shards whose next entry is unread
        self._reading = 0
        self._seq = 0

    def next_call(self) -> Optional[Call]:
        """The call that reads a page of a shard whose next entry is unread, or None."""
        for index in self._hungry:
            call = self.pages[index].next_call()
            if call is None:  # cannot happen: a done shard is never hungry
                raise AssertionError("a finished shard has no page to read")
            self._reading = index
            return call
        return None

    def take(self, reply: Sequence[Any]) -> List[Entry]:
        """Take the page ``next_call()`` asked for; the entries now known to come next."""
        index = self._reading
        self._buffers[index] = self.pages[index].take(reply)[::-1]  # popped from the end
        self._refill(index)
        out = []
        while not self._hungry and self._heap:
            _, _, index, item = heapq.heappop(self._heap)
            out.append(item if self.transform is None else self.transform(item))
            self._refill(index)
        return out

    def _refill(self, index: int) -> None:
        buffer = self._buffers[index]
        if buffer:
            item = buffer.pop()
            self._seq += 1
            heapq.heappush(self._heap, (item[1], self._seq, index, item))
            self._hungry.discard(index)
        elif self.pages[index].done:
            self._hungry.discard(index)
        else:
            self._hungry.add(index)


def scheduled(layout: Layout, count: int, with_times: bool) -> Flow:
    """The flow of scheduled_jobs(): ids (or (id, due time)) earliest first."""
    if len(layout.shards) == 1:
        return Pages(layout.shards[0], count, with_times)
    shards = [Pages(keys, count, True) for keys in layout.shards]
    return Merged(shards, None if with_times else _first)


def exported(layout: Layout, count: int) -> Flow:
    """The flow of export_jobs(): ``Exported`` (id, due time, data, run, rule) earliest first."""
    if len(layout.shards) == 1:
        return Exports(layout.shards[0], count)
    return Merged([Exports(keys, count) for keys in layout.shards])


def _first(item: Tuple[Any, ...]) -> Any:
    return item[0]
