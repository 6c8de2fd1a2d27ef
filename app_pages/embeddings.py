"""Embeddings: one 2-D projection of real + synthetic features; select points to see their images."""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Embeddings")
st.caption("Features of the real training images and of every chosen image set, projected together by one fit, "
           "so positions are comparable. Draw a box or lasso on the plot to see the selected images.")

style.paint_now("Embeddings")

# below the title, so it is on screen before the library (torch) loads
from appkit import analysis_jobs, figures, ui  # noqa: E402
from appkit.analysis import analyse_runs, default_feature_model  # noqa: E402
from appkit.paths import runs_root  # noqa: E402
from appkit.pickers import pick_image_sets  # noqa: E402

METHOD_NOTES = {
    "pca": "PCA: instant, computed in the page.",
    "tsne": "t-SNE runs as a background job (progress every 50 iterations, cancel below): 2,000 points in about "
            "7 s on the 2-core CPU, the job's start included (50 principal components, 500 iterations, 1 thread; "
            "bench/embedding_speed.py).",
    "umap": "UMAP runs as a background job (progress every epoch, cancel below): 2,000 points in about 7 s, the "
            "job's start included (exact neighbours, 200 epochs, 1 thread; numba kernels compiled once by dev.py "
            "setup; bench/embedding_speed.py).",
}


def controls() -> tuple[str, str, int]:
    c1, c2, c3 = st.columns([2, 1, 1])
    method = c1.radio("projection", ["pca", "tsne", "umap"], horizontal=True, key="em-method",
                      format_func=lambda m: {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[m])
    color = c2.radio("colour by", ["class", "source"], horizontal=True, key="em-color")
    max_points = c3.select_slider("max points", [1000, 2000, 5000, 10000], value=2000, key="em-max",
                                  help="points embedded; more are subsampled (seeded), small sets are kept whole")
    st.caption(METHOD_NOTES[method])
    return method, color, max_points


def gallery(rows: list[dict], ids: list[int], per_source: int = 24) -> None:
    """The selected points' images, one grid per source (synthetic sets first, real images last)."""
    import torch

    from appkit.images import from_data_uri
    from distill_core.imageset import tile_images

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


def _embedding(names: list[str], method: str, max_points: int) -> tuple[dict, dict] | None:
    """(embedding rows and facts, analysis info) for the page: PCA in the page, t-SNE/UMAP from their job."""
    paths = [str(runs_root() / n) for n in names]
    if method == "pca":
        with st.spinner(f"PCA of real + {len(names)} image sets..."):
            try:
                result = analyse_runs(paths, embedding="pca", max_points=max_points)
            except ValueError as exc:
                st.error(f"Cannot embed these runs together: {exc}")
                return None
        emb = result.embedding
        return ({"rows": emb.rows, "n_shown": emb.n_shown, "n_total": emb.n_total, "notes": emb.notes,
                 "timing": "from cache" if emb.cached else f"fit in {emb.seconds:.1f} s"}, result.info)
    result = analysis_jobs.panel(paths, key="em-job", label=f"Compute {method.upper()} (background job)",
                                 embedding=method, max_points=max_points, feature_model=default_feature_model(paths))
    if result is None or result.embedding is None:
        return None
    emb = result.embedding
    return ({"rows": emb.rows, "n_shown": emb.n_shown, "n_total": emb.n_total, "notes": emb.notes,
             "timing": "fitted by the background job"}, result.info)


def show(names: list[str]) -> None:
    method, color, max_points = controls()
    got = _embedding(names, method, max_points)
    if got is None:
        return
    emb, info = got
    rows = emb.get("rows") or []
    if not rows:
        st.warning("The embedding job finished without points; see its log above.")
        return
    left, right = st.columns([2, 1])
    methods = _methods(names)
    fig = figures.embedding_scatter(rows, color, f"{method.upper()} of {info.get('feature_model_name', '')} features",
                                    methods=methods)
    event = ui.chart(fig, "em-plot", where=left, on_select="rerun", selection_mode=("box", "lasso", "points"))
    ids = [int(p["customdata"][0]) for p in (event.selection.points if event else []) if p.get("customdata")]
    with right:
        gallery(rows, ids)
    st.caption(f"{emb.get('n_shown')} of {emb.get('n_total')} points, {emb['timing']}. " + " ".join(emb.get("notes", [])))


def _methods(names: list[str]) -> dict[str, str]:
    from appkit.analysis import load_set

    return {n: load_set(runs_root() / n).method for n in names}


chosen = pick_image_sets("em-runs")
if chosen:
    show(chosen)
