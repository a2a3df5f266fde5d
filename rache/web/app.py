"""``rache web``: an operator's dashboard of a schedule, in a browser.

Needs Starlette, uvicorn and Jinja2 (``pip install 'rache[web]'``). Every page is read
afresh from Redis through the public API (``stats``, one page of ``scheduled_jobs``,
``job_details``) and writes nothing. Actions (delete, run now, reschedule) exist only when
the dashboard is started with ``allow_actions``, and then only as POSTs that carry the
form's token (CSRF), from a page this server rendered. Requests must name an allowed host
(``Host`` header), so that a web page elsewhere cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hmac
import ipaddress
import math
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, quote, unquote

import redis
import redis.asyncio

from .. import config
from ..aio import AsyncScheduler
from ..errors import ConfigurationError, JobNotFound, MissingExtra
from ..models import Job, Stats
from ..rules import from_details
from ..rules import zone as rules_zone

try:
    import jinja2
    import markupsafe  # Jinja2's
    import uvicorn
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        HTMLResponse,
        JSONResponse,
        RedirectResponse,
        Response,
    )
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError:  # pragma: no cover - depends on the installed extras
    raise MissingExtra("rache web", "starlette, uvicorn and jinja2", "web") from None

#: Templates and static files, shipped as package data.
UI = Path(__file__).resolve().parents[1] / "webui"
#: The jobs listed on the overview: one page of the schedule, earliest first.
OVERVIEW_JOBS = 25
#: Recurring jobs per page of /recurring.
RECURRING_PAGE = 50
#: The overview's chart: jobs falling due in each of this many intervals of this length.
CHART_INTERVALS = 60
CHART_INTERVAL = 60
#: How often the overview's figures refresh in the browser, seconds.
REFRESH = 2.0
#: Host names a dashboard bound to a loopback address answers to.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
#: The largest action form read, bytes (an id, a token, a duration).
MAX_FORM = 64 * 1024
#: Units of the reschedule form, in seconds.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Headers of every response: nothing cached, nothing inline or from elsewhere.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Settings:
    """What a dashboard shows, and what it allows.

    :param url: the Redis URL (credentials are never shown).
    :param prefix: the schedule's key prefix.
    :param cluster: ``url`` names a node of a Redis Cluster.
    :param shards: the schedule's shard count.
    :param allow_actions: offer delete, run now and reschedule (POST, with a CSRF token).
    :param allowed_hosts: the host names requests may carry; empty: the loopback names
        and the address bound to.
    :param bound: the address the server listens on, for ``allowed_hosts``' default.
    """

    url: str
    prefix: str
    cluster: bool = False
    shards: int = 1
    allow_actions: bool = False
    allowed_hosts: Sequence[str] = ()
    bound: str = "127.0.0.1"
    #: the CSRF token that every action's form carries; new for each process
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def hosts(self) -> List[str]:
        """The host names this dashboard answers to (``*``: any)."""
        if self.allowed_hosts:
            return [_bracketed(host) for host in self.allowed_hosts]
        if _is_wildcard(self.bound):
            return ["*"]
        return sorted({_bracketed(host) for host in (*LOOPBACK_NAMES, self.bound)})


def _bracketed(host: str) -> str:
    """An IPv6 address as a ``Host`` header names it: ``[::1]``."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# -- formatting ------------------------------------------------------------------------------


def at(due: Optional[float]) -> str:
    """A due time as UTC text, with milliseconds when it has them."""
    if due is None:
        return "not scheduled"
    moment = datetime.datetime.fromtimestamp(due, datetime.timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if not float(due).is_integer():
        text += f".{moment.microsecond // 1000:03d}"
    return text + " UTC"


def span(seconds: float) -> str:
    """A length of time, its two largest units: ``2m 10s``, ``3d 4h``, ``0.25s``."""
    seconds = abs(seconds)
    if seconds < 10 and not float(seconds).is_integer():
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    whole = round(seconds)
    if whole >= 3600:  # rounded to the smaller unit shown: 2h 59m 59.6s is 3h
        unit = 3600 if whole >= 86400 else 60
        whole = round(seconds / unit) * unit
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours)
    parts += [f"{minutes}m"] * bool(minutes) + [f"{secs}s"] * bool(secs)
    return " ".join(parts[:2]) or "0s"


