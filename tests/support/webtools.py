"""What the dashboard's tests share.

Awkward ids, a page's text as a browser reads it, a schedule to show, and ``rache web`` run
as a real process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: Debian's chromium: Playwright's own browser download cannot work here.
CHROMIUM = os.environ.get("RACHE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

#: Ids that markup, URLs or text encodings could mangle: each must read exactly so in the
#: page, and its link lead to its own page.
NASTY_IDS = [
    '<b>x</b>&"',
    "&amp;",
    "a/b",
    "/lead",
    "trail/",
    "a?b=1&c=2",
    "#frag",
    "100%",
    "%2F",
    "with space",
    "a+b",
    "ünïcødé ☃ 日本",
    "'quote'",
    ".",
    "..",
]


class Page(HTMLParser):
    """A page's links (href, text) and the text of each element with an id, unescaped once.

    The text is what a browser shows: an id escaped twice in the markup would read
    ``&amp;...`` here, one not escaped would be markup (and not text) here. ``rows`` holds
    the rows of each ``tbody`` with an id, each a list of its cells' text.
    """

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: List[Tuple[str, str]] = []
        self.by_id: Dict[str, str] = {}
        self.forms: List[Dict[str, str]] = []
        self.tags: List[str] = []
        self.rows: Dict[str, List[List[str]]] = {}
        self._body: Optional[str] = None  # the id of the tbody being read
        self._open: List[Tuple[str, Optional[str], Optional[str], List[str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag == "form":
            self.forms.append({k: v or "" for k, v in found.items()})
        if tag in ("meta", "link", "input", "br", "img"):
            return
        if tag == "tbody" and found.get("id"):
            self._body = found["id"]
            self.rows[self._body or ""] = []
        if tag == "tr" and self._body is not None:
            self.rows[self._body].append([])
        self._open.append((tag, found.get("id"), found.get("href"), []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, element_id, href, parts = self._open.pop()
            content = "".join(parts)
            if self._open:
                self._open[-1][3].append(content)
            if element_id:
                self.by_id[element_id] = content
            if name == "a" and href is not None:
                self.links.append((href, content))
            if name in ("td", "th") and self._body is not None and self.rows[self._body]:
                self.rows[self._body][-1].append(content.strip())
            if name == "tbody":
                self._body = None
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][3].append(data)

    def link(self, text: str) -> str:
        """The href of the one link whose text is exactly ``text``."""
        hrefs = [href for href, content in self.links if content == text]
        assert len(hrefs) == 1, (text, self.links)
        return hrefs[0]


def start_web(
    url: str, *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 20
) -> Tuple[subprocess.Popen[str], str]:
    """``python -m rache web --port 0 ARGS...`` on ``url``; the process and its address."""
    unset = ("REDIS_URL", "RACHE_REDIS_PREFIX")  # not the host's: only what ``env`` says
    environ = {key: value for key, value in os.environ.items() if key not in unset}
    environ.update(env or {})
    command = [sys.executable, "-m", "rache", "web", "--port", "0", *args]
    if url:
        command += ["--url", url]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = process.stdout.readline()  # the one line it prints once it listens
    if not line.startswith("rache web: http://"):
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"rache web did not start: {line!r} {err}")
    assert time.monotonic() < deadline
    return process, line.split()[2]


def stop(process: subprocess.Popen[str]) -> Tuple[int, str]:
    """Stop a dashboard as a service manager does (SIGTERM); its exit status and stderr."""
    process.terminate()
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=10)
    return process.returncode, err


def fill(scheduler: Any, jobs: int = 200, ids: Sequence[str] = NASTY_IDS) -> None:
    """Fill a schedule: ``jobs`` spread over the next hour, the awkward ids due, two recurring."""
    from rache import Cron, Every

    scheduler.schedule_jobs(
        [(f"job:{n:05d}", 5 + n * 3600 // jobs, {"n": n, "url": f"https://example.com/{n}"})
         for n in range(jobs)]
    )  # fmt: skip
    for i, job_id in enumerate(ids):
        scheduler.schedule_job(job_id, -100 + i, kind="nasty", text=job_id)
    scheduler.schedule_recurring("heartbeat", Every(60), data={"url": "https://example.com/ping"})
    scheduler.schedule_recurring(
        "report",
        Cron("30 2 * * *", timezone="Europe/Paris", misfire="skip", grace=300),
    )
