"""Learned labels page: the launch form, a finished image run (heatmap, step sizes, accuracy against
one-hot, images), a text run (decoded sentences), and a launch from the page."""
from __future__ import annotations

import time

import pytest
from app_support import app_at

from distill_core import runs

PAGE = "app_pages/learned_labels.py"


@pytest.fixture
def learned_env(learned_root, monkeypatch):
    monkeypatch.setenv("DISTILL_RUNS", str(learned_root))
    return learned_root


def test_finished_image_run_shows_labels_steps_and_accuracy(learned_env):
    at = app_at(PAGE)
    assert at.title[0].value == "Learned labels"
    at.selectbox(key="ll-run").set_value("digits-m4").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) >= 3  # heatmap, step sizes, accuracy (+ outer loss)
    assert at.get("image"), "the learned images are missing"
    assert not any("No one-hot run" in c.value for c in at.caption)  # digits-m4-onehot is its baseline


def test_text_run_shows_decoded_sentences(learned_env):
    at = app_at(PAGE)
    at.selectbox(key="ll-run").set_value("text-m3").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == 3 and "decoded (nearest word per position)" in table.columns
    assert any("No one-hot run" in c.value for c in at.caption)


def test_invalid_setting_is_reported_not_launched(learned_env):
    at = app_at(PAGE)
    at.number_input(key="ll-images-inner_steps").set_value(0).run()
    at.text_input(key="ll-name-images").set_value("zero-steps").run()
    at.button(key="ll-launch").click().run()
    assert any("inner_steps" in e.value for e in at.error)
    assert not (learned_env / "zero-steps").exists()


def test_launch_runs_learned_and_onehot_jobs(learned_env):
    at = app_at(PAGE)
    at.number_input(key="ll-images-outer_steps").set_value(3).run()
    at.number_input(key="ll-images-eval_standard_steps").set_value(2).run()
    at.text_input(key="ll-name-images").set_value("launched").run()
    at.button(key="ll-launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.time() + 120
    targets = [learned_env / "launched", learned_env / "launched-onehot"]
    while time.time() < deadline and any(runs.read_status(t)["state"] in ("queued", "running", "unknown")
                                         for t in targets):
        time.sleep(0.5)
    assert [runs.read_status(t)["state"] for t in targets] == ["done", "done"]
    assert runs.load_run(targets[1]).metrics["method"] == "onehot"
