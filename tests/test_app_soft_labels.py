"""Soft labels page: storage calculator (the paper's 113 GB), label-size curves, the one-view inspector."""
from __future__ import annotations

from app_support import app_at

from appkit import figures


def test_calculator_reproduces_113_gb_for_imagenet_ipc200(app_env):
    at = app_at("app_pages/soft_labels.py")
    at.selectbox(key="sl-ds").set_value("ImageNet-1K").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["paper formula N·E·(2C+25)"] == "113.16 GB"
    at.select_slider(key="sl-factor").set_value(40).run()
    kept = next(m.value for m in at.metric if m.label.startswith("kept at 40×"))
    assert kept.endswith("GB") and 2.5 < float(kept.split()[0]) < 3.0  # paper: 2.85 GB


def test_curves_and_inspector_read_the_sweep(app_env):
    at = app_at("app_pages/soft_labels.py")
    assert "t-sweep" in at.multiselect(key="sl-sweeps").value
    assert at.radio(key="sl-x").value == "ratio"  # compression first: ticks at the ratios that ran
    store = at.selectbox(key="sl-store")
    assert any(o.startswith("t-sweep/labels-") for o in store.options)
    at.number_input(key="sl-batch").set_value(3).run()
    at.number_input(key="sl-temp").set_value(4.0).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2  # the curve + the top-5 bars
    assert any("label epoch" in c for img in at.get("image") for c in img.captions)


def test_label_curve_is_mean_and_std_over_seeds_on_a_log_axis():
    rows = [{"source": "a", "label_bytes": 100, "accuracy": 0.5}, {"source": "a", "label_bytes": 100, "accuracy": 0.7},
            {"source": "a", "label_bytes": 1000, "accuracy": 0.9}]
    fig = figures.label_curve(rows)
    (trace,) = fig.data
    assert list(trace.x) == [100.0, 1000.0]
    assert list(trace.y) == [60.0, 90.0]
    assert abs(trace.error_y.array[0] - 14.1421356) < 1e-4 and trace.error_y.array[1] == 0.0
    assert fig.layout.xaxis.type == "log"


def test_sweep_launcher_refuses_a_taken_run_name_and_launches_nothing(app_env):
    at = app_at("app_pages/soft_labels.py")
    name_box = next(t for t in at.text_input if t.key.startswith("sw-name-"))
    name_box.set_value("t-sweep").run()  # the fixture's sweep already has this name
    before = sorted(p.name for p in app_env.iterdir())
    at.button(key="sw-launch").click().run()
    assert not at.exception
    assert any("exists" in e.value for e in at.error)
    assert sorted(p.name for p in app_env.iterdir()) == before


def test_sweep_form_takes_relabel_settings_as_a_mapping_and_names_a_typo(app_env):
    at = app_at("app_pages/soft_labels.py")
    assert at.text_input(key="sw-knob-relabel").value == ""  # nothing changed from RelabelConfig's defaults
    at.text_input(key="sw-knob-relabel").set_value("epocs: 3").run()
    next(t for t in at.text_input if t.key.startswith("sw-name-")).set_value("sweep-typo").run()
    before = sorted(p.name for p in app_env.iterdir())
    at.button(key="sw-launch").click().run()
    assert any("relabel: unknown RelabelConfig key(s): epocs" in e.value for e in at.error), [e.value for e in at.error]
    assert sorted(p.name for p in app_env.iterdir()) == before