def relative(due: Optional[float], now: float) -> str:
    """``in 5m 3s``, ``12s overdue`` or ``now``."""
    if due is None:
        return ""
    delta = due - now
    if abs(delta) < 0.5:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} overdue"


def text(value: Any) -> str:
    """A job id or value as text: bytes that are not UTF-8 as Python writes them."""
    return repr(value) if isinstance(value, bytes) else str(value)


def job_path(job_id: Any) -> Optional[str]:
    """The path of a job's page (its id URL-encoded whole), None for an id that is bytes.

    ``.`` and ``..`` would be dot segments, which browsers remove from a path even
    percent-encoded: theirs is ``/job?id=...``, the find box's address.
    """
    if not isinstance(job_id, str):
        return None
    quoted = quote(job_id, safe="")
    return f"/job?id={quoted}" if job_id in (".", "..") else f"/jobs/{quoted}"


def describe_rule(rule: Dict[str, Any]) -> str:
    """A rule as it was given: ``every 60 s``, or the cron expression and its time zone."""
    return str(from_details(rule))


def local(due: float, rule: Optional[Dict[str, Any]]) -> str:
    """A cron rule's occurrence on its zone's wall clock (``02:30 CET``); '' for UTC."""
    if rule is None or rule.get("timezone", "UTC") == "UTC":
        return ""
    try:
        zone = rules_zone(rule["timezone"])
    except ValueError:  # a zone this host does not know: UTC only
        return ""
    moment = datetime.datetime.fromtimestamp(due, zone)
    return moment.strftime(f"%Y-%m-%d %H:%M:%S %Z in {rule['timezone']}")


def describe_misfire(rule: Dict[str, Any]) -> str:
    """The misfire policy, with its grace for ``skip``."""
    if rule["misfire"] == "skip":
        return f"skip (if more than {span(rule['grace'])} late)"
    return str(rule["misfire"])


def figures(stats: Stats) -> Dict[str, Any]:
    """The overview's figures, as shown and as numbers."""
    oldest = stats.earliest if stats.due else None
    return {
        "now": stats.now,
        "now_text": at(stats.now),
        "total": f"{stats.total:,}",
        "due": f"{stats.due:,}",
        "lag": span(stats.lag) if stats.due else "none due",
        "lag_at": f"oldest due {at(oldest)}" if oldest is not None else "",
        "next_due": relative(stats.next_due, stats.now) or "nothing to come",
        "next_due_at": at(stats.next_due) if stats.next_due is not None else "",
        "numbers": {
            "total": stats.total,
            "due": stats.due,
            "lag": stats.lag,
            "earliest": stats.earliest,
            "next_due": stats.next_due,
            "coming": stats.coming,
            "interval": stats.interval,
        },
    }


#: The chart's drawing area, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 600, 150


def chart(stats: Stats) -> Dict[str, Any]:
    """The bars of the chart of jobs falling due in each coming interval."""
    coming = stats.coming
    peak = max(coming, default=0)
    width = CHART_WIDTH / max(1, len(coming))
    bars = []
    for i, count in enumerate(coming):
        height = 0.0 if not peak else max(1.0, CHART_HEIGHT * count / peak) if count else 0.0
        start = span(i * stats.interval)
        bars.append(
            {
                "x": round(i * width + 0.5, 2),
                "y": round(CHART_HEIGHT - height, 2),
                "width": round(max(1.0, width - 1), 2),
                "height": round(height, 2),
                "title": f"{count:,} due in +{start} to +{span((i + 1) * stats.interval)}",
            }
        )
    window = span(len(coming) * stats.interval)
    label = (
        f"Jobs falling due in each {span(stats.interval)} of the next {window}: "
        f"{sum(coming):,} in all, at most {peak:,} in one interval"
    )
    middle = span(len(coming) * stats.interval / 2)
    return {"bars": bars, "peak": f"{peak:,}", "label": label, "window": window, "middle": middle}


