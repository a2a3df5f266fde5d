"""make screenshots: the pictures of ``rache web`` in docs/howto/dashboard.rst.

Starts a redis-server of its own, fills a schedule of 100,000 jobs (feeds spread over the
hour, a burst at a quarter past, some overdue, awkward ids, recurring jobs), runs ``rache
web --allow-actions`` on it, and saves each page as Debian's headless Chromium shows it to
``docs/_static/screenshots/``.

    python -m tests.tools.screenshots [--jobs 100000]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Tuple

from rache import Cron, Every, Poller, Scheduler
from tests.support import harness
from tests.support.webtools import CHROMIUM, start_web, stop

OUT = Path(__file__).resolve().parents[2] / "docs" / "_static" / "screenshots"


def jobs(count: int) -> Iterator[Tuple[str, float, dict[str, Any]]]:
    """Feeds due over the next hour, busier now and then, a burst at +15 min, a few late."""
    for n in range(count):
        due: float
        if n % 12 == 0:
            due = 900 + (n % 97)  # a burst: a batch imported at a quarter past
        elif n % 50 == 0:
            due = -(n % 400)  # overdue: no poller ran for a few minutes
        else:
            phase = (n * 7919) % 3600
            due = phase + 300 * math.sin(phase / 600)  # waves over the hour
        yield f"feed:{n:06d}", due, {"url": f"https://example.com/feeds/{n}.xml", "timeout": 10}


def runs(scheduler: Scheduler) -> None:
    """Runs to show, made before the schedule fills.

    A job's failure, recurring jobs' outcomes, and two live pollers.
    """
    now = scheduler.server_time()
    scheduler.schedule_job('<b>x</b>&"', 0)
    scheduler.schedule_recurring("heartbeat", Every(60), start=now - 1)
    scheduler.schedule_recurring("sync-crm", Every(300), start=now - 1)
    for job in scheduler.pending_jobs(reschedule_in=0, limit=3):
        if job["id"] == "heartbeat":
            scheduler.finish_run(job.occurrence_id)
        else:
            scheduler.finish_run(job.occurrence_id, "TimeoutError: timed out", retrying=True)
            scheduler.finish_run(
                job.occurrence_id, ConnectionError("https://crm.example.com refused: 503")
            )
    (again,) = scheduler.pending_jobs(reschedule_in=0, limit=1)
    scheduler.finish_run(again.occurrence_id)
    for n, kind in ((1, "rache dispatch"), (2, "celery beat")):
        poller = Poller(
            f"worker-{n}:{4240 + n}", kind, f"worker-{n}", 4240 + n, "0.4.0",
            now - 3600 * n, now - n, 1234 * n, 3 - n,
        )  # fmt: skip
        scheduler.announce(poller)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        server = harness.start(harness.local_binaries()[0], Path(folder))
        scheduler = Scheduler(server.client(), "rache:", name="worker-1:4242")
        runs(scheduler)
        scheduler.schedule_jobs(jobs(args.jobs))
        scheduler.schedule_job(
            '<b>x</b>&"', -500, url="https://example.com/?a=1&b=<2>", owner="ops team"
        )
        scheduler.schedule_job("café ünïcødé ☃", -480, lang="fr")
        scheduler.schedule_recurring("heartbeat", Every(60), data={"url": "https://example.com"})
        scheduler.schedule_recurring(
            "nightly-report",
            Cron("30 2 * * *", timezone="Europe/Paris", misfire="skip"),
        )
        scheduler.schedule_recurring("digest", Cron("0 9 * * mon-fri", jitter=120))
        process, address = start_web(server.url, "--allow-actions")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1200, "height": 640})
                page.goto(address)
                page.wait_for_timeout(2500)  # one live refresh
                page.screenshot(path=str(OUT / "overview.png"), full_page=True)
                page.get_by_role("link", name='<b>x</b>&"', exact=True).first.click()
                page.screenshot(path=str(OUT / "job.png"), full_page=True)
                page.get_by_role("link", name="Recurring jobs").click()
                page.screenshot(path=str(OUT / "recurring.png"), full_page=True)
                page.get_by_role("link", name="nightly-report", exact=True).click()
                page.screenshot(path=str(OUT / "recurring-job.png"), full_page=True)
                page.goto(address + "jobs/feed%3A000001")
                page.get_by_role("button", name="Delete").click()
                page.screenshot(path=str(OUT / "deleted.png"), full_page=True)
                browser.close()
        finally:
            stop(process)
            scheduler.connection.close()
            server.stop()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(OUT.parent.parent.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
