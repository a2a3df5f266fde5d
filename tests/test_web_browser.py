"""``rache web`` in a real browser: headless Chromium (Debian's), driven by Playwright.

The dashboard runs as ``rache web`` does, a process of its own. Every console message and
every failed request (a missing static file or favicon counts) is collected and must be
none. Skipped, saying why, where there is no Chromium binary.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator, List

import pytest
import redis

from rache import Poller, Scheduler
from tests.support import harness as testing
from tests.support.webtools import CHROMIUM, NASTY_IDS, fill, start_web, stop

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the test extra)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"no Chromium binary at {CHROMIUM} (Debian: apt-get install chromium; "
            "or set RACHE_TEST_CHROMIUM)"
        )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Watched:
    """A page whose console messages, failed requests and error responses are kept."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.problems: List[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    def _failed(self, request: Any) -> None:
        # net::ERR_ABORTED: the page dropped it by navigating on (a favicon, the live
        # refresh in flight), not a failure of the server's; any other failure counts
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status}: {response.url}")


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    """A fresh page; at the end, no console message and no failed request."""
    watched = Watched(browser)
    yield watched
    problems = list(watched.problems)
    watched.context.close()
    assert problems == []


def test_a_100000_job_schedule_its_figures_chart_live_refresh_and_job_pages(
    solo: testing.RedisServer, solo_raw: redis.Redis, watched: Watched
) -> None:
    scheduler = Scheduler(solo.client(), "rache:")
    fill(scheduler, jobs=100_000)
    process, address = start_web(solo.url)
    try:
        page = watched.page
        expect = sync_api.expect
        page.goto(address)
        expect(page.locator("#total")).to_have_text("100,017")
        expect(page.locator("#due")).to_have_text("16")
        chart = page.get_by_role("img", name="Jobs falling due in each 1m of the next 1h")
        expect(chart).to_be_visible()
        bars = page.locator("#chart rect")
        assert bars.count() == 60
        assert all(float(bars.nth(i).get_attribute("height") or 0) > 0 for i in range(60))
        # kept live: a job scheduled now shows without a reload
        scheduler.schedule_job("live:<i>new</i>", -1000)
        expect(page.locator("#total")).to_have_text("100,018", timeout=10_000)
        expect(page.locator("#earliest a").first).to_have_text("live:<i>new</i>")
        assert page.locator("#earliest i").count() == 0  # text, not markup
        # each awkward id: a link whose text is the whole id, to the job's page
        for job_id in NASTY_IDS:
            link = page.get_by_role("link", name=job_id, exact=True)
            expect(link).to_have_count(1)
            link.click()
            expect(page.locator("#job-id")).to_have_text(job_id)
            expect(page.locator("td.value").first).to_have_text("nasty")
            expect(page.locator("td.value").last).to_have_text(job_id)
            page.go_back()
        # the find box, and the recurring jobs
        page.get_by_label("Find a job by id").fill("ünïcødé ☃ 日本")
        page.get_by_role("button", name="Find").click()
        expect(page.locator("#job-id")).to_have_text("ünïcødé ☃ 日本")
        page.get_by_role("link", name="Recurring jobs").click()
        expect(page.get_by_role("cell", name="every 60 s")).to_be_visible()
        expect(page.get_by_role("cell", name="cron 30 2 * * * (Europe/Paris)")).to_be_visible()
        page.get_by_role("link", name="report", exact=True).click()
        expect(page.locator("#occurrences li")).to_have_count(5)
    finally:
        status, err = stop(process)
    assert status == 0, err


