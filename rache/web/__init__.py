"""``rache web``: an operator's dashboard of a schedule, in a browser (see ``app``)."""

from .app import (
    Dashboard,
    Settings,
    address,
    at,
    create_app,
    job_path,
    listen,
    preflight,
    serve,
)

__all__ = [
    "Dashboard",
    "Settings",
    "address",
    "at",
    "create_app",
    "job_path",
    "listen",
    "preflight",
    "serve",
]
