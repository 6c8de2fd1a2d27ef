"""Analyses as background jobs: `python -m distill_core analyse` into a run folder of its own, with progress
and cancel in the page, and the finished result read back from that folder (its analysis.pt).

The folder, `<runs>/.analyses/<kind>-<key>`, is keyed by the runs (their paths, in the order given, and
their images' modification times), the embedding, the point budget and the feature model, so a reload or
another page re-attaches to the same job, and a finished one is read from disk instead of computed again.
Kinds: `diversity` (similarity and diversity measures, no embedding) and `tsne` / `umap` (the same
measures plus that embedding).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from distill_core import runs
from distill_core.analysis.embeddings import DEFAULT_MAX_POINTS
from distill_core.analysis.run import ARTIFACT, AnalyseConfig, Analysis, read_analysis

from . import jobs_ui
from .paths import runs_root

THREADS = 1  # one OpenMP thread: on a shared 2-core CPU it is the fastest (bench/embedding_speed.py)


def job_dir(paths: list[str], embedding: str = "none", max_points: int = DEFAULT_MAX_POINTS,
            feature_model: str = "") -> Path:
    """The job folder of these runs and settings (max_points only counts with an embedding)."""
    parts = [f"{p}:{(Path(p) / 'images.pt').stat().st_mtime}" for p in paths]
    settings = [embedding, str(max_points)] if embedding != "none" else [embedding]
    key = hashlib.sha1("|".join([*parts, *settings, feature_model]).encode()).hexdigest()[:12]
    kind = "diversity" if embedding == "none" else embedding
    return runs_root() / ".analyses" / f"{kind}-{key}"


def start(paths: list[str], embedding: str = "none", max_points: int = DEFAULT_MAX_POINTS,
          feature_model: str = "") -> Path:
    """Launch the job for these runs (unless it is running or finished); returns its folder."""
    out = job_dir(paths, embedding, max_points, feature_model)
    if runs.read_status(out).get("state") in ("running", "queued", "done"):
        return out
    cfg = AnalyseConfig(runs=tuple(paths), embedding=embedding, max_points=max_points, device="cpu",
                        feature_model=feature_model, embedding_threads=THREADS)
    (out / "status.json").unlink(missing_ok=True)  # a cancelled or failed try: the new job's status replaces it
    jobs_ui.launch_config("analyse", cfg, out)
    return out


@st.cache_resource(show_spinner=False, max_entries=16)
def _read(path: str, mtime: float) -> Analysis:
    return read_analysis(Path(path))


def result(out: Path) -> Analysis | None:
    """The finished job's Analysis (kept in memory by file time; callers must not change it), else None."""
    out = Path(out)
    if runs.read_status(out).get("state") != "done" or not (out / ARTIFACT).is_file():
        return None
    return _read(str(out), (out / ARTIFACT).stat().st_mtime)


def panel(paths: list[str], key: str, label: str, embedding: str = "none", max_points: int = DEFAULT_MAX_POINTS,
          feature_model: str = "") -> Analysis | None:
    """The finished job's Analysis for these runs; else None after drawing its progress bar and cancel
    button (while it runs, or why it stopped) and the button that starts it."""
    out = job_dir(paths, embedding, max_points, feature_model)
    found = result(out)
    if found is not None:
        return found
    if not jobs_ui.is_active(out):
        if out.is_dir():
            jobs_ui.job_panel(out, key=key)  # a failed or cancelled try: say why before offering another
        if st.button(label, type="primary", key=f"{key}-start"):
            start(paths, embedding, max_points, feature_model)
            st.rerun()  # draw the new job's panel in place of the old try's
        return None
    jobs_ui.job_panel(out, key=key)
    return None