def values(job: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(field, value as text, type) of each data field of a job, by field name."""
    shown = []
    for key, value in job.items():
        if key in ("id", "schedule_at", "recurring", "next_occurrences"):
            continue
        shown.append((text(key), text(value), type(value).__name__))
    return sorted(shown)


# -- reading Redis ---------------------------------------------------------------------------


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
        self.client = cls.from_url(settings.url)
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
        """The figures, the chart and the earliest jobs, read now."""
        scheduler = await self.scheduler()
        jobs: List[Tuple[Any, float]] = []
        if scheduler is None:
            coming = [0] * CHART_INTERVALS
            stats = Stats(await self.now(), 0, 0, None, None, coming, float(CHART_INTERVAL))
        else:  # both at once: one round trip
            stats, jobs = await asyncio.gather(
                scheduler.stats(CHART_INTERVALS, CHART_INTERVAL), earliest(scheduler)
            )
        listed = [
            {
                "id": text(job_id),
                "url": job_path(job_id),
                "at": at(due),
                "relative": relative(due, stats.now),
                "overdue": due <= stats.now,
            }
            for job_id, due in jobs
        ]
        return {
            **figures(stats),
            "chart": chart(stats),
            "jobs": listed,
            "recorded": scheduler is not None,
        }

    async def job(self, job_id: str) -> Tuple[Job, float]:
        """A job's details and the server's time.

        :raises JobNotFound: no such job (or no schedule yet).
        """
        scheduler = await self.scheduler()
        if scheduler is None or not job_id:
            raise JobNotFound(job_id)
        job = await scheduler.job_details(job_id)
        return job, await self.now()

    async def recurring(self, page: int) -> Tuple[List[Dict[str, Any]], int, float]:
        """One page of the recurring jobs, by id: their details, the total, and the time.

        The ids come from ``recurring_jobs`` (one script call per shard); the details only
        for the page's jobs.
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

    async def _details(self, scheduler: AsyncScheduler, job_id: Any) -> Optional[Dict[str, Any]]:
        if not isinstance(job_id, str):  # not UTF-8: not a job id rache's API takes
            return {"id": job_id}
        try:
            return await scheduler.job_details(job_id)
        except JobNotFound:  # deleted since the ids were read
            return None


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


# -- the web application ---------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(UI / "templates")),
        autoescape=True,  # everything from Redis is escaped once, by the template
        undefined=jinja2.StrictUndefined,
    )
    env.filters["at"] = at
    env.filters["job_path"] = job_path
    env.filters["text"] = text
    env.globals.update(describe_rule=describe_rule, describe_misfire=describe_misfire)
    return env