def test_with_actions_allowed_a_job_is_deleted_from_its_page(
    solo: testing.RedisServer, solo_raw: redis.Redis, watched: Watched
) -> None:
    scheduler = Scheduler(solo.client(), "rache:")
    fill(scheduler, jobs=100_000)  # the "done when": this size
    nasty = '<b>x</b>&"'
    process, address = start_web(solo.url, "--allow-actions")
    try:
        page = watched.page
        expect = sync_api.expect
        page.goto(address)
        sync_api.expect(page.locator("#total")).to_have_text("100,017")
        page.get_by_role("link", name=nasty, exact=True).click()
        expect(page.locator("#job-id")).to_have_text(nasty)
        page.get_by_role("button", name="Delete").click()
        expect(page.locator("#message")).to_have_text(
            f"Deleted job {nasty}: its schedule entry and its data."
        )
        assert solo_raw.zscore("rache:queue", nasty) is None
        assert not solo_raw.exists(f"rache:job:{nasty}")
        # reschedule another by a duration: its page shows the new due time
        page.goto(address + "jobs/job%3A00007")
        page.get_by_label("Due in").fill("3")
        page.get_by_label("unit").select_option("h")
        page.get_by_role("button", name="Reschedule").click()
        expect(page.locator("#due")).to_contain_text("(in 3h)")
        now = float(solo_raw.time()[0])
        assert 3 * 3600 - 2 <= float(solo_raw.zscore("rache:queue", "job:00007") or 0) - now
        assert scheduler.stats().total == 100_016
        # the watch sees what it must see none of: a missing file, a console error
        assert watched.problems == []
        page.goto(address + "static/missing.css")
        page.evaluate("console.error('seen')")
        assert watched.problems == [
            f"404: {address}static/missing.css",
            "console error: Failed to load resource: the server responded with a status of 404"
            " (Not Found)",
            "console error: seen",
        ]
        watched.problems.clear()
    finally:
        assert stop(process)[0] == 0


#: The lag's colours, as style.css paints its figure: ok, warning and bad.
LAG_BACKGROUNDS = {"warning": "rgb(255, 244, 214)", "bad": "rgb(253, 236, 234)"}


def test_the_overview_shows_live_pollers_the_verdict_and_the_lag_in_colour_kept_live(
    solo: testing.RedisServer, solo_raw: redis.Redis, watched: Watched
) -> None:
    scheduler = Scheduler(solo.client(), "rache:")
    scheduler.schedule_job("late", -30)
    process, address = start_web(solo.url)
    try:
        page = watched.page
        expect = sync_api.expect
        page.goto(address)
        health = page.locator("#health")
        expect(page.locator("#health-title")).to_have_text("Unhealthy: 1 problem")
        expect(page.locator("#problems li")).to_have_text(
            "no live poller: 1 job is due and no poller is alive to hand out jobs "
            "(rache pollers lists none)"
        )
        expect(page.locator("#pollers td")).to_have_text(
            "No live poller: nothing hands out due jobs (start a dispatcher, rache dispatch, "
            "a Celery beat or an rq runner)."
        )
        lag = page.locator("#lag-figure")
        expect(lag).to_have_attribute("data-level", "ok")
        ok_background = lag.evaluate("e => getComputedStyle(e).backgroundColor")
        assert ok_background == "rgb(255, 255, 255)"
        # a poller comes: listed without a reload, and the verdict turns healthy
        now = scheduler.server_time()
        scheduler.announce(
            Poller("<i>w</i>:1", "rache dispatch", "host-a", 1, "0.4.0", now - 60, now - 2, 37, 4)
        )
        expect(page.locator("#pollers tr")).to_have_count(1, timeout=10_000)
        cells = page.locator("#pollers tr").first.locator("td")
        expect(cells).to_have_text(
            ["<i>w</i>:1", "rache dispatch", "host-a (pid 1)", re.compile(r"\d+s ago"), "37", "4"],
            timeout=10_000,
        )
        assert page.locator("#pollers i").count() == 0  # text, not markup
        failures = cells.nth(5)
        assert failures.evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"
        expect(page.locator("#health-title")).to_have_text(re.compile("^Healthy: 1 live poller"))
        assert health.evaluate("e => e.className") == "health health-ok"
        expect(page.locator("#problems li")).to_have_count(0)
        # the oldest due job later and later: warning, then bad, coloured, without a reload
        scheduler.schedule_job("late", -90)
        expect(lag).to_have_attribute("data-level", "warning", timeout=10_000)
        expect(page.locator("#lag-note")).to_have_text("more than 1m late")
        background = lag.evaluate("e => getComputedStyle(e).backgroundColor")
        assert background == LAG_BACKGROUNDS["warning"]
        scheduler.schedule_job("late", -600)
        expect(lag).to_have_attribute("data-level", "bad", timeout=10_000)
        expect(page.locator("#lag-note")).to_have_text("more than 5m late")
        assert lag.evaluate("e => getComputedStyle(e).backgroundColor") == LAG_BACKGROUNDS["bad"]
        expect(page.locator("#health-title")).to_have_text("Unhealthy: 1 problem")
        expect(page.locator("#problems li")).to_contain_text("late: job 'late' has been due for")
        assert health.evaluate("e => e.className") == "health health-bad"
        # and a fresh load shows the same
        page.reload()
        expect(lag).to_have_attribute("data-level", "bad")
        expect(page.locator("#pollers tr")).to_have_count(1)
        scheduler.withdraw("<i>w</i>:1")
    finally:
        status, err = stop(process)
    assert status == 0, err


