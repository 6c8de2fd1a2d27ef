"""Live view of a synthesis run: loss curves (CE and BN terms) and the per-class image grids."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import figures, runs_view, style


def loss_rows(run_dir: Path) -> list[dict]:
    """Per-iteration loss rows from the run's loss CSV (any CSV with an `iteration` column)."""
    path = runs_view.find_csv(run_dir, ("iteration",))
    return runs_view.read_csv_rows(path) if path else []


def grid_files(run_dir: Path) -> list[Path]:
    """PNG previews of a run (grids/ first, then any PNG in the folder)."""
    run_dir = Path(run_dir)
    return sorted((run_dir / "grids").glob("*.png")) or sorted(run_dir.glob("*.png"))


def preview(run_dir: Path) -> None:
    """Loss curves beside the newest image grids; silent when the run has written neither yet."""
    rows = loss_rows(run_dir)
    grids = grid_files(run_dir)
    if not rows and not grids:
        return
    left, right = st.columns([3, 2])
    if rows:
        fig = figures.loss_curves(rows, title="Loss terms per iteration (mean over groups)")
        left.plotly_chart(figures.style(fig, style.presentation(), height=360), key=f"loss-{run_dir.name}-{len(rows)}")
    if grids:
        right.image([str(p) for p in grids[:10]], caption=[p.stem for p in grids[:10]], width=120)
