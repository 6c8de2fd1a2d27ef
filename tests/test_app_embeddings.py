"""Embeddings page: PCA at once, t-SNE on request; the figure's ids map back to images."""
from __future__ import annotations

from app_support import app_at

from appkit import figures
from appkit.analysis import analyse_runs


def test_pca_is_drawn_at_once_with_a_gallery_hint(app_env):
    at = app_at("app_pages/embeddings.py")
    assert at.radio(key="em-method").value == "pca"
    assert at.get("plotly_chart")
    assert any("Select points" in c.value for c in at.caption)


def test_tsne_waits_for_a_click_then_draws(app_env):
    at = app_at("app_pages/embeddings.py")
    at.select_slider(key="em-max").set_value(1000).run()
    at.radio(key="em-method").set_value("tsne").run()
    assert not at.get("plotly_chart")
    at.button(key="em-compute").click().run()
    assert at.get("plotly_chart")
    assert any("of" in c.value and "points" in c.value for c in at.caption)


def test_scatter_customdata_ids_are_the_rows_global_ids(app_env):
    result = analyse_runs([str(app_env / "t-lpld"), str(app_env / "t-sre2l")], embedding="pca", max_points=1000)
    rows = result.embedding.rows
    fig = figures.embedding_scatter(rows, "class")
    ids = [c[0] for tr in fig.data if tr.customdata is not None for c in tr.customdata]
    assert sorted(ids) == sorted(r["id"] for r in rows)
    synthetic = {r["source"] for r in rows} - {"real"}
    assert synthetic == {"t-lpld", "t-sre2l"}
