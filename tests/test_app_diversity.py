"""Diversity page: the diversity table for several runs, per-class bars and heatmaps, space switch."""
from __future__ import annotations

from app_support import app_at


def test_diversity_table_has_one_row_per_chosen_run(app_env):
    at = app_at("app_pages/diversity.py")
    chosen = at.multiselect(key="dv-runs").value
    assert set(chosen) >= {"t-sre2l", "t-lpld"}
    table = at.table[0].value  # a static table: headers for people, numbers rounded
    assert list(table.index) == list(chosen)
    within = table["within-class cos (features)"].astype(float)
    assert ((within > -1) & (within <= 1)).all()
    assert all(c.startswith("[") for c in table["95% interval (classes)"])
    assert len(at.get("plotly_chart")) == 2  # per-class similarity + heatmaps


def test_recall_is_left_empty_where_it_cannot_be_computed(app_env):
    """IPC 5 leaves too few images per class for k-NN recall (the page's note says so): the table
    used to show recall 1.000 there."""
    at = app_at("app_pages/diversity.py")
    assert any("recall needs" in c.value for c in at.caption)
    real = at.table[1].value
    assert (real["recall"] == "").all() and (real["precision"] != "").all()


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
