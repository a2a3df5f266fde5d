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
    assert display.recurring_rows([job], NOW)[0]["relative"] == "in 5s"  # the due time
    job["next_occurrences"] = [NOW + 5, NOW + 10]
    assert [shown[1] for shown in display.occurrences(job, NOW)] == ["in 5s", "in 10s"]
    assert display.recurring_rows([{"id": b"\xff"}], NOW)[0]["next"] == "not scheduled"
