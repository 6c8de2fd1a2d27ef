"""Cached calls into distill_core's analyses for the pages (similarity, diversity, embeddings).

The library caches features and embedding fits on disk; here results are also kept in memory per
(runs, their modification times, settings), so re-drawing a page costs nothing.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from distill_core.analysis.run import AnalyseConfig
from distill_core.analysis.run import analyse_runs as library_analyse_runs
from distill_core.imageset import load_image_set

from . import analysis_jobs


def _stamp(paths: tuple[str, ...]) -> tuple:
    return tuple((p, (Path(p) / "images.pt").stat().st_mtime) for p in paths)


@st.cache_data(show_spinner=False, max_entries=16)
def _analyse_cached(stamp: tuple, embedding: str, max_points: int, feature_model: str):
    paths = tuple(p for p, _ in stamp)
    cfg = AnalyseConfig(runs=paths, embedding=embedding, max_points=max_points, device="cpu",
                        feature_model=feature_model)
    return library_analyse_runs(cfg, "cpu", Path(paths[0]) / "analysis" / "real")


def default_feature_model(paths: list[str]) -> str:
    """'' when a run names its teacher (the library then uses it), else a finished teacher run on the
    same dataset (random-real sets name none), else ''."""
    from . import runs_view

    sets = [load_set(p) for p in paths]
    if any(a.extra.get("teacher") for a in sets):
        return ""
    name = sets[0].info.name if sets else ""
    for info in runs_view.teacher_runs():
        if info.state == "done" and str(info.config.get("dataset", "")).split(":")[0] == name:
            return str(info.path)
    return ""


def analyse_runs(paths: list[str], embedding: str = "none", max_points: int = 5000, feature_model: str | None = None):
    """`analyse.Analysis` of image-set runs `paths` (similarity, diversity, optional 2-D embedding): without
    an embedding, what a finished diversity job of these runs wrote (the Diversity page's), else computed
    here (seconds to a minute: callers show a spinner) and kept in memory.

    feature_model: a teacher run or checkpoint; None = the runs' own teacher or a teacher on their dataset.
    """
    paths = [str(p) for p in paths]
    fm = default_feature_model(paths) if feature_model is None else feature_model
    if embedding == "none" and (done := analysis_jobs.result(analysis_jobs.job_dir(paths, feature_model=fm))):
        return done
    return _analyse_cached(_stamp(tuple(paths)), embedding, max_points, fm)


@st.cache_data(show_spinner=False, max_entries=32)
def _load_set_cached(path: str, mtime: float):
    return load_image_set(path)


def load_set(path: str | Path):
    """The image set of a run folder (cached by modification time)."""
    path = Path(path)
    return _load_set_cached(str(path), (path / "images.pt").stat().st_mtime)


def class_intervals(result, value: str = "feat_within") -> dict:
    """Run -> 95% bootstrap interval over classes of the mean per-class `value` of an Analysis."""
    from distill_core.analysis.bootstrap import mean_interval

    out = {}
    for run in result.matrices:
        vals = [r[value] for r in result.per_class if r["run"] == run]
        try:
            out[run] = mean_interval(vals)
        except ValueError:
            continue
    return out


def paired_interval(result, a: str, b: str, value: str = "feat_within"):
    """95% paired bootstrap interval over classes of run a's per-class `value` minus run b's."""
    from distill_core.analysis.bootstrap import paired_difference

    per = {run: {r["class"]: r[value] for r in result.per_class if r["run"] == run} for run in (a, b)}
    return paired_difference(per[a], per[b])
