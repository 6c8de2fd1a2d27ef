"""Diversity: within-class similarity heatmaps, per-class similarity for several runs, the diversity table."""
from __future__ import annotations

import math

import streamlit as st

from appkit import style

st.title("Diversity")
st.caption("Cross-class BN batching makes the images of one class alike (Xiao & He 2024). Cosine similarity "
           "within each class, Fréchet distance and k-NN precision / recall / density / coverage against real images.")

style.paint_now("Diversity")

# below the title, so it is on screen before the library (torch) loads
from appkit import analysis_jobs, figures, runs_view, ui  # noqa: E402
from appkit.analysis import class_intervals, default_feature_model, load_set  # noqa: E402
from appkit.paths import runs_root  # noqa: E402
from appkit.pickers import pick_image_sets  # noqa: E402

COLUMNS = {  # summary field -> header
    "run": "run", "method": "method", "ipc": "IPC", "feat_within_mean": "within-class cos (features)",
    "feat_ci": "95% interval (classes)", "feat_between_mean": "between-class cos",
    "pix_within_mean": "within-class cos (pixels)",
    "fd": "Fréchet distance", "precision": "precision", "recall": "recall", "density": "density",
    "coverage": "coverage", "copies": "near-copies of real images",
}
FORMATS = {k: ".3f" for k in ("feat_within_mean", "feat_between_mean", "pix_within_mean", "precision", "recall",
                              "density", "coverage")} | {"fd": ".2f"}


def _recall_computable(row: dict, notes: list[str]) -> bool:
    """Recall needs more synthetic images than k per class; the library leaves a note where it could not."""
    return not any(n.startswith(f"{row['run']}: ") and "recall needs" in n for n in notes) and \
        not (isinstance(row.get("recall"), float) and math.isnan(row["recall"]))


def summary_rows(result) -> list[dict]:
    """The diversity table for people: headers with units, intervals over classes, and recall left
    empty (not 1.000) where the per-class recall could not be computed (too few images per class)."""
    ci = class_intervals(result, "feat_within")
    out = []
    for r in result.summary:
        row = {k: r.get(k) for k in COLUMNS if k in r}
        row["method"] = runs_view.method_label(str(r.get("method")))
        iv = ci.get(r["run"])
        row["feat_ci"] = f"[{iv.low:.3f}, {iv.high:.3f}]" if iv else ""
        if not _recall_computable(r, result.notes):
            row["recall"] = None
        out.append({k: row.get(k) for k in COLUMNS})
    return out


def compute(names: list[str]):
    """The diversity job's Analysis of these runs, or None after drawing its progress, cancel or start button."""
    paths = [str(runs_root() / n) for n in names]
    fm = default_feature_model(paths)
    result = analysis_jobs.panel(paths, key="dv-job", label="Compute diversity (background job)", feature_model=fm)
    if result is None:
        st.caption("Features, similarity within each class and the measures against real images run as a "
                   "background job (`python -m distill_core analyse`) writing a run folder: reloading the page "
                   "or switching pages loses nothing, and a finished one is read from disk.")
    else:
        folder = analysis_jobs.job_dir(paths, feature_model=fm)
        st.caption(f"read from the analysis job's run folder `{folder.relative_to(runs_root())}`")
    return result


def show(result) -> None:
    st.subheader("Diversity table")
    rows = summary_rows(result)
    split = ("fd", "precision", "recall", "density", "coverage", "copies")
    ui.table([{k: v for k, v in r.items() if k not in split} for r in rows], formats=FORMATS, labels=COLUMNS,
             key="dv-table")
    st.markdown("**Against real images** (feature space)")
    ui.table([{k: r[k] for k in ("run", "method", *split)} for r in rows], formats=FORMATS, labels=COLUMNS,
             key="dv-table-real")
    st.caption(f"features: {result.info['feature_model_name']} ({result.info['layer']}) from "
               f"`{result.info['feature_model']}`; real reference: {result.info['n_real']} training images of "
               f"`{result.info.get('real', '')}`; k = {result.info['k']}. Intervals: 95% bootstrap over classes. "
               "An empty recall cell: too few images per class for k-NN recall.")
    space = st.radio("similarity of", ["features", "pixels"], horizontal=True, key="dv-space",
                     help="feature space of the feature model, or raw pixels (read pixels against the between-class value)")
    value = "feat_within" if space == "features" else "pix_within"
    methods = {r["run"]: r["method"] for r in result.summary}
    ui.chart(figures.per_class_bars(result.per_class, value, f"within-class cosine ({space})", methods=methods),
             "dv-bars", height=420)
    run = st.selectbox("heatmaps of run", list(result.matrices), key="dv-heat-run")
    method = methods[run]
    mats = result.matrices[run][space]
    zmin = figures.shared_zmin(m.numpy() for spaces in result.matrices.values() for m in spaces[space].values())
    means = {r["class"]: r[value] for r in result.per_class if r["run"] == run}
    fig = figures.similarity_heatmaps({c: m.numpy() for c, m in mats.items()}, load_set(runs_root() / run).info.class_names,
                                      f"{run} ({runs_view.method_label(method)}): within-class cosine, {space}",
                                      means=means, zmin=zmin)
    ui.chart(fig, "dv-heat")
    st.caption(f"Each square is one class's images × images cosine matrix; the number after the class is its mean "
               f"off-diagonal value (the within-class similarity). One colour scale, {zmin:.1f} to 1, for every run "
               "chosen above.")
    for note in result.notes[:8]:
        st.caption(f"note: {note}")


chosen = pick_image_sets("dv-runs")
if chosen and (analysis := compute(chosen)) is not None:
    show(analysis)
