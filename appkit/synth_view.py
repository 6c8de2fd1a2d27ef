"""Live view of a synthesis run: loss curves (CE and BN terms) and the per-class image grids."""
from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from . import figures, runs_view, ui


def loss_rows(run_dir: Path) -> list[dict]:
    """Per-iteration loss rows from the run's loss CSV (any CSV with an `iteration` column)."""
    path = runs_view.find_csv(run_dir, ("iteration",))
    return runs_view.read_csv_rows(path) if path else []


def grid_files(run_dir: Path) -> list[Path]:
    """PNG previews of a run (grids/ first, then any PNG in the folder)."""
    run_dir = Path(run_dir)
    return sorted((run_dir / "grids").glob("*.png")) or sorted(run_dir.glob("*.png"))


LIVE = re.compile(r"CE ([-+0-9.eE]+), BN ([-+0-9.eE]+)")


def live_rows(run_dir: Path) -> list[dict]:
    """Loss points read from the running job's status messages ("... CE x, BN y"), kept per session.

    The job writes losses.csv only at the end; until then this is the live curve (x = progress %).
    """
    from distill_core import runs

    status = runs.read_status(run_dir)
    store = st.session_state.setdefault(f"live-loss-{run_dir.name}", {})
    match = LIVE.search(status.get("message", ""))
    if match and status.get("state") == "running":
        store[round(100 * float(status.get("progress", 0.0)), 2)] = (float(match.group(1)), float(match.group(2)))
    return [{"progress": x, "ce": ce, "bn": bn} for x, (ce, bn) in sorted(store.items())]


def preview(run_dir: Path) -> None:
    """Loss curves beside the newest image grids; silent when the run has written neither yet."""
    rows = loss_rows(run_dir)
    x = "iteration"
    if not rows:
        rows, x = live_rows(run_dir), "progress"
    grids = grid_files(run_dir)
    if not rows and not grids:
        return
    left, right = st.columns([3, 2])
    if rows:
        title = "Loss terms per iteration (mean over groups)" if x == "iteration" else "Loss terms while running"
        fig = figures.loss_curves(rows, x=x, title=title)
        ui.chart(fig, f"loss-{run_dir.name}-{len(rows)}", height=360, where=left)
    if grids:
        right.image([str(p) for p in grids[:10]], caption=[p.stem for p in grids[:10]], width=120)
