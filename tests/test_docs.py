"""The documentation tells the truth: every Python example in docs/ runs as written.

Each ``.. code-block:: python`` of docs/**/*.rst runs on its own, as a reader would paste
it, with ``REDIS_URL`` pointing at a freshly flushed test Redis (``default_env``, ``raw``),
and what each ``print(x)  # expected`` says it prints is checked, as tests/test_readme.py
does for README.rst. Commands and configuration go in ``console``/``text``/``ini`` blocks,
which are not run. ``make docs`` checks that the site builds without a warning.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any, List, Tuple

import pytest

from tests.test_readme import expected_output

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: A python code block at any indentation (inside a list item too), its options, its body.
BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. code-block:: python[ \t]*\n"
    r"(?:(?P=indent)[ \t]+:[\w-]+:.*\n)*"
    r"[ \t]*\n"
    r"(?P<body>(?:(?P=indent)[ \t]+.*\n|[ \t]*\n)+)",
    re.M,
)


def python_blocks(text: str) -> List[str]:
    """The dedented bodies of every ``.. code-block:: python`` of a reST text."""
    blocks = []
    for match in BLOCK.finditer(text if text.endswith("\n") else text + "\n"):
        lines = match.group("body").rstrip().split("\n")
        margin = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append("\n".join(line[margin:] for line in lines))
    return blocks


def collect() -> List[Tuple[str, int, str]]:
    """(page, index, body) of every python block in docs/, in file order."""
    found = []
    for path in sorted(DOCS.rglob("*.rst")):
        if "_build" in path.parts:
            continue
        text = path.read_text()
        blocks = python_blocks(text)
        declared = len(re.findall(r"^[ \t]*\.\. code-block:: python[ \t]*$", text, re.M))
        assert len(blocks) == declared, f"{path}: {declared} python blocks, {len(blocks)} read"
        page = path.relative_to(DOCS).as_posix()
        found += [(page, i, block) for i, block in enumerate(blocks, 1)]
    return found


BLOCKS = collect()


def test_the_docs_have_examples_on_every_kind_of_page() -> None:
    pages = {page.split("/")[0] for page, _, _ in BLOCKS}
    assert {"tutorial", "howto", "reference"} <= pages, pages
    assert len(BLOCKS) >= 18


def test_the_block_reader_finds_indented_blocks_and_skips_other_languages() -> None:
    text = (
        "- a list item:\n\n  .. code-block:: python\n     :caption: x\n\n"
        "      print(1)  # 1\n\n      print(2)\n\n"
        ".. code-block:: console\n\n    $ rache stats\n"
    )
    assert python_blocks(text) == ["print(1)  # 1\n\nprint(2)"]


@pytest.mark.parametrize(("page", "index", "block"), BLOCKS, ids=[f"{p}#{i}" for p, i, _ in BLOCKS])
def test_docs_examples_run_as_written(
    default_env: None, raw: Any, monkeypatch: pytest.MonkeyPatch, page: str, index: int, block: str
) -> None:
    assert os.environ["REDIS_URL"]  # the fresh test server's, set by default_env
    namespace: dict[str, Any] = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, f"docs/{page} (python block {index})", "exec"), namespace)
    printed = out.getvalue()
    for expected in expected_output(block):
        assert expected in printed, f"docs/{page} block {index} promises {expected!r}: {printed!r}"


def test_the_api_reference_documents_every_public_name() -> None:
    import rache
    import rache.aio

    text = (DOCS / "reference" / "api.rst").read_text()
    documented = set(re.findall(r"^\.\. auto\w+:: (rache[\w.]*)$", text, re.M))
    public = {f"rache.{name}" for name in rache.__all__}
    public |= {f"rache.aio.{name}" for name in rache.aio.__all__}
    assert public - documented == set()
