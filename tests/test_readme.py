"""README.rst tells the truth: its Python examples run as written and print what they say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.rst"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` blocks, dedented."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text, re.M):
        lines = match.group(1).rstrip().split("\n")
        blocks.append("\n".join(line[4:] for line in lines))
    return blocks


def expected_output(block: str) -> list[str]:
    """What each print() says it prints: its trailing comment, or the comment line after it."""
    expected = []
    lines = block.split("\n")
    for i, line in enumerate(lines):
        if "print(" not in line:
            continue
        if "  # " in line:
            expected.append(line.split("  # ", 1)[1])
        elif i + 1 < len(lines) and lines[i + 1].strip().startswith("# "):
            expected.append(lines[i + 1].strip()[2:])
    return expected


def test_readme_examples_run_as_written(default_env: None, raw: Any) -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 2  # the quick start, and many pollers at once (the rest is in docs/)
    for block in blocks:  # each on its own, as a reader would paste it
        namespace: dict[str, Any] = {}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), namespace)
        printed = out.getvalue()
        for expected in expected_output(block):
            assert expected in printed, f"README promises {expected!r}, printed {printed!r}"


def test_readme_is_valid_restructuredtext() -> None:
    import docutils.core
    import docutils.utils

    try:
        docutils.core.publish_string(
            README.read_text(),
            writer="null",
            settings_overrides={"report_level": 2, "halt_level": 2},
        )
    except docutils.utils.SystemMessage as error:  # a warning or worse, with its line
        raise AssertionError(f"README.rst: {error}") from None