def test_runs_a_failed_one_and_its_error_on_the_jobs_page_overview_and_recurring_page(
    solo: testing.RedisServer, solo_raw: redis.Redis, watched: Watched
) -> None:
    from rache import Every

    poller = Scheduler(solo.client(), "rache:", name="beat-1")
    now = poller.server_time()
    poller.schedule_recurring("nightly <report>", Every(3600), start=now - 1)
    poller.schedule_recurring("heartbeat", Every(3600), start=now - 1)
    jobs = {job["id"]: job for job in poller.pending_jobs()}
    poller.finish_run(jobs["heartbeat"].occurrence_id)
    process, address = start_web(solo.url)
    try:
        page = watched.page
        expect = sync_api.expect
        page.goto(address)
        expect(page.locator("#failures td")).to_have_text("No failed run recorded.")
        # a run fails while the overview is open: listed without a reload, its error whole
        # on hover, its job a link
        error = "ValueError: the feed at <https://example.com> answered 500\nTraceback..."
        poller.finish_run(jobs["nightly <report>"].occurrence_id, error)
        row = page.locator("#failures tr").first
        expect(row.locator("td")).to_have_text(
            [
                re.compile(r"(now|[\d.]+s ago)"),
                "nightly <report>",
                jobs["nightly <report>"].occurrence_id,
                "beat-1",
                "ValueError: the feed at <https://example.com> answered 500…",
            ],
            timeout=10_000,
        )
        expect(row.locator("td.error")).to_have_attribute("title", error)
        # its page: the runs, the failed one red with its error
        row.get_by_role("link", name="nightly <report>", exact=True).click()
        expect(page.locator("#job-id")).to_have_text("nightly <report>")
        runs = page.locator("#runs tr")
        expect(runs).to_have_count(1)
        cells = runs.first.locator("td")
        expect(cells.nth(0)).to_have_text("failed")
        expect(cells.nth(1)).to_have_text(jobs["nightly <report>"].occurrence_id)
        expect(cells.nth(4)).to_have_text("beat-1")
        expect(cells.nth(6)).to_have_text(error)
        assert cells.nth(0).evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"
        # the recurring page: each job's last run and outcome
        page.get_by_role("link", name="Recurring jobs").click()
        table = page.locator("#recurring-jobs tr")
        expect(table).to_have_count(2)
        expect(table.nth(0).locator("td.outcome")).to_have_text("succeeded")
        expect(table.nth(1).locator("td.outcome")).to_have_text(
            "failed ValueError: the feed at <https://example.com> answered 500…"
        )
        expect(table.nth(1).locator("td.last-run")).to_contain_text(" UTC")
        green = table.nth(0).locator(".state").evaluate("e => getComputedStyle(e).color")
        assert green == "rgb(43, 106, 47)"
    finally:
        status, err = stop(process)
    assert status == 0, err
