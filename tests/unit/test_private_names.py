"""No module reaches into another's private names (a ``_name`` of another rache module).

Read from the source (``ast``), not run: ``from rache.x import _y``, ``from .x import _y``
and ``x._y`` where ``x`` names an imported rache module. A module's own privates, dunders
and the names of other libraries are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Module state that the test fixtures reset between tests (the default scheduler).
FIXTURE_STATE = {("rache", "_default")}


def _rache_modules(tree: ast.Module, package: str) -> Dict[str, str]:
    """The local names bound to rache modules in ``tree``: name -> module."""
    bound: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "rache" or alias.name.startswith("rache."):
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:  # import rache.x binds rache
                        bound["rache"] = "rache"
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base == "rache" or base.startswith("rache."):
                for alias in node.names:
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    return bound


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def private_uses(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, what) for each private name of another rache module that ``path`` uses."""
    tree = ast.parse(path.read_text("utf-8"))
    relative = path.relative_to(ROOT).with_suffix("")
    package = ".".join(relative.parts[:-1]) if relative.parts[0] == "rache" else ""
    modules = _rache_modules(tree, package or "rache")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, package or "rache")
            if base.startswith("rache"):
                for alias in node.names:
                    if _private(alias.name):
                        yield node.lineno, f"from {base} import {alias.name}"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            known = module is not None and (module, node.attr) in FIXTURE_STATE
            if module is not None and _private(node.attr) and not known:
                yield node.lineno, f"{module}.{node.attr}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _sources() -> List[Path]:
    folders = ["rache", "tests", "benchmarks", "examples"]
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_of_another_module(path: Path) -> None:
    assert list(private_uses(path)) == []


def test_the_check_sees_a_private_name(tmp_path: Path) -> None:
    source = ROOT / "tests" / "unit" / "_probe_private.py"
    source.write_text("from rache import scheduler\nscheduler._warn_unreleased\n")
    try:
        assert [what for _, what in private_uses(source)] == ["rache.scheduler._warn_unreleased"]
    finally:
        source.unlink()


#: NamedTuple's methods: public despite the underscore.
NAMEDTUPLE = {"_asdict", "_replace", "_fields", "_make"}


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "rache").rglob("*.py")),  # the apps' packages too (rache/web/, rache/cli/)
    ids=lambda p: str(p.relative_to(ROOT / "rache")),
)
def test_the_package_uses_no_private_attribute_of_another_object(path: Path) -> None:
    # Stricter inside rache/: ``obj._x`` only on ``self`` or ``cls``, whatever ``obj`` is.
    found = [
        (node.lineno, node.attr)
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Attribute)
        and _private(node.attr)
        and node.attr not in NAMEDTUPLE
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert found == []
