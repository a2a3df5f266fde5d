"""rache.web.display: what the dashboard's pages show, from what the Redis side read."""

from __future__ import annotations

import pytest

from rache.models import Stats

display = pytest.importorskip("rache.web.display", exc_type=ImportError)

NOW = 1_796_664_600.0  # 2026-12-07 17:30:00 UTC


def test_a_job_page_path() -> None:
    assert display.job_path("feed:1") == "/jobs/feed%3A1"
    assert display.job_path("a/b?c") == "/jobs/a%2Fb%3Fc"  # the id whole, one segment
    assert display.job_path("..") == "/job?id=..", "a dot segment browsers would remove"
    assert display.job_path(b"\xff") is None  # bytes: no id the API takes


def test_the_figures_of_an_empty_schedule() -> None:
    shown = display.figures(Stats(NOW, 0, 0, None, None, [0] * 3, 60.0))
    assert (shown["total"], shown["due"], shown["lag"]) == ("0", "0", "none due")
    assert shown["next_due"] == "nothing to come" and shown["next_due_at"] == ""
    assert shown["now_text"] == "2026-12-07 17:30:00 UTC"


def test_the_figures_of_a_busy_schedule() -> None:
    shown = display.figures(Stats(NOW, 12_345, 1_000, NOW - 130, NOW + 90.5, [1, 2], 60.0))
    assert (shown["total"], shown["due"], shown["lag"]) == ("12,345", "1,000", "2m 10s")
    assert shown["lag_at"] == "oldest due 2026-12-07 17:27:50 UTC"
    assert shown["next_due"] == "in 1m 30s"
    assert shown["next_due_at"] == "2026-12-07 17:31:30.500 UTC"
    assert shown["numbers"]["coming"] == [1, 2]


def test_the_chart() -> None:
    chart = display.chart(Stats(NOW, 3, 0, NOW + 1, NOW + 1, [0, 2, 1], 60.0))
    heights = [bar["height"] for bar in chart["bars"]]
    assert heights == [0.0, display.CHART_HEIGHT, display.CHART_HEIGHT / 2]
    assert chart["bars"][1]["title"] == "2 due in +1m to +2m"
    assert chart["window"] == "3m" and chart["peak"] == "2"
    assert chart["label"].startswith("Jobs falling due in each 1m of the next 3m: 3 in all")
    empty = display.chart(Stats(NOW, 0, 0, None, None, [0, 0], 60.0))
    assert [bar["height"] for bar in empty["bars"]] == [0.0, 0.0]


def test_a_job_s_fields_by_name() -> None:
    job = {"id": "a", "schedule_at": NOW, "n": 3, "b": b"\xff", "next_occurrences": []}
    assert display.values(job) == [("b", "b'\\xff'", "bytes"), ("n", "3", "int")]


def test_the_lists_of_the_pages() -> None:
    rows = display.job_rows([("a", NOW - 12), (b"\xff", NOW + 60)], NOW)
    assert [row["relative"] for row in rows] == ["12s overdue", "in 1m"]
    assert [row["overdue"] for row in rows] == [True, False]
    assert [row["url"] for row in rows] == ["/jobs/a", None]
    assert rows[1]["id"] == "b'\\xff'"
    job = {"id": "r", "schedule_at": NOW + 5, "recurring": {"every": 5}}
    assert display.recurring_rows([(job, [])], NOW)[0]["relative"] == "in 5s"  # the due time
    job["next_occurrences"] = [NOW + 5, NOW + 10]
    assert [shown[1] for shown in display.occurrences(job, NOW)] == ["in 5s", "in 10s"]
    assert display.recurring_rows([({"id": b"\xff"}, [])], NOW)[0]["next"] == "not scheduled"


def test_the_lag_level_ok_warning_bad_by_the_thresholds() -> None:
    def level(lag: float, due: int = 1) -> tuple[str, str]:
        shown = display.figures(Stats(NOW, 5, due, NOW - lag, NOW - lag, [], 60.0))
        return shown["lag_level"], shown["lag_note"]

    assert level(0, due=0) == ("ok", "")
    assert level(59.9) == level(60) == ("ok", "within 1m")
    assert level(60.5) == level(300) == ("warning", "more than 1m late")
    assert level(300.5) == level(86400) == ("bad", "more than 5m late")


