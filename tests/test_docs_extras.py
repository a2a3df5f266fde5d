"""Every docs example runs with only what its page tells the reader to install.

tests/test_docs.py runs each example in the test environment, which has every extra. Here
each page's examples run again, each block in a fresh ``python`` of a venv that has rache
and only the extras the page names in its ``pip install '.[...]'`` lines (none: the core
alone), pinned by requirements/constraints.txt as ``make`` installs them. An example that
imports what its page never asked for fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, FrozenSet, Iterator, List

import pytest

from tests.support import harness
from tests.test_docs import DOCS, python_blocks
from tests.test_readme import expected_output

ROOT = DOCS.parent
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
#: ``pip install '.[web]'``, ``pip install -e '.[rq]'``, ``'.[rq,cron]'``: an extra's install
#: line as the pages write it (and the bare ``'.[x]'`` that follows an "or").
EXTRAS = re.compile(r"'\.\[([\w,]+)\]'")
#: arq pins redis<6: installed without its dependencies beside rache's redis-py, as the
#: Makefile does for the test environment.
NO_DEPS = {"arq": "arq>=0.25"}
PAGES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [ROOT / "README.rst", *DOCS.rglob("*.rst")]
    if "_build" not in path.parts and python_blocks(path.read_text())
)


def extras_of(text: str) -> FrozenSet[str]:
    """The extras a page tells its reader to install."""
    return frozenset(name for group in EXTRAS.findall(text) for name in group.split(","))


def test_extras_are_read_from_install_lines() -> None:
    text = "    $ pip install -e '.[rq]'\nwith ``pip install '.[rq]'`` (and ``'.[rq,cron]'``)"
    assert extras_of(text) == {"rq", "cron"}
    assert extras_of("``pip install .`` from a checkout") == frozenset()


@pytest.fixture(scope="session")
def venv_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[[FrozenSet[str]], Path]:
    """A venv's python with rache and exactly these extras, made once per set of extras."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("no uv (pip install uv; the test extra has it) to make a venv per page")
    made: Dict[FrozenSet[str], Path] = {}

    def make(extras: FrozenSet[str]) -> Path:
        if extras not in made:
            folder = tmp_path_factory.mktemp("-".join(sorted(extras)) or "core")

            def quiet(command: List[str]) -> None:
                done = subprocess.run(command, capture_output=True, text=True)
                assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"

            quiet([uv, "venv", "-q", "--python", sys.executable, str(folder)])
            python = folder / "bin" / "python"
            installed = sorted(extras - NO_DEPS.keys())
            target = f"{ROOT}[{','.join(installed)}]" if installed else str(ROOT)
            install = [uv, "pip", "install", "-q", "--python", str(python), "-c", str(CONSTRAINTS)]
            quiet([*install, "-e", target])
            if extras & NO_DEPS.keys():
                wanted = [NO_DEPS[name] for name in sorted(extras & NO_DEPS.keys())]
                quiet([*install, "--no-deps", *wanted])
            made[extras] = python
        return made[extras]

    return make


@pytest.fixture
def clean_env(solo: harness.RedisServer) -> Iterator[Dict[str, str]]:
    """The environment of a reader's shell: REDIS_URL set to the test server, nothing else."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RACHE_REDIS_PREFIX")}
    env["REDIS_URL"] = solo.url
    yield env


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_a_pages_examples_need_only_its_extras(
    venv_with: Callable[[FrozenSet[str]], Path],
    clean_env: Dict[str, str],
    solo_raw: object,
    tmp_path: Path,
    page: str,
) -> None:
    text = (ROOT / page).read_text()
    python = venv_with(extras_of(text))
    failures: List[str] = []
    for index, block in enumerate(python_blocks(text), 1):
        solo_raw.flushall()  # type: ignore[attr-defined]
        done = subprocess.run(
            [str(python), "-c", block],
            cwd=tmp_path,
            env=clean_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            failures.append(f"block {index}: {done.stderr.strip().splitlines()[-1:]}")
            continue
        failures += [
            f"block {index} promises {expected!r}"
            for expected in expected_output(block)
            if expected not in done.stdout
        ]
    extras = ",".join(sorted(extras_of(text))) or "none"
    assert failures == [], f"{page} (extras: {extras}): {failures}"
