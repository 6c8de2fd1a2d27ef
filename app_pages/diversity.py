"""Diversity: within-class similarity heatmaps, per-class bars for several runs, the diversity table."""
from __future__ import annotations

import streamlit as st

from appkit import figures, ui
from appkit.analysis import analyse_runs
from appkit.paths import runs_root
from appkit.pickers import pick_image_sets

st.title("Diversity")
st.caption("Cross-class BN batching makes the images of one class alike (Xiao & He 2024). Cosine similarity "
           "within each class, Fréchet distance and k-NN precision / recall / density / coverage against real images.")

SUMMARY_COLS = ("run", "method", "ipc", "feat_within_mean", "feat_within_std", "feat_between_mean", "pix_within_mean",
                "fd", "precision", "recall", "density", "coverage", "copies")


def show(names: list[str]) -> None:
    with st.spinner("features, similarity and diversity (cached after the first time)..."):
        try:
            result = analyse_runs([str(runs_root() / n) for n in names])
        except ValueError as exc:
            st.error(f"Cannot analyse these runs together: {exc}")
            return
    st.subheader("Diversity table")
    st.dataframe([{k: r.get(k) for k in SUMMARY_COLS} for r in result.summary], hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in SUMMARY_COLS[3:12]})
    st.caption(f"features: {result.info['feature_model_name']} ({result.info['layer']}) from "
               f"`{result.info['feature_model']}`; real reference: {result.info['n_real']} training images of "
               f"`{result.info.get('real', '')}`; k = {result.info['k']}")
    space = st.radio("similarity of", ["features", "pixels"], horizontal=True, key="dv-space",
                     help="feature space of the feature model, or raw pixels (read pixels against the between-class value)")
    value = "feat_within" if space == "features" else "pix_within"
    ui.chart(figures.per_class_bars(result.per_class, value, f"within-class cosine ({space})"), "dv-bars", height=420)
    run = st.selectbox("heatmaps of run", list(result.matrices), key="dv-heat-run")
    art_names = next(r for r in result.summary if r["run"] == run)
    mats = result.matrices[run][space]
    class_names = _class_names(run)
    means = {r["class"]: r[value] for r in result.per_class if r["run"] == run}
    fig = figures.similarity_heatmaps({c: m.numpy() for c, m in mats.items()}, class_names,
                                      f"{run} ({art_names['method']}): within-class cosine, {space}", means=means)
    ui.chart(fig, "dv-heat")
    st.caption("Each square is one class's images × images cosine matrix; the number after the class is its mean "
               "off-diagonal value (the within-class similarity). Shared colour scale.")
    for note in result.notes[:8]:
        st.caption(f"note: {note}")


def _class_names(run: str) -> tuple[str, ...]:
    from appkit.analysis import load_set

    return load_set(runs_root() / run).info.class_names


chosen = pick_image_sets("dv-runs")
if chosen:
    show(chosen)