def test_pollers_as_the_overview_lists_them() -> None:
    from rache import Poller

    busy = Poller("w:1", "rache dispatch", "host-a", 7, "0.4", NOW - 99, NOW - 3, 12_345, 2)
    idle = busy._replace(name="w:2", last_claim=None, handed_out=0, failures=0)
    rows = display.poller_rows([busy, idle], NOW)
    assert rows[0] == {
        "name": "w:1", "kind": "rache dispatch", "host": "host-a (pid 7)", "version": "0.4",
        "started": "1m 39s ago", "last_claim": "3s ago",
        "last_claim_at": "2026-12-07 17:29:57 UTC", "handed_out": "12,345", "failures": "2",
        "failing": True,
    }  # fmt: skip
    assert (rows[1]["last_claim"], rows[1]["last_claim_at"], rows[1]["failing"]) == (
        "never", "", False
    )  # fmt: skip


def test_the_verdict_in_words() -> None:
    from rache import Health, Problem

    stats = Stats(NOW, 1, 1, NOW - 1, NOW - 1, [], 60.0)
    assert display.verdict(None)["title"] == "Nothing to judge: no schedule yet"
    assert display.verdict(Health(True, [], stats, [])) == {
        "ok": True, "title": "Healthy: 0 live pollers, no due job more than 5m late",
        "problems": [],
    }  # fmt: skip
    problems = [Problem("late", "a", "job 'a' is late"), Problem("no live poller", None, "none")]
    shown = display.verdict(Health(False, problems, stats, []))
    assert shown["title"] == "Unhealthy: 2 problems" and shown["ok"] is False
    assert shown["problems"][0] == {"kind": "late", "message": "job 'a' is late"}


def _run(**fields: object) -> object:
    from rache import Run

    values: dict[str, object] = dict(
        occurrence_id="a:1796664000", job_id="a", due=1_796_664_000, claimed_at=NOW - 600,
        claimed_by="w:1", state="succeeded", finished_at=NOW - 590, error=None, attempts=0,
        deadline=NOW - 540,
    )  # fmt: skip
    values.update(fields)
    return Run(**values)  # type: ignore[arg-type]


def test_runs_states_and_attempts_in_words() -> None:
    assert display.state_text(_run()) == "succeeded"
    assert display.state_text(_run(attempts=1)) == "succeeded (after 1 failed attempt)"
    assert display.state_text(_run(state="failed", attempts=2)) == (
        "failed (after 2 failed attempts)"
    )
    assert display.state_text(_run(state="running", attempts=3)) == "running (3 failed attempts)"
    assert display.state_text(_run(state="skipped", error="overlap")) == "skipped"
    unknown = display.state_title(_run(state="unknown", finished_at=None))
    assert unknown.startswith("no outcome within its run timeout (its deadline, 2026-12-07 17:21")
    assert display.state_title(_run(state="skipped", error="overlap")) == (
        "not handed out: overlap"
    )
    assert display.state_title(_run()) == ""


def test_a_jobs_runs_rows() -> None:
    skipped = _run(state="skipped", claimed_at=None, claimed_by=None, finished_at=None,
                   error="overlap", deadline=None)  # fmt: skip
    failed = _run(state="failed", error="ValueError: bad\nline 2")
    rows = display.run_rows([failed, skipped], NOW)
    assert rows[0]["state"] == "failed" and rows[0]["error"] == "ValueError: bad\nline 2"
    assert rows[0]["claimed_at"] == "2026-12-07 17:20:00 UTC"
    assert rows[0]["claimed_ago"] == "10m ago" and rows[0]["finished_ago"] == "9m 50s ago"
    assert rows[0]["due"] == "2026-12-07 17:20:00 UTC"
    assert (rows[1]["claimed_at"], rows[1]["claimed_by"], rows[1]["finished_at"]) == ("", "", "")


def test_failures_and_the_last_run_cut_errors_to_a_line() -> None:
    long = "RuntimeError: " + "x" * 300
    rows = display.failure_rows([_run(state="failed", error=long), _run(job_id=b"\xff")], NOW)
    assert rows[0]["error"] == long[:120] + "…" and rows[0]["error_full"] == long
    assert rows[0]["url"] == "/jobs/a" and rows[0]["failed_ago"] == "9m 50s ago"
    assert (rows[1]["id"], rows[1]["url"]) == ("b'\\xff'", None)
    assert display.short("one\ntwo") == "one…"
    assert display.short(None) == "" and display.short("ok") == "ok"
    assert display.last_run([], NOW) is None
    last = display.last_run([_run(state="failed", error="E: a\nb"), _run()], NOW)
    assert last is not None
    assert (last["ago"], last["state"], last["error"]) == ("10m ago", "failed", "E: a…")
    skipped = display.last_run([_run(state="skipped", claimed_at=None)], NOW)
    assert skipped is not None and skipped["at"] == "2026-12-07 17:20:00 UTC"
