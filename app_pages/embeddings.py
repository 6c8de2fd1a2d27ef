"""Embeddings: one 2-D projection of real + synthetic features; select points to see their images."""
from __future__ import annotations

import streamlit as st
import torch

from appkit import figures, ui
from appkit.analysis import analyse_runs
from appkit.images import from_data_uri
from appkit.paths import runs_root
from appkit.pickers import pick_image_sets
from distill_core.imageset import tile_images

st.title("Embeddings")
st.caption("Features of the real training images and of every chosen image set, projected together by one fit, "
           "so positions are comparable. Draw a box or lasso on the plot to see the selected images.")

METHOD_NOTES = {
    "pca": "PCA: instant.",
    "tsne": "t-SNE: a few seconds for a few thousand points.",
    "umap": "UMAP: its first fit in this server process compiles for ~30–45 s; later fits take seconds.",
}


def controls() -> tuple[str, str, int]:
    c1, c2, c3 = st.columns([2, 1, 1])
    method = c1.radio("projection", ["pca", "tsne", "umap"], horizontal=True, key="em-method",
                      format_func=lambda m: {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[m])
    color = c2.radio("colour by", ["class", "source"], horizontal=True, key="em-color")
    max_points = c3.select_slider("max points", [1000, 2000, 5000, 10000], value=2000, key="em-max")
    st.caption(METHOD_NOTES[method])
    return method, color, max_points


def gallery(rows: list[dict], ids: list[int], per_source: int = 24) -> None:
    """The selected points' images, one grid per source (synthetic sets first, real images last)."""
    by_id = {r["id"]: r for r in rows}
    chosen = [by_id[i] for i in ids if i in by_id and by_id[i].get("thumb")]
    if not chosen:
        st.caption("Select points (box or lasso in the plot's toolbar) to see their images here.")
        return
    sources = sorted({r["source"] for r in chosen}, key=lambda s: (s == "real", s))
    st.markdown(f"**{len(chosen)} selected**")
    for src in sources:
        pts = [r for r in chosen if r["source"] == src]
        images = torch.stack([from_data_uri(r["thumb"]) for r in pts[:per_source]])
        classes = ", ".join(sorted({r["class_name"] for r in pts}))
        shown = f" (first {per_source})" if len(pts) > per_source else ""
        st.image(tile_images(images, ncol=8, min_tile=40), width="stretch",
                 caption=f"{src}: {len(pts)} images{shown}; classes {classes}")


def show(names: list[str]) -> None:
    method, color, max_points = controls()
    key = ("em-go", tuple(names), method, max_points)
    if method != "pca" and not st.session_state.get(str(key)):
        if st.button(f"Compute {method.upper()}", type="primary", key="em-compute"):
            st.session_state[str(key)] = True
            st.rerun()
        return
    with st.spinner(f"{method.upper()} of real + {len(names)} image sets..."):
        try:
            result = analyse_runs([str(runs_root() / n) for n in names], embedding=method, max_points=max_points)
        except ValueError as exc:
            st.error(f"Cannot embed these runs together: {exc}")
            return
    emb = result.embedding
    rows = emb.rows
    left, right = st.columns([2, 1])
    fig = figures.embedding_scatter(rows, color, f"{method.upper()} of {result.info['feature_model_name']} features")
    event = ui.chart(fig, "em-plot", where=left, on_select="rerun", selection_mode=("box", "lasso", "points"))
    ids = [int(p["customdata"][0]) for p in (event.selection.points if event else []) if p.get("customdata")]
    with right:
        gallery(rows, ids)
    timing = "from cache" if emb.cached else f"fit in {emb.seconds:.1f} s"
    st.caption(f"{emb.n_shown} of {emb.n_total} points, {timing}. " + " ".join(emb.notes))


chosen = pick_image_sets("em-runs")
if chosen:
    show(chosen)
