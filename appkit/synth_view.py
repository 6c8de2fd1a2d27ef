"""Live view of a synthesis run: loss curves (CE and BN terms) and the per-class image grids."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from distill_core import runs

from . import figures, runs_view, ui


def loss_rows(run_dir: Path) -> list[dict]:
    """Per-iteration loss rows of a finished run (losses.csv), [] before the job has written it."""
    return runs_view.read_csv_rows(Path(run_dir) / "losses.csv")


def live_rows(run_dir: Path) -> list[dict]:
    """The loss points a running job appended to losses_live.csv: progress in %, CE and BN terms.

    Read from the run folder, so a reload (or another browser) shows the whole curve so far; a
    partly written last line is skipped."""
    rows = []
    for r in runs_view.read_csv_rows(Path(run_dir) / "losses_live.csv"):
        if all(isinstance(r.get(k), (int, float)) for k in ("progress", "ce", "bn")):
            rows.append({"progress": round(100 * r["progress"], 2), "ce": r["ce"], "bn": r["bn"]})
    return rows


def grid_files(run_dir: Path) -> list[Path]:
    """PNG previews of a run (grids/ first, then any PNG in the folder)."""
    run_dir = Path(run_dir)
    return sorted((run_dir / "grids").glob("*.png")) or sorted(run_dir.glob("*.png"))


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
        names = _class_names(str(runs.load_run(run_dir).config.get("teacher", "")))
        right.image(preview_image(grids[:20], names), width="stretch",
                    caption=f"{len(grids)} classes finished" + (" (first 20 shown)" if len(grids) > 20 else ""))


@st.cache_resource(show_spinner=False, max_entries=8)
def _class_names(teacher_dir: str) -> tuple[str, ...]:
    """Class names from a teacher run's checkpoint metadata, () when it cannot be read."""
    from distill_core.teacher import load_teacher

    try:
        return tuple(load_teacher(teacher_dir)[1].info.class_names)
    except (ValueError, OSError):
        return ()


def preview_image(grids: list[Path], class_names: tuple[str, ...] = ()):
    """The per-class grid PNGs (grids/class_XXXX.png) stacked into one image, each led by its class name."""
    from PIL import Image

    from .images import label_rows

    parts = []
    for path in grids:
        img = Image.open(path).convert("RGB")
        c = int(path.stem.split("_")[-1]) if path.stem.split("_")[-1].isdigit() else -1
        name = class_names[c] if 0 <= c < len(class_names) else (str(c) if c >= 0 else path.stem)
        parts.append(label_rows(img, [name]))
    width = max(p.width for p in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts)), "white")
    y = 0
    for p in parts:
        out.paste(p, (width - p.width, y))  # right-aligned: the images line up whatever the name
        y += p.height
    return out


def metrics_view(info: runs.RunInfo) -> None:
    """A finished synthesis run's metrics as numbers with units and a per-class table (not raw JSON)."""
    m = info.metrics
    if not m:
        return
    from . import ui

    acc = m.get("synthetic_acc")
    speed = m.get("image_iterations_per_s")
    ui.metrics([
        ("images", f"{m.get('num_images', 0):,}", f"IPC {m.get('ipc')} × classes"),
        ("teacher recognises", f"{100 * acc:.1f}%" if isinstance(acc, float) else "–",
         "share of the synthetic images the teacher classifies as their class"),
        ("final CE / BN", f"{m.get('final_ce', float('nan')):.3f} / {m.get('final_bn', float('nan')):.3f}",
         "mean over classes of the last iteration's loss terms"),
        ("synthesis time", f"{m.get('synthesis_s', float('nan')):.1f} s",
         f"{speed:,.0f} image-iterations/s" if isinstance(speed, float) else None),
    ])
    per_class = m.get("per_class_acc") or {}
    if per_class:
        names = _class_names(str(info.config.get("teacher", "")))
        rows = [{"class": names[int(c)] if int(c) < len(names) else str(c), "teacher top-1 (%)": 100 * float(v)}
                for c, v in per_class.items()]
        with st.expander("per class"):
            ui.table(rows, formats={"teacher top-1 (%)": ".0f"}, key=f"sy-pc-{info.name}")
    st.caption(f"{m.get('batching', '')} batching, {m.get('statistics', '')} statistics, {m.get('iterations')} "
               f"iterations, group size {m.get('group_size')}; teacher `{m.get('teacher', '')}` "
               f"({100 * m.get('teacher_test_acc_sample', float('nan')):.1f}% on real test images)")
