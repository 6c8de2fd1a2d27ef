"""Where the app finds its runs and static files."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


def runs_root() -> Path:
    """The runs directory: $DISTILL_RUNS, else `runs/` in the repository (read on every call)."""
    env = os.environ.get("DISTILL_RUNS")
    return Path(env).resolve() if env else ROOT / "runs"