class App:
    """The pages, the JSON endpoint and, when allowed, the actions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dashboard = Dashboard(settings)
        self.templates = _environment()

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """Render a template, with what every page shows."""
        settings = self.settings
        context.update(
            root=request.scope.get("root_path", "").rstrip("/"),
            prefix=settings.prefix,
            redis=config.hide_password(settings.url),
            shards=settings.shards,
            cluster=settings.cluster,
            actions=settings.allow_actions,
            token=settings.token,
        )
        body = self.templates.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def problem(self, request: Request, status: int, title: str, detail: str) -> Response:
        """An error page."""
        return self.page(request, "message.html", status, title=title, detail=detail)

    async def overview(self, request: Request) -> Response:
        """``/``: figures, the chart, the earliest jobs, the find box."""
        data = await self.dashboard.overview()
        return self.page(request, "overview.html", refresh=REFRESH, **data)

    async def overview_json(self, request: Request) -> Response:
        """``/api/overview``: what the overview shows, for its live refresh."""
        return JSONResponse(await self.dashboard.overview(), headers=HEADERS)

    async def job_page(self, request: Request) -> Response:
        """``/jobs/<id>``: one job."""
        return await self._job(request, path_id(request))

    async def find(self, request: Request) -> Response:
        """``/job?id=...``: the find box's answer, the job's page."""
        job_id = request.query_params.get("id", "")
        if not job_id:
            return self.problem(request, 400, "No job id", "Type a job's id to find it.")
        return await self._job(request, job_id)

    async def _job(self, request: Request, job_id: str) -> Response:
        try:
            job, now = await self.dashboard.job(job_id)
        except JobNotFound:
            return self.page(request, "message.html", 404, title="No such job", job_id=job_id)
        due = job["schedule_at"]
        rule = job.get("recurring")
        occurrences = [
            (at(t), relative(t, now), local(t, rule)) for t in job.get("next_occurrences", [])
        ]
        return self.page(
            request,
            "job.html",
            job_id=job_id,
            due=due,
            due_at=at(due),
            due_relative=relative(due, now),
            occurrence=job.occurrence_id if due is not None else None,
            fields=values(job),
            rule=rule,
            occurrences=occurrences,
            now=at(now),
            units=list(UNITS),
        )

    async def recurring(self, request: Request) -> Response:
        """``/recurring``: each recurring job's rule, next run and misfire policy."""
        try:
            page = max(0, int(request.query_params.get("page", "1")) - 1)
        except ValueError:
            return self.problem(request, 400, "Bad page", "page must be a whole number.")
        jobs, total, now = await self.dashboard.recurring(page)
        rows = []
        for job in jobs:
            upcoming = job.get("next_occurrences") or [job.get("schedule_at")]
            rows.append(
                {
                    "id": job["id"],
                    "rule": job.get("recurring"),
                    "next": at(upcoming[0]),
                    "relative": relative(upcoming[0], now),
                }
            )
        pages = max(1, math.ceil(total / RECURRING_PAGE))
        return self.page(
            request, "recurring.html", rows=rows, total=total, page=page + 1, pages=pages
        )

    async def favicon(self, request: Request) -> Response:
        """``/favicon.ico``, for browsers that ask for it whatever the page declares."""
        return FileResponse(UI / "static" / "favicon.svg", media_type="image/svg+xml")

    # -- actions (only when allowed) --

    async def _form(self, request: Request) -> Optional[Dict[str, str]]:
        """The POSTed form, or None when its CSRF token is missing or wrong (or it is huge)."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return None
        try:
            fields = parse_qs(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        form = {key: value[0] for key, value in fields.items()}
        token = form.get("token", "")
        if not hmac.compare_digest(token.encode(), self.settings.token.encode()):
            return None
        return form

    async def action(self, request: Request) -> Response:
        """``POST /actions/<delete|run|reschedule>``: change one job; the token first."""
        name = request.path_params["name"]
        form = await self._form(request)
        if form is None:
            return self.problem(
                request,
                403,
                "Refused",
                "The form's token is missing or wrong: nothing was changed. "
                "Reload the job's page and try again.",
            )
        job_id = form.get("id", "")
        scheduler = await self.dashboard.scheduler()
        if scheduler is None or name not in ("delete", "run", "reschedule"):
            return self.problem(request, 404, "No such action", "Nothing was changed.")
        try:
            job = await scheduler.job_details(job_id)
        except (JobNotFound, TypeError, ValueError):
            return self.page(request, "message.html", 404, title="No such job", job_id=job_id)
        if name == "delete":
            await scheduler.delete_job(job_id)
            return self.page(request, "message.html", title="Deleted", job_id=job_id, deleted=True)
        if job.get("recurring"):
            return self.problem(
                request,
                400,
                "A recurring job runs on its rule",
                "Moving it would only move where its rule resumes: nothing was changed.",
            )
        offset = 0.0
        if name == "reschedule":
            try:
                offset = float(form.get("in", "")) * UNITS[form.get("unit", "s")]
            except (KeyError, ValueError):
                return self.problem(
                    request, 400, "Bad duration", "Give a number and a unit: nothing changed."
                )
        try:
            await scheduler.schedule_job(job_id, int(offset) if offset.is_integer() else offset)
        except (TypeError, ValueError) as error:
            return self.problem(request, 400, "Refused", f"{error}: nothing was changed.")
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(root + str(job_path(job_id)), status_code=303, headers=HEADERS)


def path_id(request: Request) -> str:
    """The job id of a ``/jobs/<id>`` request, percent-decoded exactly once.

    From the raw path where the server gives it, as servers differ in how they decode a
    path (an id ``%2F`` is ``/jobs/%252F``, which must not become ``/``).
    """
    raw: bytes = request.scope.get("raw_path") or b""
    start = raw.find(b"/jobs/")
    if start < 0:
        return str(request.path_params["job_id"])
    return unquote(raw[start + len(b"/jobs/") :].decode("latin-1"))


async def _unavailable(request: Request, exc: Exception) -> Response:
    """Redis down or refusing: say so (as JSON for the live refresh), never a traceback."""
    down = isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
    message = f"Redis: {exc}"
    if request.url.path.endswith("/api/overview"):
        return JSONResponse({"error": message}, status_code=503 if down else 500, headers=HEADERS)
    title = "Redis unavailable" if down else "Redis refused"
    body = "<!doctype html><title>rache web</title><h1>{}</h1><p>{}</p>"
    page = body.format(title, _escape(message))
    return HTMLResponse(page, status_code=503 if down else 500, headers=HEADERS)


def _escape(value: str) -> str:
    return str(markupsafe.escape(value))


async def _bad_layout(request: Request, exc: Exception) -> Response:
    body = "<!doctype html><title>rache web</title><h1>Wrong layout</h1><p>{}</p>"
    return HTMLResponse(body.format(_escape(str(exc))), status_code=500, headers=HEADERS)


class ServerTiming:
    """ASGI middleware: each response says how long the server took (``Server-Timing``).

    From the request's arrival to the response's start (Redis reads and rendering), in
    milliseconds, as ``app;dur=12.3``: browsers' developer tools show it, and ``make
    bench-web`` reads it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={took:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)


