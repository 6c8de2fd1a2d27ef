"""The label-size vs accuracy sweep: its result tables on disk and a launcher."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from distill_core import runs

from . import experiments, forms, jobs_ui, runs_view
from .paths import runs_root


def result_files() -> dict[str, Path]:
    """Run name (or name/file) -> tidy CSV with an `accuracy` column and a label-size column, newest first."""
    out: dict[str, Path] = {}
    for info in runs.list_runs(runs_root()):
        for need in (("accuracy", "label_bytes"), ("accuracy", "ratio")):
            path = runs_view.find_csv(info.path, need)
            if path is not None:
                out[info.name if path.parent == info.path else f"{info.name}/{path.parent.name}"] = path
                break
    return out


def launcher() -> None:
    """Form for a sweep (sources, teacher, grid) that writes its spec YAML and starts
    `python -m distill_core sweep --spec FILE --run-dir DIR`."""
    st.subheader("Launch a sweep")
    from distill_core.labels import sweep

    teachers = [r.name for r in runs_view.teacher_runs() if r.state == "done"]
    sets = [r.name for r in runs_view.image_set_runs()]
    if not teachers or not sets:
        st.caption("A sweep needs a finished teacher and at least one image-set run.")
        return
    with st.expander("sweep settings (image sources × pruning strategies × compression factors × seeds)"):
        teacher = st.selectbox("teacher (relabels every source)", teachers, key="sw-teacher")
        exp = next((e for e in experiments.list_experiments() if e.name == st.session_state.get("experiment")), None)
        sources = st.multiselect("image sources", sets, default=[n for n in (exp.image_sets if exp else []) if n in sets],
                                 key="sw-sources", help="defaults to the image sets of the experiment chosen above")
        values = forms.config_form(sweep.SweepConfig, {"device": "cpu", "seeds": (0,)}, "sw-knob",
                                   skip=("teacher", "sources"))
        name = st.text_input("run name", value="sweep-" + teacher, key=f"sw-name-{teacher}")
        go = st.button("Launch sweep", key="sw-launch")
    if not go:
        return
    values = {**values, "teacher": str(runs_root() / teacher), "sources": {n: str(runs_root() / n) for n in sources}}
    if jobs_ui.submit("sweep", sweep.SweepConfig, values, name, runs_root() / teacher) is not None:
        st.session_state["sw-running"] = name


def running_panel() -> None:
    """Progress of the sweep launched from this page (re-attached after a reload via the runs on disk)."""
    active = [r for r in runs.list_runs(runs_root()) if r.stage == "sweep" and r.state in jobs_ui.ACTIVE]
    name = st.session_state.get("sw-running") or (active[0].name if active else None)
    if name and (runs_root() / name).is_dir():
        jobs_ui.job_panel(runs_root() / name, key="sw")
