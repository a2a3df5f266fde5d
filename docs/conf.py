"""Sphinx configuration for rache's documentation: make docs (warnings are errors)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rache  # noqa: E402

project = "rache"
copyright = "2026, the rache developers"
author = "the rache developers"
release = rache.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_click",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext"}  # Markdown only through include (rache/lua/README.md)
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"rache {release}"
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"members": True}

# -n (nitpicky): every cross-reference must resolve. Names from other libraries (redis-py,
# the standard library's typing) have no inventory here (no network at build time).
nitpick_ignore_regex = [
    ("py:.*", r"(redis|rq|celery|arq|prometheus_client|click|asyncio|datetime|typing|signal)\..*"),
    ("py:.*", r"(Any|Optional|Union|Callable|Iterable|Iterator|Generator|AsyncGenerator|Mapping)"),
    ("py:.*", r"(Awaitable|Sequence|Tuple|List|Dict|TypeVar|Generic|NamedTuple|S)"),
    ("py:class", r"(int|float|str|bytes|bool|dict|list|tuple|None|object|type|BaseException)"),
    ("py:class", r"(Exception|KeyError|ImportError|ValueError|TypeError|LookupError)"),
    # the core's internal types, named in signatures (not public names: not documented)
    ("py:class", r"rache\.(keys|scripts|models|scheduler|dispatch)\.\w+"),
    ("py:class", r"(ErrorHook|Handler|Layout|Time|Value|Start|Entry|Exported|Progress|Decoded|S)"),
]

_FIELD = re.compile(r"\s*:(param|raises|returns|return|rtype|type)\b")


def field_lists_after_a_blank_line(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: List[str]
) -> None:
    """A ``:raises:`` right under a paragraph is a field list to a reader: to docutils too."""
    for i in range(len(lines) - 1, 0, -1):
        if _FIELD.match(lines[i]) and lines[i - 1].strip() and not _FIELD.match(lines[i - 1]):
            lines.insert(i, "")


#: Where the public classes are defined; the docs show them under ``rache`` and ``rache.aio``.
_CORE_MODULES = (
    "rache.scheduler.",
    "rache.basescheduler.",
    "rache.syncscheduler.",
    "rache.asyncscheduler.",
    "rache.dispatch.",
    "rache.basedispatcher.",
    "rache.syncdispatcher.",
    "rache.asyncdispatcher.",
    "rache.models.",
    "rache.errors.",
)


def rache_names(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a short name in a docstring (``Scheduler.stats``) to its public ``rache`` name.

    The docstrings say ``Scheduler`` where ``rache.Scheduler`` is meant; documented under
    :mod:`rache.aio`, ``AsyncScheduler``'s would not find it otherwise.
    """
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    short = target.split(".", 2)[-1] if target.startswith(_CORE_MODULES) else target
    for candidate in (f"rache.{short}", f"rache.aio.{short}"):
        if candidate in domain.objects:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], candidate, node, contnode
            )
    return None


def setup(app: Any) -> None:
    """Hook the two helpers above."""
    app.connect("autodoc-process-docstring", field_lists_after_a_blank_line)
    app.connect("missing-reference", rache_names)
