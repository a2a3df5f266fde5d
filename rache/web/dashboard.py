"""The dashboard's Redis side: every page read afresh through the public API, nothing written."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

import redis.asyncio

from .. import config
from ..aio import AsyncScheduler
from ..errors import JobNotFound
from ..models import Health, Job, Run, Stats
from .display import chart, failure_rows, figures, job_rows, poller_rows, verdict
from .settings import (
    CHART_INTERVAL,
    CHART_INTERVALS,
    LAG_BAD,
    OVERVIEW_FAILURES,
    OVERVIEW_JOBS,
    RECURRING_PAGE,
    Settings,
)


class Dashboard:
    """The dashboard's Redis side: one client, and the schedule's scheduler once it exists.

    A sharded schedule records its shard count on first write; until then, the dashboard
    reads only the clock and the layout (``recorded_shards``): a scheduler's first call
    would record a count, and the dashboard writes nothing.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        config.client(settings.url)  # a clear error for a URL that is not Redis's
        self.client: Any = None
        #: the schedule's scheduler, made by start(); ``_checked`` once its layout is
        self._reader: Optional[AsyncScheduler] = None
        self._checked = False

    async def start(self) -> None:
        """Make the client and the scheduler (in the event loop that serves).

        :raises ConfigurationError: a prefix or shard count no scheduler takes.
        """
        settings = self.settings
        cls: Any = redis.asyncio.RedisCluster if settings.cluster else redis.asyncio.Redis
        # the timeouts and Retry of every client rache makes (within its call records' life)
        self.client = cls.from_url(settings.url, **config.client_options(asyncio=True))
        try:
            self._reader = AsyncScheduler(
                self.client, settings.prefix, batch_size=OVERVIEW_JOBS, shards=settings.shards
            )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the client."""
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def _scheduler(self) -> AsyncScheduler:
        if self._reader is None:
            raise RuntimeError("the dashboard is not started: await start() first")
        return self._reader

    async def scheduler(self) -> Optional[AsyncScheduler]:
        """The schedule's scheduler, its layout checked; None while a sharded one is unrecorded.

        :raises ConfigurationError: the schedule has another shard count.
        """
        scheduler = self._scheduler()
        if self._checked:
            return scheduler
        # The check records a count when none is recorded and no unsharded schedule holds
        # jobs (recorded_shards() is None): then there is nothing to show, and no check.
        if self.settings.shards > 1 and await scheduler.recorded_shards() is None:
            return None
        await scheduler.check_layout()
        self._checked = True
        return scheduler

    async def now(self) -> float:
        """The server's clock, Unix seconds."""
        return await self._scheduler().server_time()

    async def overview(self) -> Dict[str, Any]:
        """What the overview shows, read now.

        The figures, the chart, the earliest jobs, the live pollers, the recent failures and
        the health verdict.

        The verdict is ``health(late=LAG_BAD)``: the one ``rache doctor`` gives by default.
        """
        scheduler = await self.scheduler()
        jobs: List[Tuple[Any, float]] = []
        health: Optional[Health] = None
        failed: List[Run] = []
        if scheduler is None:
            coming = [0] * CHART_INTERVALS
            stats = Stats(await self.now(), 0, 0, None, None, coming, float(CHART_INTERVAL))
        else:  # all at once, concurrently
            stats, jobs, health, failed = await asyncio.gather(
                scheduler.stats(CHART_INTERVALS, CHART_INTERVAL),
                earliest(scheduler),
                scheduler.health(late=LAG_BAD),
                scheduler.failures(OVERVIEW_FAILURES),
            )
        return {
            **figures(stats),
            "chart": chart(stats),
            "jobs": job_rows(jobs, stats.now),
            "pollers": poller_rows(health.pollers if health else [], stats.now),
            "failures": failure_rows(failed, stats.now),
            "health": verdict(health),
            "recorded": scheduler is not None,
        }

    async def job(self, job_id: str) -> Tuple[Optional[Job], List[Run], float]:
        """A job's details, its runs (newest first) and the server's time.

        The details are None for a job that is gone but whose runs are kept (a plain job
        handed out, its data taken with it): the failures list links to such jobs.

        :raises JobNotFound: no such job and no run of it (or no schedule yet).
        """
        scheduler = await self.scheduler()
        if scheduler is None or not job_id:
            raise JobNotFound(job_id)

        async def details() -> Optional[Job]:
            try:
                return await scheduler.job_details(job_id)
            except JobNotFound:
                return None

        job, runs, now = await asyncio.gather(details(), scheduler.runs(job_id), self.now())
        if job is None and not runs:
            raise JobNotFound(job_id)
        return job, runs, now

    async def recurring(
        self, page: int
    ) -> Tuple[List[Tuple[Dict[str, Any], List[Run]]], int, float]:
        """One page of the recurring jobs, by id: their details and runs, the total, the time.

        The ids come from ``recurring_jobs`` (one script call per shard); the details and
        the runs (newest first) only for the page's jobs.
        """
        scheduler = await self.scheduler()
        now = await self.now()
        if scheduler is None:
            return [], 0, now
        ids: List[Any] = [job_id async for job_id in scheduler.recurring_jobs()]
        ids.sort(key=lambda job_id: (isinstance(job_id, bytes), job_id))
        chosen = ids[page * RECURRING_PAGE : (page + 1) * RECURRING_PAGE]
        found = await asyncio.gather(*(self._details(scheduler, job_id) for job_id in chosen))
        return [job for job in found if job is not None], len(ids), now

    async def _details(
        self, scheduler: AsyncScheduler, job_id: Any
    ) -> Optional[Tuple[Dict[str, Any], List[Run]]]:
        if not isinstance(job_id, str):  # not UTF-8: not a job id rache's API takes
            return {"id": job_id}, []
        try:
            job, runs = await asyncio.gather(scheduler.job_details(job_id), scheduler.runs(job_id))
        except JobNotFound:  # deleted since the ids were read
            return None
        return job, runs


async def earliest(scheduler: AsyncScheduler) -> List[Tuple[Any, float]]:
    """The first ``OVERVIEW_JOBS`` jobs, earliest first, with due times: one page a shard.

    The scheduler's batch is the list's length, so one script call per shard reads them.
    """
    jobs: List[Tuple[Any, float]] = []
    entries = scheduler.scheduled_jobs(with_times=True)
    try:
        async for entry in entries:
            jobs.append(entry)
            if len(jobs) == OVERVIEW_JOBS:
                break
    finally:
        await entries.aclose()
    return jobs


async def preflight(settings: Settings) -> None:
    """Reach Redis and check the schedule's layout, before serving; the same errors."""
    dashboard = Dashboard(settings)
    await dashboard.start()
    try:
        await dashboard.client.ping()
        await dashboard.scheduler()
    finally:
        await dashboard.close()
