"""``rache web``, server side: its pages over HTTP (Starlette's TestClient) on a real Redis.

What a page shows is read as a browser reads it (``webtools.Page``: text unescaped once),
and compared with what the public API says of the same schedule. Read-only is checked by
a DUMP of every key before and after every route with every method.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List

import port_for
import pytest
import redis
from click.testing import CliRunner
from starlette.testclient import TestClient

from rache import Cron, Every, Poller, Scheduler, web
from rache.cli import main
from rache.errors import ConfigurationError
from tests.support import harness as testing
from tests.support.helpers import snapshot
from tests.support.webtools import NASTY_IDS, Page, fill, start_web, stop
from tests.test_security import grant, refusals

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

Open = Callable[..., TestClient]


@pytest.fixture
def schedule(solo: testing.RedisServer, solo_raw: redis.Redis) -> Scheduler:
    """A scheduler of the flushed ``solo`` server, prefix ``rache:``."""
    return Scheduler(solo.client(), "rache:")


@pytest.fixture
def dashboard(solo: testing.RedisServer) -> Iterator[Open]:
    """Open the dashboard of ``solo`` as an HTTP client: ``dashboard(allow_actions=True)``."""
    opened: List[TestClient] = []

    def open_(url: str = solo.url, **options: Any) -> TestClient:
        settings = web.Settings(url=url, prefix=options.pop("prefix", "rache:"), **options)
        client = TestClient(web.create_app(settings), base_url="http://127.0.0.1")
        client.__enter__()
        client.settings = settings  # type: ignore[attr-defined]
        opened.append(client)
        return client

    yield open_
    for client in opened:
        client.__exit__(None, None, None)


def page(client: TestClient, path: str, status: int = 200) -> Page:
    response = client.get(path)
    assert response.status_code == status, (path, response.text[:500])
    return Page(response.text)


def test_the_overview_shows_figures_chart_and_the_earliest_jobs(
    schedule: Scheduler, dashboard: Open
) -> None:
    fill(schedule)
    client = dashboard()
    response = client.get("/")
    stats = schedule.stats()
    shown = Page(response.text)
    assert shown.by_id["total"] == f"{stats.total:,}" == "217"
    assert shown.by_id["due"] == f"{stats.due:,}" == "16"  # the awkward ids, the heartbeat
    assert re.fullmatch(r"1m 4\ds", shown.by_id["lag"])  # the first awkward id: 100 s ago
    assert shown.by_id["next-due"].startswith("in ")
    # the chart: 60 bars, summed up in its accessible name
    assert response.text.count("<rect ") == 60
    assert f"{sum(stats.coming):,} in all" in shown.by_id["chart-caption"]
    assert re.search(r'<svg id="chart" role="img" aria-label="Jobs falling due', response.text)
    # the earliest jobs: one page, in due order, each a link whose text is the whole id
    earliest = [job_id for job_id, _ in zip(schedule.scheduled_jobs(), range(25))]
    listed = [text for href, text in shown.links if href.startswith(("/jobs/", "/job?"))]
    assert listed == earliest
    for job_id in NASTY_IDS:
        job = page(client, shown.link(job_id))
        assert job.by_id["job-id"] == job_id
    assert response.headers["cache-control"] == "no-store"
    assert re.fullmatch(r"app;dur=\d+\.\d\d", response.headers["server-timing"])
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_the_live_endpoint_is_read_afresh(schedule: Scheduler, dashboard: Open) -> None:
    fill(schedule, jobs=10)
    client = dashboard()
    before = client.get("/api/overview").json()
    schedule.schedule_job("new", -1000)
    after = client.get("/api/overview").json()
    assert (before["numbers"]["total"], after["numbers"]["total"]) == (27, 28)
    assert after["jobs"][0] == {**after["jobs"][0], "id": "new", "url": "/jobs/new"}
    assert after["jobs"][0]["overdue"] is True
    assert len(after["chart"]["bars"]) == 60
    assert after["numbers"]["coming"] == schedule.stats().coming


def _poller(name: str, now: float, **fields: Any) -> Poller:
    values: Dict[str, Any] = dict(
        name=name, kind="rache dispatch", host="worker-1", pid=4242, version="0.4.0",
        started=now - 3600, last_claim=now - 12, handed_out=1234, failures=0,
    )  # fmt: skip
    values.update(fields)
    return Poller(**values)


def test_the_overview_shows_live_pollers_the_health_verdict_and_the_lag_by_level(
    schedule: Scheduler, dashboard: Open
) -> None:
    client = dashboard()
    empty = Page(client.get("/").text)
    assert empty.by_id["health-title"] == "Healthy: 0 live pollers, no due job more than 5m late"
    assert empty.rows["pollers"] == [[
        "No live poller: nothing hands out due jobs (start a dispatcher, rache dispatch, a "
        "Celery beat or an rq runner)."
    ]]  # fmt: skip
    assert 'id="lag-figure" class="lag lag-ok"' in client.get("/").text
    # a job due 30 s ago, no poller: unhealthy, the lag still ok
    schedule.schedule_job("due", -30)
    html = client.get("/").text
    shown = Page(html)
    assert shown.by_id["health-title"] == "Unhealthy: 1 problem"
    assert shown.by_id["problems"] == (
        "no live poller: 1 job is due and no poller is alive to hand out jobs "
        "(rache pollers lists none)"
    )
    assert 'class="health health-bad"' in html
    assert 'class="lag lag-ok"' in html and shown.by_id["lag-note"] == "within 1m"
    # two pollers, one with failures and a name that is markup: listed by name, as text
    now = schedule.server_time()
    schedule.announce(_poller("<b>beat</b>", now, kind="celery beat", last_claim=None))
    schedule.announce(_poller("worker-1:4242", now, failures=3, handed_out=1_234_567))
    html = client.get("/").text
    shown = Page(html)
    assert shown.by_id["health-title"] == "Healthy: 2 live pollers, no due job more than 5m late"
    assert shown.rows["pollers"] == [
        ["<b>beat</b>", "celery beat", "worker-1 (pid 4242)", "never", "1,234", "0"],
        ["worker-1:4242", "rache dispatch", "worker-1 (pid 4242)", "12s ago", "1,234,567", "3"],
    ]
    assert "<b>beat</b>" not in html and "&lt;b&gt;beat&lt;/b&gt;" in html
    assert html.count('class="number failing"') == 1
    # the lag past a minute: warning; past 5 minutes: bad, and the verdict says late
    schedule.schedule_job("due", -90)
    shown = Page(client.get("/").text)
    assert 'class="lag lag-warning"' in client.get("/").text
    assert shown.by_id["lag-note"] == "more than 1m late"
    assert shown.by_id["health-title"].startswith("Healthy")
    schedule.schedule_job("due", -400)
    html = client.get("/").text
    shown = Page(html)
    assert 'class="lag lag-bad"' in html and shown.by_id["lag-note"] == "more than 5m late"
    assert shown.by_id["health-title"] == "Unhealthy: 1 problem"
    assert shown.by_id["problems"].startswith("late: job 'due' has been due for 6m 4")
    # the live endpoint says the same
    data = client.get("/api/overview").json()
    assert data["lag_level"] == "bad" and data["lag_note"] == "more than 5m late"
    assert data["health"]["ok"] is False
    assert [p["kind"] for p in data["health"]["problems"]] == ["late"]
    assert [(p["name"], p["failing"]) for p in data["pollers"]] == [
        ("<b>beat</b>", False), ("worker-1:4242", True)
    ]  # fmt: skip
    schedule.withdraw("<b>beat</b>")
    schedule.withdraw("worker-1:4242")
    data = client.get("/api/overview").json()
    assert data["pollers"] == [] and len(data["health"]["problems"]) == 2


def test_a_jobs_page_shows_its_due_time_data_and_occurrence(
    schedule: Scheduler, dashboard: Open
) -> None:
    due = schedule.schedule_job("feed:1", 90, url="https://example.com/<feed>", n=3, b=b"\xff")
    shown = page(dashboard(), "/jobs/feed%3A1")
    assert shown.by_id["job-id"] == "feed:1"
    assert shown.by_id["due"] == f"{web.at(due)} (in 1m 30s)" or shown.by_id["due"] == (
        f"{web.at(due)} (in 1m 29s)"
    )
    assert shown.by_id["occurrence"] == f"feed:1:{due}"
    html = dashboard().get("/jobs/feed:1").text
    cells = re.findall(
        r'<th scope="row" class="field">(.*?)</th><td class="value">(.*?)</td>', html
    )
    assert cells == [
        ("b", "b&#39;\\xff&#39;"),
        ("n", "3"),
        ("url", "https://example.com/&lt;feed&gt;"),
    ]
    assert "<form" not in html.replace('<form class="find"', "")  # read-only: no action


def test_a_recurring_jobs_page_shows_its_rule_policy_and_next_occurrences(
    schedule: Scheduler, dashboard: Open
) -> None:
    fill(schedule, jobs=0)
    client = dashboard()
    every = page(client, "/jobs/heartbeat")
    assert every.by_id["rule"].startswith("every 60 s")
    assert every.by_id["misfire"] == "coalesce"
    cron = page(client, "/jobs/report")
    details = schedule.job_details("report")
    assert cron.by_id["rule"] == "cron 30 2 * * * (Europe/Paris)"
    assert cron.by_id["misfire"] == "skip (if more than 5m late)"
    shown = re.findall(r"<li><time>(.*?)</time>", client.get("/jobs/report").text)
    assert shown == [web.at(t) for t in details["next_occurrences"]]
    assert all(text.endswith(":30:00 UTC") for text in shown)  # 02:30 in Paris, in UTC
    walls = re.findall(r"<small>(.*?)</small></li>", client.get("/jobs/report").text)
    assert len(walls) == 5 and all(re.search(r" 02:30:00 CES?T in Europe/Paris$", w) for w in walls)
    assert cron.by_id["occurrence"] == f"report:{details['schedule_at']}"


def test_the_recurring_page_lists_rules_next_runs_and_policies_by_pages(
    schedule: Scheduler, dashboard: Open
) -> None:
    for n in range(55):
        schedule.schedule_recurring(f"every:{n:02d}", Every(60 + n))
    schedule.schedule_recurring("nightly", Cron("0 3 * * *", misfire="skip"))
    client = dashboard()
    first = client.get("/recurring").text
    rows = re.findall(r'<tr>\s*<td><a href="(.*?)">(.*?)</a></td>\s*<td><code>(.*?)</code>', first)
    assert [row[1] for row in rows] == [f"every:{n:02d}" for n in range(50)]
    assert rows[7] == ("/jobs/every%3A07", "every:07", "every 67 s")
    assert "56 recurring jobs, page 1 of 2" in first
    second = client.get("/recurring?page=2").text
    assert "cron 0 3 * * * (UTC)" in second and "skip (if more than 1m late)" in second
    assert second.count("<tr>") == 1 + 6  # the head, then every:50 to 54 and nightly
    next_run = schedule.job_details("nightly")["next_occurrences"][0]
    assert web.at(next_run) in second
    assert client.get("/recurring?page=x").status_code == 400


def test_a_jobs_page_lists_its_runs_newest_first_with_outcomes_and_errors(
    solo: testing.RedisServer, solo_raw: redis.Redis, dashboard: Open
) -> None:
    poller = Scheduler(solo.client(), "rache:", name="<w>:1", run_timeout=0.2)
    poller.schedule_job("feed", 0, n=1)
    (first,) = poller.pending_jobs(reschedule_in=0, limit=1)
    assert poller.finish_run(first.occurrence_id, ValueError("bad <input>\nline 2"))
    (second,) = poller.pending_jobs(reschedule_in=0, limit=1)
    assert poller.finish_run(second.occurrence_id, "flaky", retrying=True)
    assert poller.finish_run(second.occurrence_id)
    (third,) = poller.pending_jobs(reschedule_in=3600, limit=1)  # no outcome: unknown soon
    time.sleep(0.3)
    client = dashboard()
    html = client.get("/jobs/feed").text
    rows = Page(html).rows["runs"]
    runs = poller.runs("feed")
    assert [row[1] for row in rows] == [run.occurrence_id for run in runs] == [
        third.occurrence_id, second.occurrence_id, first.occurrence_id
    ]  # fmt: skip
    assert [row[0] for row in rows] == [
        "unknown", "succeeded (after 1 failed attempt)", "failed"
    ]  # fmt: skip
    assert rows[2][4] == "<w>:1" and rows[2][6] == "ValueError: bad <input>\nline 2"
    assert "bad &lt;input&gt;" in html and "&lt;w&gt;:1" in html
    assert rows[2][3] == f"{web.at(runs[2].claimed_at)} ({rows[2][3].split('(')[1]}"
    assert rows[0][5] == "" and rows[0][6] == ""  # no outcome, no error
    assert 'class="state state-failed"' in html
    assert 'title="no outcome within its run timeout (its deadline,' in html
    # a job without runs says so; a job gone with runs kept still has its page
    poller.schedule_job("never-run", 60)
    assert (
        Page(client.get("/jobs/never-run").text)
        .rows["runs"][0][0]
        .startswith("No run recorded yet")
    )
    poller.schedule_job("once", 0)  # no data: once handed out, nothing but its runs is left
    (once,) = poller.pending_jobs()
    assert poller.finish_run(once.occurrence_id, "boom")
    gone = page(client, "/jobs/once")
    assert gone.by_id["gone"].startswith("Neither scheduled nor holding data")
    assert gone.rows["runs"][0][:2] == ["failed", once.occurrence_id]
    assert "due" not in gone.by_id and "Data" not in client.get("/jobs/once").text
    with_actions = dashboard(allow_actions=True).get("/jobs/once").text
    assert "/actions/" not in with_actions
    poller.delete_job("once")
    assert client.get("/jobs/once").status_code == 404


def test_the_overview_lists_recent_failures_newest_first(
    solo: testing.RedisServer, solo_raw: redis.Redis, dashboard: Open
) -> None:
    poller = Scheduler(solo.client(), "rache:", name="w:1")
    client = dashboard()
    assert Page(client.get("/").text).rows["failures"] == [["No failed run recorded."]]
    nasty = '<b>x</b>&"'
    for n, job_id in enumerate(["a", nasty, "b"]):
        poller.schedule_job(job_id, 0, n=n)
        (job,) = poller.pending_jobs()
        poller.finish_run(job.occurrence_id, RuntimeError(f"failure {n} " + "x" * 200))
        poller.schedule_job("ok", 0, n=n)
        (fine,) = poller.pending_jobs()
        poller.finish_run(fine.occurrence_id)  # a success is not listed
    html = client.get("/").text
    shown = Page(html)
    failures = poller.failures()
    rows = shown.rows["failures"]
    assert [row[1] for row in rows] == ["b", nasty, "a"]
    assert [row[2] for row in rows] == [run.occurrence_id for run in failures]
    assert rows[0][3] == "w:1" and re.fullmatch(r"(now|\d+(\.\d+)?s ago)", rows[0][0])
    assert rows[0][4] == "RuntimeError: failure 2 " + "x" * 96 + "…"  # one line, cut
    assert f'title="RuntimeError: failure 2 {"x" * 200}"' in html  # whole, on hover
    assert shown.link(nasty) == web.job_path(nasty)
    data = client.get("/api/overview").json()
    assert [f["occurrence"] for f in data["failures"]] == [run.occurrence_id for run in failures]
    assert data["failures"][1]["url"] == web.job_path(nasty)


def test_the_recurring_page_shows_each_jobs_last_run_and_outcome(
    solo: testing.RedisServer, solo_raw: redis.Redis, dashboard: Open
) -> None:
    poller = Scheduler(solo.client(), "rache:", name="beat:1")
    now = poller.server_time()
    for job_id in ("failing", "fine", "idle", "running"):
        start = now + 60 if job_id == "idle" else now - 1
        poller.schedule_recurring(job_id, Every(3600), start=start)
    jobs = {job["id"]: job for job in poller.pending_jobs()}
    assert set(jobs) == {"failing", "fine", "running"}
    poller.finish_run(jobs["failing"].occurrence_id, KeyError("missing <key>"))
    poller.finish_run(jobs["fine"].occurrence_id)
    html = dashboard().get("/recurring").text
    assert '<th scope="col">Last run</th><th scope="col">Outcome</th>' in html
    rows = {row[0]: row for row in Page(html).rows["recurring-jobs"]}
    for job_id in ("failing", "fine", "running"):
        (run,) = poller.runs(job_id)
        assert rows[job_id][3].startswith(web.at(run.claimed_at) + " ")
    assert rows["failing"][4] == "failed KeyError: 'missing <key>'"
    assert "KeyError: &#39;missing &lt;key&gt;&#39;" in html
    assert (rows["fine"][4], rows["running"][4]) == ("succeeded", "running")
    assert rows["idle"][3:5] == ["never", ""]
    assert 'class="state state-failed"' in html and 'class="state state-succeeded"' in html


def test_the_find_box_and_missing_jobs(schedule: Scheduler, dashboard: Open) -> None:
    fill(schedule, jobs=0)
    client = dashboard()
    for job_id in NASTY_IDS:
        response = client.get("/job", params={"id": job_id})
        assert Page(response.text).by_id["job-id"] == job_id
    missing = page(client, "/job?id=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404)
    assert missing.by_id["message"].startswith("No job with id <script>alert(1)</script>:")
    assert missing.tags.count("script") == 1  # app.js, not the id
    assert client.get("/job?id=").status_code == 400
    assert client.get("/jobs/").status_code == 404


def _routes(job_id: str) -> List[str]:
    """A request of each route the dashboard serves (and some it does not)."""
    quoted = web.job_path(job_id)
    return [
        "/", "/api/overview", str(quoted), f"/job?id={job_id}", "/recurring", "/recurring?page=2",
        "/favicon.ico", "/static/app.js", "/static/style.css", "/static/favicon.svg",
        "/static/missing.js", "/actions/delete", "/actions/run", "/actions/reschedule",
        "/nowhere", "/jobs/unknown",
    ]  # fmt: skip


@pytest.mark.parametrize("actions", [False, True], ids=["read-only", "actions-allowed"])
def test_no_request_changes_redis_but_an_allowed_action(
    schedule: Scheduler, solo_raw: redis.Redis, dashboard: Open, actions: bool
) -> None:
    fill(schedule, jobs=20)
    client = dashboard(allow_actions=actions)
    token = client.settings.token  # type: ignore[attr-defined]
    served = {"/", "/api/overview", "/jobs/{job_id:path}", "/job", "/recurring", "/static"}
    served |= {"/favicon.ico"} | ({"/actions/{name}"} if actions else set())
    assert {route.path for route in client.app.routes} == served  # type: ignore[attr-defined]
    before = snapshot(solo_raw)
    statuses: Dict[str, set[int]] = {}
    for route in _routes('<b>x</b>&"'):
        for method in METHODS:
            form = {"id": '<b>x</b>&"', "in": "5", "unit": "m"}
            if not (actions and route.startswith("/actions/") and method == "POST"):
                form["token"] = token  # the right token, on every request but the actions
            response = client.request(method, route, data=form)
            statuses.setdefault(method, set()).add(response.status_code)
            assert response.status_code < 500, (method, route, response.text[:300])
    assert snapshot(solo_raw) == before
    assert statuses["GET"] == ({200, 404, 405} if actions else {200, 404})  # 405: actions
    assert statuses["PUT"] <= {404, 405}
    if not actions:
        assert (
            client.post("/actions/delete", data={"id": "job:00001", "token": token}).status_code
            == 404
        )


def test_actions_need_the_token_and_then_change_the_job(
    schedule: Scheduler, solo_raw: redis.Redis, dashboard: Open
) -> None:
    fill(schedule, jobs=5)
    client = dashboard(allow_actions=True)
    token = client.settings.token  # type: ignore[attr-defined]
    html = client.get(web.job_path('<b>x</b>&"') or "").text
    forms = Page(html).forms
    assert [f["action"] for f in forms if f.get("method") == "post"] == [
        "/actions/run", "/actions/reschedule", "/actions/delete"
    ]  # fmt: skip
    assert f'name="token" value="{token}"' in html
    before = snapshot(solo_raw)
    huge = {"token": token, "pad": "x" * 70_000}  # the right token, in a form too large
    for bad in ({}, {"token": ""}, {"token": token[:-1] + "x"}, {"token": token + "x"}, huge):
        response = client.post("/actions/delete", data={"id": "job:00001", **bad})
        assert response.status_code == 403 and "nothing was changed" in response.text
    assert client.post("/actions/run", data={"id": "unknown", "token": token}).status_code == 404
    bad_in = client.post("/actions/reschedule", data={"id": "job:00002", "in": "x", "token": token})
    assert bad_in.status_code == 400
    too_far = {"id": "job:00002", "in": "1e12", "unit": "d", "token": token}
    assert client.post("/actions/reschedule", data=too_far).status_code == 400
    recurring = client.post("/actions/run", data={"id": "heartbeat", "token": token})
    assert recurring.status_code == 400 and "runs on its rule" in recurring.text
    assert "run" not in re.findall(r"/actions/(\w+)", client.get("/jobs/heartbeat").text)
    assert snapshot(solo_raw) == before
    # with the token: each action does what it says
    nasty = '<b>x</b>&"'
    deleted = client.post("/actions/delete", data={"id": nasty, "token": token})
    assert deleted.status_code == 200
    assert Page(deleted.text).by_id["message"].startswith(f"Deleted job {nasty}:")
    assert solo_raw.zscore("rache:queue", nasty) is None
    assert not solo_raw.exists(f"rache:job:{nasty}")
    now = float(solo_raw.time()[0])
    moved = client.post(
        "/actions/reschedule",
        data={"id": "job:00001", "in": "2", "unit": "h", "token": token},
        follow_redirects=False,
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/jobs/job%3A00001"
    assert 7199 <= schedule.job_details("job:00001")["schedule_at"] - now <= 7202
    ran = client.post("/actions/run", data={"id": "job:00001", "token": token})
    assert ran.status_code == 200 and Page(ran.text).by_id["job-id"] == "job:00001"
    assert schedule.job_details("job:00001")["schedule_at"] <= float(solo_raw.time()[0])
    assert schedule.job_details("job:00001")["url"] == "https://example.com/1"  # data kept


def test_requests_must_name_an_allowed_host(schedule: Scheduler, dashboard: Open) -> None:
    client = dashboard(allow_actions=True)
    token = client.settings.token  # type: ignore[attr-defined]
    schedule.schedule_job("kept", 60)
    for host in ("evil.example", "127.0.0.1.evil.example"):
        assert client.get("/", headers={"Host": host}).status_code == 400
        response = client.post(
            "/actions/delete", data={"id": "kept", "token": token}, headers={"Host": host}
        )
        assert response.status_code == 400
    assert schedule.job_details("kept")["schedule_at"] is not None
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/", headers={"Host": host}).status_code == 200
    proxied = dashboard(allowed_hosts=["rache.example.com"])
    assert proxied.get("/", headers={"Host": "rache.example.com"}).status_code == 200
    assert proxied.get("/", headers={"Host": "127.0.0.1"}).status_code == 400
    assert web.Settings(url="", prefix="", bound="0.0.0.0").hosts() == ["*"]


def test_redis_down_is_said_not_a_traceback(dashboard: Open) -> None:
    port = port_for.select_random()
    client = dashboard(url=f"redis://:secret@127.0.0.1:{port}/0")
    response = client.get("/")
    assert response.status_code == 503 and "Redis unavailable" in response.text
    assert client.get("/api/overview").status_code == 503
    assert "error" in client.get("/api/overview").json()
    assert "secret" not in client.get("/recurring").text + client.get("/").text


def test_a_sharded_schedule(
    solo_raw: redis.Redis, solo: testing.RedisServer, dashboard: Open
) -> None:
    empty = dashboard(shards=3)
    assert "No schedule of 3 shards is recorded" in empty.get("/").text
    for route in _routes("x"):
        empty.get(route)
    assert solo_raw.dbsize() == 0  # nothing recorded: the dashboard writes nothing
    sharded = Scheduler(solo.client(), "rache:", shards=3)
    fill(sharded, jobs=30)
    client = dashboard(shards=3)
    shown = Page(client.get("/").text)
    assert shown.by_id["total"] == "47"
    earliest = [job_id for job_id, _ in zip(sharded.scheduled_jobs(), range(25))]
    assert [text for href, text in shown.links if href.startswith(("/jobs/", "/job?"))] == earliest
    for job_id in NASTY_IDS:
        assert page(client, shown.link(job_id)).by_id["job-id"] == job_id
    assert "cron 30 2 * * * (Europe/Paris)" in client.get("/recurring").text
    assert "every 60 s" in client.get("/recurring").text
    with pytest.raises(ConfigurationError, match="3 shard"):  # rache web checks it first
        asyncio.run(web.preflight(web.Settings(url=solo.url, prefix="rache:")))
    refused = CliRunner().invoke(main, ["web", "--url", solo.url, "--prefix", "rache:"])
    assert refused.exit_code == 2 and "laid out in 3 shard(s), not 1" in refused.output
    group = CliRunner().invoke(main, ["--shards", "2", "web", "--url", solo.url])  # rache's own
    assert group.exit_code == 2 and "laid out in 3 shard(s), not 2" in group.output


@pytest.fixture
def cluster(
    solo: testing.RedisServer,
    clusters: Dict[str, testing.RedisClusterServers],
    tmp_path_factory: pytest.TempPathFactory,
) -> testing.RedisClusterServers:
    """A 3-master cluster of the ``solo`` server's binary (the session's, if started)."""
    if solo.spec.kind != "binary":
        pytest.skip(f"a cluster needs a redis-server binary, not {solo.spec.describe()}")
    label = solo.spec.label
    if label not in clusters:
        folder = tmp_path_factory.mktemp(f"cluster-{label}")
        clusters[label] = testing.start_cluster(solo.spec, folder)
    return clusters[label]


def test_redis_cluster_sharded_and_in_one_slot(
    cluster: testing.RedisClusterServers, dashboard: Open
) -> None:
    client = cluster.client()
    client.flushall()
    node = cluster.nodes[0]
    for prefix, shards in (("web:", 3), ("{web}:", 1)):
        fill(Scheduler(client, prefix, shards=shards), jobs=30)
        before = {key: client.dump(key) for key in client.scan_iter(target_nodes="all")}
        web_client = dashboard(url=node.url, prefix=prefix, cluster=True, shards=shards)
        shown = Page(web_client.get("/").text)
        assert shown.by_id["total"] == "47"
        for job_id in NASTY_IDS:
            assert page(web_client, shown.link(job_id)).by_id["job-id"] == job_id
        assert "every 60 s" in web_client.get("/recurring").text
        after = {key: client.dump(key) for key in client.scan_iter(target_nodes="all")}
        assert after == before
    client.close()


def test_the_least_privilege_user_of_the_readme(
    solo: testing.RedisServer, tmp_path: Any, dashboard: Open
) -> None:
    if solo.spec.kind != "binary":
        pytest.skip(f"an ACL user needs a server of our own, not {solo.spec.describe()}")
    server = testing.start(solo.spec, tmp_path)
    try:
        admin = server.client(decode_responses=True)
        grant(admin, "pw-web")
        fill(Scheduler(server.client(), "rache:"), jobs=10)
        admin.script_flush()  # the user loads the scripts itself
        admin.acl_log_reset()
        url = f"redis://rache:pw-web@{server.host}:{server.port}/0"
        client = dashboard(url=url, allow_actions=True)
        token = client.settings.token  # type: ignore[attr-defined]
        shown = Page(client.get("/").text)
        assert shown.by_id["total"] == "27"
        for job_id in NASTY_IDS:
            assert page(client, shown.link(job_id)).by_id["job-id"] == job_id
        assert "cron 30 2 * * * (Europe/Paris)" in page_text(client, "/recurring")
        assert client.get("/api/overview").status_code == 200
        client.post("/actions/reschedule", data={"id": "job:00001", "in": "1", "token": token})
        client.post("/actions/delete", data={"id": "job:00002", "token": token})
        assert admin.zscore("rache:queue", "job:00002") is None
        assert refusals(admin) == []  # nothing it sent was refused
    finally:
        server.stop()


def page_text(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text[:300]
    return response.text


def test_the_command_url_and_prefix_win_and_it_stops_on_sigterm(
    schedule: Scheduler, solo: testing.RedisServer
) -> None:
    Scheduler(solo.client(), "other:").schedule_job("other-job", 60)
    schedule.schedule_job("mine", 60)
    dead = f"redis://127.0.0.1:{port_for.select_random()}/0"
    env = {"REDIS_URL": dead, "RACHE_REDIS_PREFIX": "other:"}
    process, address = start_web(solo.url, "--prefix", "rache:", env=env)
    try:
        import httpx

        html = httpx.get(address).text
        assert Page(html).link("mine") == "/jobs/mine" and "other-job" not in html
        assert httpx.get(address + "static/app.js").status_code == 200
    finally:
        status, err = stop(process)
    assert status == 0, err
    # the environment alone: that prefix; behind a proxy's path, links under it
    env["REDIS_URL"] = solo.url
    process, address = start_web("", "--root-path", "/rache", env=env)
    try:
        import httpx

        html = httpx.get(address).text
        assert Page(html).link("other-job") == "/rache/jobs/other-job"
        assert 'src="/rache/static/app.js"' in html
        job = httpx.get(address + "jobs/other-job")  # as the proxy sends it, path stripped
        assert Page(job.text).by_id["job-id"] == "other-job"
    finally:
        assert stop(process)[0] == 0
    down = subprocess.run(
        [sys.executable, "-m", "rache", "web", "--url", dead], capture_output=True, text=True
    )
    assert down.returncode == 1 and down.stderr.startswith("rache: cannot reach Redis at")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run(
            [sys.executable, "-m", "rache", "web", "--url", solo.url, "--port", port],
            capture_output=True,
            text=True,
        )
    assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr


def test_without_the_extra_the_command_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; sys.argv = ['rache', 'web'];"
        "from rache.__main__ import main; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == (
        "rache: rache web needs starlette, uvicorn and jinja2: "
        "pip install '.[web]' in rache's checkout\n"
    )
