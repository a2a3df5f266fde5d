"""The pages, the JSON endpoint and, when allowed, the actions (POST, with a CSRF token)."""

from __future__ import annotations

import hmac
import math
from typing import Any, Dict, Optional
from urllib.parse import parse_qs, unquote

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from .. import config
from ..errors import JobNotFound
from ..formatting import UNITS, at, literal, relative
from .dashboard import Dashboard
from .display import (
    describe_misfire,
    describe_rule,
    job_path,
    occurrences,
    recurring_rows,
    run_rows,
    values,
)
from .settings import HEADERS, MAX_FORM, RECURRING_PAGE, REFRESH, UI, Settings


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(UI / "templates")),
        autoescape=True,  # everything from Redis is escaped once, by the template
        undefined=jinja2.StrictUndefined,
    )
    env.filters["at"] = at
    env.filters["job_path"] = job_path
    env.filters["text"] = literal
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
            job, runs, now = await self.dashboard.job(job_id)
        except JobNotFound:
            return self.page(request, "message.html", 404, title="No such job", job_id=job_id)
        due = job["schedule_at"] if job is not None else None
        rule = job.get("recurring") if job is not None else None
        return self.page(
            request,
            "job.html",
            job_id=job_id,
            gone=job is None,
            due=due,
            due_at=at(due),
            due_relative=relative(due, now),
            occurrence=job.occurrence_id if job is not None and due is not None else None,
            fields=values(job) if job is not None else [],
            rule=rule,
            occurrences=occurrences(job, now) if job is not None else [],
            runs=run_rows(runs, now),
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
        pages = max(1, math.ceil(total / RECURRING_PAGE))
        return self.page(
            request,
            "recurring.html",
            rows=recurring_rows(jobs, now),
            total=total,
            page=page + 1,
            pages=pages,
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
