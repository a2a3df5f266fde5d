"""The bare scripts of make bench's "raw EVALSHA" rows, read from this clone's git history.

rache's schedule-2.lua and claim-2.lua before call records and run tokens (issue #14): the
ratios against them show what those cost, with no copy of the old scripts in the tree.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict

from rache import scripts

#: The last commit before call records and runs.
BEFORE_RECORDS = "1a9b11afca00e239fb758c69ec1ddaacf711c5a5"
ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(
            f"the bare scripts come from commit {BEFORE_RECORDS[:8]} of this clone's history: "
            f"git {' '.join(args)} failed ({error}); run make bench from a full git clone"
        ) from None
    return done.stdout


def load() -> Dict[str, scripts.Script]:
    """schedule-2.lua and claim-2.lua as they were, their includes expanded as rache does."""
    folder = "rache/lua/includes/"
    names = _git("ls-tree", "--name-only", BEFORE_RECORDS, folder).split()
    includes = {
        Path(name).stem: _git("show", f"{BEFORE_RECORDS}:{name}")
        for name in names
        if name.endswith(".lua")
    }
    return {
        name: scripts.Script(
            name,
            2,
            scripts.expand(_git("show", f"{BEFORE_RECORDS}:rache/lua/{name}-2.lua"), includes),
        )
        for name in ("schedule", "claim")
    }
