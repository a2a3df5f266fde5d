"""The layout of rache/lua: each header a contract, each include known and used, README.md whole."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest

from rache import scripts

LUA = Path(scripts.__file__).parent / "lua"
#: A top-level name an include defines: ``local function name(`` or ``local name =``.
_DEFINED = re.compile(r"^local (?:function )?(\w+)\s*[(=]", re.MULTILINE)


def _scripts() -> Dict[str, Tuple[int, str]]:
    """Each script's file name -> (its key count by the name, its text as shipped)."""
    found = {}
    for path in sorted(LUA.glob("*.lua")):
        match = scripts.NAME.match(path.name)
        assert match, f"{path.name} is not named <operation>-<number of keys>.lua"
        found[path.name] = (int(match.group(2)), path.read_text("utf-8"))
    return found


def _includes() -> Dict[str, str]:
    return {path.stem: path.read_text("utf-8") for path in sorted(LUA.glob("includes/*.lua"))}


def _named(text: str) -> List[str]:
    return scripts.INCLUDE.findall(text)


def _header(name: str, text: str) -> List[str]:
    assert text.startswith("--[[\n"), f"{name} does not open with its header"
    return text[len("--[[\n") : text.index("]]")].splitlines()


def test_every_script_header_is_its_contract() -> None:
    for name, (numkeys, text) in _scripts().items():
        lines = _header(name, text)
        stripped = [line.strip() for line in lines]
        assert "Input:" in stripped and "Output:" in stripped, f"{name}: no Input: or Output:"
        start, end = stripped.index("Input:"), stripped.index("Output:")
        assert 1 <= start <= 3, f"{name}: say what it does in a sentence or two, then Input:"
        inputs = stripped[start + 1 : end]
        keys = [line for line in inputs if "KEYS[" in line]
        expected = [f"KEYS[{i}]" for i in range(1, numkeys + 1)]
        assert [line.split()[0] for line in keys] == expected, f"{name}: one line per key"
        assert all(line.count("KEYS[") == 1 for line in keys), f"{name}: one key a line"
        output = [line for line in stripped[end + 1 :] if line]
        assert 1 <= len(output) <= 3, f"{name}: Output: in a few lines, the rest in README.md"


def test_every_include_a_script_names_exists() -> None:
    known = set(_includes())
    sources = {**{name: text for name, (_, text) in _scripts().items()}, **_includes()}
    for name, text in sources.items():
        missing = set(_named(text)) - known
        assert not missing, f"{name} includes {sorted(missing)}, not in rache/lua/includes"


def test_every_include_is_used_by_a_script() -> None:
    includes = _includes()
    used: Set[str] = set()
    todo = [name for _, text in _scripts().values() for name in _named(text)]
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo += _named(includes.get(name, ""))
    assert set(includes) - used == set()


def _code(source: str) -> str:
    """Lua source without its comments and string literals (rache's strings have no escapes)."""
    source = re.sub(r"--\[\[.*?\]\]", "", source, flags=re.DOTALL)
    return re.sub(r"--[^\n]*|'[^'\n]*'|\"[^\"\n]*\"", "", source)


def test_each_include_is_expanded_once_and_before_its_first_use() -> None:
    defined_by = {
        name: include for include, text in _includes().items() for name in _DEFINED.findall(text)
    }
    for script in scripts.load().values():
        code = _code(script.source)
        for name, include in defined_by.items():
            definitions = [
                m.start() for m in re.finditer(rf"^local (function )?{name}\b", code, re.M)
            ]
            uses = [m.start() for m in re.finditer(rf"(?<![\w.]){name}\b", code)]
            assert len(definitions) <= 1, f"{script.name}: includes/{include}.lua expanded twice"
            if uses and not definitions:
                pytest.fail(
                    f"{script.name} uses {name} but does not include includes/{include}.lua"
                )
            if definitions:
                assert definitions[0] < min(uses), f"{script.name} uses {name} before defining it"


def test_the_readme_names_every_script_and_include() -> None:
    readme = (LUA / "README.md").read_text("utf-8")
    for name in _scripts():
        assert f"`{name}`" in readme, f"rache/lua/README.md does not mention {name}"
    for name in _includes():
        assert f"`{name}`" in readme, f"rache/lua/README.md does not mention includes/{name}.lua"


def test_an_include_missing_or_in_a_cycle_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match=r"no rache/lua/includes/b\.lua"):
        scripts.expand('--- @include "a"\n', {"a": '--- @include "b"\n'})
    cycle = {"a": '--- @include "b"\n', "b": '--- @include "a"\n'}
    with pytest.raises(LookupError, match="a -> b -> a"):
        scripts.expand('--- @include "a"\n', cycle)
    shared = {"a": '--- @include "c"\nA\n', "b": '--- @include "c"\nB\n', "c": "C\n"}
    expanded = scripts.expand('--- @include "a"\n--- @include "b"\n', shared)
    assert expanded.split() == ["C", "A", "B"]  # c once, before a, its first user


def test_every_script_as_shipped_loads_on_the_server(raw: Any) -> None:
    for script in scripts.load().values():
        assert raw.script_load(script.source) == script.sha, script.name
