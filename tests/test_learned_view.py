"""The data behind the Learned labels page's charts: label heatmap, step sizes, learned vs one-hot rows."""
from __future__ import annotations

import pytest

from appkit import learned_figures, learned_view
from appkit.palette import style_of
from distill_core import runs


def test_label_heatmap_shows_the_matrix_centred_on_zero():
    fig = learned_figures.label_heatmap([[1.0, -0.5], [0.2, 2.0]], ["a", "b"])
    heat = fig.data[0]
    assert [list(r) for r in heat.z] == [[1.0, -0.5], [0.2, 2.0]]
    assert heat.zmid == 0.0 and (heat.zmin, heat.zmax) == (-2.0, 2.0) and list(heat.x) == ["a", "b"]


def test_step_size_bars_number_the_inner_steps():
    fig = learned_figures.step_size_bars([0.3, 0.1, 0.05])
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [0.3, 0.1, 0.05]


def test_accuracy_bars_colour_by_method():
    rows = [{"run": "a", "method": "learned", "accuracy": 60.0}, {"run": "b", "method": "onehot", "accuracy": 40.0}]
    fig = learned_figures.accuracy_bars(rows)
    assert [t.marker.color for t in fig.data] == [style_of("learned").colour, style_of("onehot").colour]
    assert [list(t.y) for t in fig.data] == [[60.0], [40.0]]


def test_comparison_rows_pair_learned_with_onehot(learned_root):
    run = runs.load_run(learned_root / "digits-m4")
    rows = learned_view.comparison_rows(learned_root, run)
    assert [(r["run"], r["method"]) for r in rows] == [("digits-m4", "learned"), ("digits-m4-onehot", "onehot")]
    metrics = runs.load_run(learned_root / "digits-m4-onehot").metrics
    assert rows[1]["accuracy"] == pytest.approx(100 * metrics["evaluation"]["learned_steps_same_init"]["mean"])
    assert learned_view.comparison_rows(learned_root, runs.load_run(learned_root / "text-m3"))[0]["run"] == "text-m3"


def test_loss_rows_come_from_the_run_folder(learned_root):
    rows = learned_view.loss_rows(learned_root / "digits-m4")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["outer_loss"] > 0 for r in rows)
