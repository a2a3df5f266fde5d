"""The dashboard as an ASGI application, and serving it: the socket, uvicorn, the signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from typing import Any, AsyncIterator

import markupsafe  # Jinja2's
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import config
from ..errors import ConfigurationError
from .app import App
from .dashboard import preflight
from .settings import HEADERS, UI, Settings, is_wildcard


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
    if is_wildcard(host) and not settings.allowed_hosts:
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
