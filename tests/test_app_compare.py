"""Compare page: class-wise vs cross-class by default, grids, similarity, config diff."""
from __future__ import annotations

from app_support import app_at


def test_compare_defaults_to_classwise_vs_crossclass(app_env):
    at = app_at("app_pages/compare.py")
    assert at.selectbox(key="cp-a").value == "t-lpld"
    assert at.selectbox(key="cp-b").value == "t-sre2l"
    diff = at.dataframe[-1].value
    assert "preset" in set(diff["field"])
    assert len(at.get("image")) == 2
    assert len([m for m in at.metric if "within-class" in m.label]) == 2
    assert len(at.get("plotly_chart")) == 2  # per-class similarity + accuracy vs compression from the sweep


def test_compare_with_random_real(app_env):
    at = app_at("app_pages/compare.py")
    at.selectbox(key="cp-b").set_value("t-random_real").run()
    assert not at.exception
    fields = set(at.dataframe[-1].value["field"])
    # a synthesis config has a preset and no dataset of its own; the random-real one the reverse; both IPC 5
    assert {"preset", "dataset"} <= fields and "ipc" not in fields, fields
