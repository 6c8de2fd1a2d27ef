"""Data & teacher page: dataset samples, model choice, teacher list with accuracy curve, safe run names."""
from __future__ import annotations

from app_support import app_at


def test_data_page_shows_dataset_and_teachers(app_env):
    at = app_at("app_pages/data_teacher.py")
    assert at.selectbox(key="dt-dataset").value == "digits"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["classes"] == "10" and metrics["image size"] == "1×8×8"
    assert "t" in at.selectbox(key="dt-teacher").options
    assert at.get("plotly_chart"), "the teacher's accuracy-per-epoch chart is missing"


def test_choosing_lenet_disables_convnet_width(app_env):
    at = app_at("app_pages/data_teacher.py")
    assert not at.number_input(key="dt-width").disabled
    at.selectbox(key="dt-model").set_value("lenet").run()
    assert at.number_input(key="dt-width").disabled
    assert at.text_input(key="dt-name-lenet").value == "digits-lenet-teacher"


def test_a_run_name_that_escapes_the_runs_folder_is_refused(app_env):
    at = app_at("app_pages/data_teacher.py")
    at.text_input(key="dt-name-convnet").set_value("../escape").run()
    at.button(key="dt-train").click().run()
    assert any("invalid run name" in e.value for e in at.error)
    assert not (app_env.parent / "escape").exists()