def create_app(settings: Settings) -> Starlette:
    """The dashboard as an ASGI application (uvicorn serves it in ``rache web``)."""
    app = App(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await app.dashboard.start()
        try:
            yield
        finally:
            await app.dashboard.close()

    routes = [
        Route("/", app.overview, methods=["GET"]),
        Route("/api/overview", app.overview_json, methods=["GET"]),
        Route("/jobs/{job_id:path}", app.job_page, methods=["GET"]),
        Route("/job", app.find, methods=["GET"]),
        Route("/recurring", app.recurring, methods=["GET"]),
        Route("/favicon.ico", app.favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(UI / "static")), name="static"),
    ]
    if settings.allow_actions:
        routes.append(Route("/actions/{name}", app.action, methods=["POST"]))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(ServerTiming),
            Middleware(TrustedHostMiddleware, allowed_hosts=settings.hosts()),
        ],
        exception_handlers={
            redis.RedisError: _unavailable,
            ConfigurationError: _bad_layout,
        },
        lifespan=lifespan,
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: a free port), for the server to accept on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # from now on, connections wait for the server to accept them
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """The dashboard's URL on ``sock``."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    settings: Settings, host: str = "127.0.0.1", port: int = 8000, root_path: str = ""
) -> None:
    """Check Redis, then serve the dashboard in the foreground until SIGTERM or SIGINT.

    Prints the dashboard's URL first (with ``port=0``, the port chosen). ``root_path``:
    the path under which a reverse proxy serves it (``/rache``), for its links.
    """
    settings.bound = host
    asyncio.run(preflight(settings))
    app = create_app(settings)
    sock = listen(host, port)
    mode = "actions allowed" if settings.allow_actions else "read-only"
    print(
        f"rache web: {address(sock)} ({mode}) for prefix {settings.prefix!r} of "
        f"{config.hide_password(settings.url)}",
        flush=True,
    )
    if _is_wildcard(host) and not settings.allowed_hosts:
        print(
            "rache web: listening on every interface with no --allowed-host: put it behind "
            "a proxy that authenticates (see the docs)",
            file=sys.stderr,
            flush=True,
        )
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", root_path=root_path
        )
    )
    # uvicorn stops on SIGTERM or SIGINT once requests in flight are answered, then raises
    # the signal again for the handler it found: one that ignores it makes the exit status 0
    ignore = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in ignore.items():
            signal.signal(sig, handler)


def _stopped(signum: int, frame: Any) -> None:
    """The signal that stopped the server, raised again once it stopped: nothing more."""
