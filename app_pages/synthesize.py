"""Synthesize: presets of the ablation ladder, every knob, background job with live loss and previews."""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Synthesize")
st.caption("Recover images from a teacher by matching its BatchNorm statistics (SRe2L), per class (+C), "
           "and with class-conditional statistics (LPLD, Xiao & He 2024).")

style.paint_now("Synthesize")

# below the title, so it is on screen before the library (torch) loads
from appkit import forms, jobs_ui, runs_view, synth_view  # noqa: E402
from appkit.paths import runs_root  # noqa: E402
from distill_core import runs  # noqa: E402

PRESET_TEXT = {
    "sre2l": "**SRe2L**: mixed-class batches matched to the teacher's global running statistics.",
    "+C": "**+C**: one class per statistics group, still matched to the global statistics.",
    "lpld": "**LPLD (+CS)**: one class per group, matched to that class's own BN statistics.",
    "custom": "**custom**: set batching and statistics yourself.",
}


def launch_form() -> None:
    from distill_core.synthesis import synthesize

    teachers = [r for r in runs_view.teacher_runs() if r.state == "done"]
    if not teachers:
        st.info("No finished teacher yet. Train one on **Data & teacher**, or run the quick start on **Home**.")
        st.page_link("app_pages/data_teacher.py", label="Data & teacher")
        return
    teacher = st.selectbox("teacher run", [r.name for r in teachers], key="sy-teacher")
    presets = list(synthesize.PRESETS)
    preset = st.radio("preset (ablation ladder)", presets, index=presets.index("lpld"), horizontal=True, key="sy-preset")
    st.markdown(PRESET_TEXT.get(preset, ""))
    fixed = {}
    if synthesize.PRESETS.get(preset):
        fixed = dict(zip(("batching", "statistics"), synthesize.PRESETS[preset]))
    start = {"device": "cpu", **dict(zip(synthesize.PRESET_FIELDS, synthesize.CUSTOM_DEFAULTS))}
    values = forms.config_form(synthesize.SynthesisConfig, start, "sy-knob", skip=("teacher", "preset"), fixed=fixed)
    name = forms.auto_name("sy-name", f"{teacher}-{preset.replace('+', 'plus')}-ipc{values.get('ipc', 10)}"
                                      f"-it{values.get('iterations', 300)}")
    if not st.button("Launch synthesis", type="primary", key="sy-launch"):
        return
    values = {k: v for k, v in values.items() if k not in fixed}
    values = {**values, "teacher": str(runs_root() / teacher), "preset": preset}
    if jobs_ui.submit("synthesize", synthesize.SynthesisConfig, values, name, runs_root() / teacher) is None:
        return
    st.session_state["sy-selected"] = name
    st.session_state["sy-run"] = name  # show the new job below
    st.rerun()


def runs_view_section() -> None:
    st.subheader("Synthesis runs")
    found = [r for r in runs.list_runs(runs_root()) if r.stage == "synthesize"
             or (r.state in jobs_ui.ACTIVE and r.name == st.session_state.get("sy-selected"))]
    if not found:
        st.caption("none yet")
        return
    names = [r.name for r in found]
    pick = st.session_state.get("sy-selected")
    active = [r.name for r in found if r.state in jobs_ui.ACTIVE]
    default = pick if pick in names else (active[0] if active else names[0])
    name = st.selectbox("run", names, index=names.index(default), key="sy-run")
    jobs_ui.job_panel(runs_root() / name, key="sy", preview=synth_view.preview)
    synth_view.metrics_view(runs.load_run(runs_root() / name))


launch_form()
runs_view_section()
