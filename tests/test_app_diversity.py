"""Diversity page: the diversity table for several runs, per-class bars and heatmaps, space switch."""
from __future__ import annotations

from app_support import app_at


def test_diversity_table_has_one_row_per_chosen_run(app_env):
    at = app_at("app_pages/diversity.py")
    chosen = at.multiselect(key="dv-runs").value
    assert set(chosen) >= {"t-sre2l", "t-lpld"}
    table = at.dataframe[0].value
    assert list(table["run"]) == list(chosen)
    assert ((table["feat_within_mean"] > -1) & (table["feat_within_mean"] <= 1)).all()
    assert len(at.get("plotly_chart")) == 2  # per-class bars + heatmaps


def test_switching_to_pixel_space_and_another_run(app_env):
    at = app_at("app_pages/diversity.py")
    at.radio(key="dv-space").set_value("pixels").run()
    at.selectbox(key="dv-heat-run").set_value("t-lpld").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2


def test_no_image_sets_offers_the_quick_start(runs_root):
    at = app_at("app_pages/diversity.py")
    assert any("quick start" in i.value for i in at.info)
    assert not at.get("plotly_chart")
