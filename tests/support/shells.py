"""The asyncio shell behind the sync shell's interface, so one behaviour suite runs on both.

Every test that takes the ``make`` or ``sched`` fixture runs once per shell.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Awaitable, Generator, Tuple, TypeVar

from rache.aio import AsyncScheduler

T = TypeVar("T")


class LoopThread:
    """An event loop running in a thread of its own, for sync code to run coroutines on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and wait for its result."""

        async def wrapped() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=120)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _next(iterator: AsyncIterator[T]) -> Tuple[bool, Any]:
    try:
        return True, await iterator.__anext__()
    except StopAsyncIteration:
        return False, None


class Blocking:
    """An AsyncScheduler with the sync Scheduler's methods, each run on a LoopThread."""

    def __init__(self, inner: AsyncScheduler, runner: LoopThread) -> None:
        self.inner = inner
        self.runner = runner

    def __getattr__(self, name: str) -> Any:  # keys, batch_size, connection
        return getattr(self.inner, name)

    def check_layout(self) -> int:
        return self.runner.run(self.inner.check_layout())

    def recorded_shards(self) -> Any:
        return self.runner.run(self.inner.recorded_shards())

    def server_time(self) -> float:
        return self.runner.run(self.inner.server_time())

    def schedule_job(self, job_id: Any, schedule_in: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.schedule_job(job_id, schedule_in, **kwargs))

    def schedule_job_at(self, job_id: Any, at: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.schedule_job_at(job_id, at, **kwargs))

    def schedule_recurring(self, job_id: Any, rule: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.schedule_recurring(job_id, rule, **kwargs))

    def schedule_jobs(self, jobs: Any, **kwargs: Any) -> int:
        return self.runner.run(self.inner.schedule_jobs(jobs, **kwargs))

    def stats(self, *args: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.stats(*args, **kwargs))

    def announce(self, *args: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.announce(*args, **kwargs))

    def withdraw(self, name: Any) -> Any:
        return self.runner.run(self.inner.withdraw(name))

    def pollers(self) -> Any:
        return self.runner.run(self.inner.pollers())

    def health(self, *args: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.health(*args, **kwargs))

    def bad_rules(self) -> Any:
        return self.runner.run(self.inner.bad_rules())

    def delete_job(self, job_id: Any) -> bool:
        return self.runner.run(self.inner.delete_job(job_id))

    def job_details(self, job_id: Any) -> Any:
        return self.runner.run(self.inner.job_details(job_id))

    def finish_run(self, occurrence_id: Any, *args: Any, **kwargs: Any) -> bool:
        return self.runner.run(self.inner.finish_run(occurrence_id, *args, **kwargs))

    def runs(self, job_id: Any) -> Any:
        return self.runner.run(self.inner.runs(job_id))

    def failures(self, *args: Any, **kwargs: Any) -> Any:
        return self.runner.run(self.inner.failures(*args, **kwargs))

    def forget_jobs(self, jobs: Any) -> int:
        return self.runner.run(self.inner.forget_jobs(jobs))

    def pending_jobs(self, *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
        return self._iterate(self.inner.pending_jobs(*args, **kwargs))  # checks args now

    def scheduled_jobs(self, *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
        return self._iterate(self.inner.scheduled_jobs(*args, **kwargs))

    def recurring_jobs(self) -> Generator[Any, None, None]:
        return self._iterate(self.inner.recurring_jobs())

    def export_jobs(self) -> Generator[Any, None, None]:
        return self._iterate(self.inner.export_jobs())

    def orphaned_jobs(self, *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
        return self._iterate(self.inner.orphaned_jobs(*args, **kwargs))

    def reshard(self) -> int:
        return self.runner.run(self.inner.reshard())

    def _iterate(self, iterator: Any) -> Generator[Any, None, None]:
        """A sync generator over an async one; closing it closes the async one at once."""
        try:
            while True:
                more, item = self.runner.run(_next(iterator))
                if not more:
                    return
                yield item
        finally:
            self.runner.run(iterator.aclose())
