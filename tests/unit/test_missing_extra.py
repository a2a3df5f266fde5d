"""A feature whose extra is missing says what to install, one way: ``rache.MissingExtra``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rache import MissingExtra
from rache.dispatchloop import DispatchLoop

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_without_click_says_which_extra_to_install() -> None:
    # As if click were not installed: the console script's entry point prints one line.
    code = "import sys; sys.modules['click'] = None; from rache.__main__ import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "rache: the rache command needs click: pip install '.[cli]' in rache's checkout"
    )


def test_metrics_without_prometheus_client_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(
        MissingExtra, match=r"pip install '\.\[prometheus\]' in rache's checkout"
    ) as raised:
        DispatchLoop(batch=10, max_sleep=1, backoff=0.1, max_backoff=1, metrics=True)
    assert isinstance(raised.value, ImportError)
    assert raised.value.extra == "prometheus"
