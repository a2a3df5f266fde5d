"""A built wheel carries the Lua scripts, runtime code only, and works outside the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rache import scripts
from tests.support import harness

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # From a copy of the sources: setuptools would reuse (and leave) a build/ in the tree,
    # whose stale files (a renamed script) would then ship.
    source = tmp_path_factory.mktemp("source") / "rache"
    skip = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "results")
    shutil.copytree(ROOT, source, ignore=skip)
    # --no-build-isolation: the installed setuptools builds it, nothing is downloaded
    build = ["pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w"]
    subprocess.run(
        [sys.executable, "-m", *build, str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("rache-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_ships_every_script_and_py_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {path.relative_to(ROOT).as_posix() for path in (ROOT / "rache").rglob("*.lua")}
    assert len(shipped) >= len(scripts.load()) + 2
    assert shipped <= names
    assert "rache/py.typed" in names


@pytest.mark.slow
def test_the_wheel_ships_every_module_of_the_apps_packages_too(wheel: Path) -> None:
    # setuptools lists packages by name: a package left off its list would be missing here
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "rache").rglob("*.py")}
    assert {"rache/cli/__init__.py", "rache/web/__init__.py", "rache/formatting.py"} <= modules
    assert modules <= names, modules - names


@pytest.mark.slow
def test_the_wheel_ships_the_dashboards_templates_and_static_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    ui = ROOT / "rache" / "webui"
    shipped = {path.relative_to(ROOT).as_posix() for path in ui.rglob("*") if path.is_file()}
    assert {"rache/webui/templates/overview.html", "rache/webui/static/app.js"} <= shipped
    assert shipped <= names, shipped - names


@pytest.mark.slow
def test_the_wheel_ships_runtime_code_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "rache/testing.py" not in names  # the harness moved to tests/support/harness.py
    assert not [name for name in names if name.startswith("tests/")]
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"rache"}


@pytest.mark.slow
def test_the_installed_wheel_runs_a_job(
    wheel: Path, tmp_path: Path, server: harness.RedisServer
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import rache, sys; assert rache.__file__.startswith(sys.argv[1]), rache.__file__; "
        "rache.schedule_job('w', -1, n=1); print(list(rache.pending_jobs()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "REDIS_URL": server.url}
    env["RACHE_REDIS_PREFIX"] = "wheel-test:"
    out = subprocess.run(
        [sys.executable, "-c", code, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[{'id': 'w', 'n': 1}]"


@pytest.mark.slow
def test_the_wheel_carries_the_license(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
    headers = archive.read(metadata).decode()
    assert "License-Expression: BSD-3-Clause" in headers
    assert "License-File: LICENSE" in headers
    shipped = metadata.replace("METADATA", "licenses/LICENSE")
    assert archive.read(shipped).decode() == (ROOT / "LICENSE").read_text()
