"""Live loss curve of a synthesis job: the progress callback also appends each reported loss point to
`losses_live.csv` in the run folder, so a page reads the curve while the job runs and a reload keeps
it; `losses.csv` (every unit, every k-th iteration) replaces it as the record when the job ends.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from ..runs import write_text_atomic

LIVE_FILE = "losses_live.csv"


class LiveLosses:
    """A progress callback that also appends each reported loss point to `losses_live.csv`, so a page
    reads the curve from the run folder while the job runs (a reload keeps it; losses.csv replaces it
    at the end). Columns: progress (0-1), iteration, ce, bn, the mean over the units of the pass."""

    # the points `synthesize` reports: "... iteration it/T, CE x, BN y" (mean over the pass's units)
    PATTERN = re.compile(r"iteration (\d+)/\d+, CE ([-+0-9.eEnaif]+), BN ([-+0-9.eEnaif]+)")

    def __init__(self, run_dir: Path, report: Callable[[float, str], None], fresh: bool = True):
        self.path, self.report = Path(run_dir) / LIVE_FILE, report
        if fresh or not self.path.is_file():
            write_text_atomic(self.path, "progress,iteration,ce,bn\n")

    def __call__(self, progress: float, message: str = "") -> None:
        match = self.PATTERN.search(message)
        if match:
            with self.path.open("a") as fh:
                fh.write(f"{progress:.5f},{match.group(1)},{match.group(2)},{match.group(3)}\n")
        self.report(progress, message)
