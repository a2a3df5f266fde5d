"""``rache web``: an operator's dashboard of a schedule, in a browser.

Needs Starlette, uvicorn and Jinja2 (the ``web`` extra: ``pip install '.[web]'`` in
rache's checkout). Every page is read afresh from Redis through the public API
(``stats``, one page of ``scheduled_jobs``, ``job_details``) and writes nothing. Actions
(delete, run now, reschedule) exist only when the dashboard is started with
``allow_actions``, and then only as POSTs that carry the form's token (CSRF), from a page
this server rendered. Requests must name an allowed host (``Host`` header), so that a web
page elsewhere cannot reach it by DNS rebinding.

The package, by what each part is: ``settings`` (what it shows and allows, the headers),
``dashboard`` (the Redis side), ``display`` (what the pages show, as text), ``app`` (the
pages and actions), ``server`` (the ASGI application, serving it).
"""

from __future__ import annotations

from ..errors import MissingExtra

try:  # what every part below needs, checked once
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:  # pragma: no cover - depends on the installed extras
    raise MissingExtra("rache web", "starlette, uvicorn and jinja2", "web") from None

from ..formatting import at, relative, span
from .app import App, path_id
from .dashboard import Dashboard, earliest, preflight
from .display import chart, describe_misfire, describe_rule, figures, job_path, local, values
from .server import ServerTiming, address, create_app, listen, serve
from .settings import HEADERS, UI, Settings

__all__ = [
    "HEADERS",
    "UI",
    "App",
    "Dashboard",
    "ServerTiming",
    "Settings",
    "address",
    "at",
    "chart",
    "create_app",
    "describe_misfire",
    "describe_rule",
    "earliest",
    "figures",
    "job_path",
    "listen",
    "local",
    "path_id",
    "preflight",
    "relative",
    "serve",
    "span",
    "values",
]
