"""Synthesize page: presets fix batching/statistics, validation errors, the teacher sanity stop, run view."""
from __future__ import annotations

import shutil

from app_support import app_at

from distill_core.models import save_checkpoint
from distill_core.teacher import load_teacher


def test_presets_fix_the_ablation_knobs(app_env):
    at = app_at("app_pages/synthesize.py")
    assert set(at.radio(key="sy-preset").options) >= {"sre2l", "+C", "lpld"}
    batching = next(s for s in at.selectbox if s.label == "Batching")
    assert batching.disabled and batching.value == "class_wise"
    assert next(s for s in at.selectbox if s.label == "BN statistics").value == "class"
    at.radio(key="sy-preset").set_value("sre2l").run()
    assert next(s for s in at.selectbox if s.label == "Batching").value == "cross_class"
    assert next(s for s in at.selectbox if s.label == "BN statistics").value == "global"
    help_texts = [w.help for w in at.number_input if w.key == "sy-knob-ipc"]
    assert help_texts and "per class" in help_texts[0]


def test_run_name_follows_the_settings_until_typed(app_env):
    """A run named ...-ipc10 once held IPC 5 images: the suggested name was computed only once."""
    at = app_at("app_pages/synthesize.py")
    assert at.text_input(key="sy-name").value == "t-lpld-ipc10-it300"
    at.number_input(key="sy-knob-ipc").set_value(5).run()
    assert at.text_input(key="sy-name").value == "t-lpld-ipc5-it300"
    at.radio(key="sy-preset").set_value("sre2l").run()
    assert at.text_input(key="sy-name").value == "t-sre2l-ipc5-it300"
    at.text_input(key="sy-name").set_value("my-run").run()
    at.number_input(key="sy-knob-ipc").set_value(7).run()
    assert at.text_input(key="sy-name").value == "my-run"  # a typed name is the user's


def test_form_labels_and_advanced_group_come_from_the_knobs(app_env):
    at = app_at("app_pages/synthesize.py")
    labels = {w.label for w in at.number_input}
    assert "Images per class (IPC)" in labels and "BN loss weight α" in labels
    assert not any(w.key == "sy-knob-first_bn_multiplier" for w in at.number_input)  # advanced: hidden
    at.toggle(key="sy-knob-show-advanced").set_value(True).run()
    assert any(w.key == "sy-knob-first_bn_multiplier" and w.label == "First BN layer weight w₁" for w in at.number_input)
    assert not any("_" in w.label for w in [*at.number_input, *at.text_input, *at.selectbox, *at.checkbox])


def test_invalid_knob_is_reported_not_launched(app_env):
    at = app_at("app_pages/synthesize.py")
    at.number_input(key="sy-knob-ipc").set_value(0).run()
    at.text_input(key="sy-name").set_value("bad-ipc").run()
    at.button(key="sy-launch").click().run()
    assert any("ipc" in e.value for e in at.error)
    assert not (app_env / "bad-ipc").exists()


def test_teacher_near_chance_stops_the_launch(app_env):
    model, spec, _ = load_teacher(app_env / "t")
    broken = app_env / "t-untrained"
    shutil.copytree(app_env / "t", broken)
    try:
        save_checkpoint(broken / "teacher.pt", spec.build(seed=123), spec, epoch=0)  # random weights
        at = app_at("app_pages/synthesize.py")
        at.selectbox(key="sy-teacher").set_value("t-untrained").run()
        at.text_input(key="sy-name").set_value("from-untrained").run()
        at.button(key="sy-launch").click().run()
        assert any("Stopped before launching" in e.value for e in at.error), [e.value for e in at.error]
        assert not (app_env / "from-untrained").exists()
    finally:
        shutil.rmtree(broken)


def test_finished_run_shows_losses_and_metrics(app_env):
    at = app_at("app_pages/synthesize.py")
    at.selectbox(key="sy-run").set_value("t-lpld").run()
    assert any("t-lpld" in p.proto.text for p in at.get("progress"))
    assert at.get("plotly_chart"), "loss curves missing"
    assert at.get("image"), "class grids missing"


def test_launch_then_cancel_from_the_page(app_env):
    import time

    from distill_core import runs

    at = app_at("app_pages/synthesize.py")
    at.number_input(key="sy-knob-iterations").set_value(2000).run()
    at.text_input(key="sy-name").set_value("launched").run()
    at.button(key="sy-launch").click().run()
    run_dir = app_env / "launched"
    assert run_dir.is_dir() and runs.read_status(run_dir)["state"] in ("queued", "running")
    assert at.selectbox(key="sy-run").value == "launched"
    at.button(key="cancel-sy").click().run()
    deadline = time.time() + 60
    while time.time() < deadline and runs.read_status(run_dir)["state"] in ("queued", "running"):
        time.sleep(0.5)
    assert runs.read_status(run_dir)["state"] in ("cancelled", "interrupted")
