"""Learned labels: a small bilevel distillation (images, soft labels and step sizes learned together,
Sucholutsky & Schonlau 2021) as a background job; its outer loss, label vectors, step sizes, and
learned against one-hot accuracy; decoded sentences for text."""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Learned labels")
st.caption("Bilevel dataset distillation (Wang et al. 2018) with learned soft labels (Sucholutsky & Schonlau, "
           "IJCNN 2021): M synthetic samples, one unnormalised label vector each (started one-hot) and T step sizes "
           "are learned so that T SGD steps on them train a network. With learned labels M may be below the "
           "number of classes.")

style.paint_now("Learned labels")

# below the title, so it is on screen before the library (torch) loads
from appkit import forms, jobs_ui, learned_view  # noqa: E402
from appkit.paths import runs_root  # noqa: E402
from distill_core import runs  # noqa: E402
from distill_core.synthesis.bilevel import BilevelConfig  # noqa: E402
from distill_core.synthesis.text import TextBilevelConfig  # noqa: E402

# a quick start that finishes well under a minute on a 2-core CPU
QUICK = {
    "images": {"dataset": "digits", "num_samples": 10, "outer_steps": 150, "outer_batch": 256, "init_lr": 0.1,
               "eval_nets": 2, "eval_standard_steps": 100, "checkpoint_every": 10, "device": "cpu"},
    "text": {"dataset": "fortunes", "num_samples": 4, "outer_steps": 150, "outer_batch": 128,
             "eval_nets": 1, "eval_standard_steps": 50, "checkpoint_every": 5, "device": "cpu"},
}
CONFIGS = {"images": (BilevelConfig, "bilevel"), "text": (TextBilevelConfig, "bilevel-text")}


def launch_form() -> None:
    kind = st.radio("data", list(CONFIGS), horizontal=True, key="ll-kind",
                    format_func=lambda k: {"images": "images (digits, Fashion-MNIST, ...)",
                                           "text": "text (fortunes or a CSV)"}[k])
    cls, stage = CONFIGS[kind]
    with st.expander("all settings (hover a field for its unit and typical value)", expanded=False):
        values = forms.config_form(cls, QUICK[kind], f"ll-{kind}")
    baseline = st.checkbox("also run the one-hot baseline (same settings, labels fixed)", value=True, key="ll-base")
    name = st.text_input("run name", value=f"{values.get('dataset', kind).split(':')[0]}-bilevel-m"
                         f"{values.get('num_samples', 10)}", key=f"ll-name-{kind}")
    if not st.button("Launch bilevel distillation", type="primary", key="ll-launch"):
        return
    cfg, err = forms.build_config(cls, values)
    try:
        targets = [(cfg, jobs_ui.new_run_dir(name))] if cfg is not None else []
        if cfg is not None and baseline and cfg.learn_labels:
            targets.append((cls(**{**cfg.__dict__, "learn_labels": False}), jobs_ui.new_run_dir(f"{name}-onehot")))
    except ValueError as exc:
        err = err or str(exc)
    if err:
        st.error(err)
        return
    for c, run_dir in targets:
        jobs_ui.launch_config(stage, c, run_dir)
    st.session_state["ll-run"] = name
    st.rerun()


def runs_section() -> None:
    st.subheader("Bilevel runs")
    found = learned_view.bilevel_runs(runs_root())
    pick = st.session_state.get("ll-run")
    names = [r.name for r in found]
    if pick and pick not in names and (runs_root() / pick).is_dir():
        names.insert(0, pick)  # just launched: not yet a stage run on disk
    if not names:
        st.caption("none yet: launch one above")
        return
    name = st.selectbox("run", names, index=names.index(pick) if pick in names else 0, key="ll-run")
    status = jobs_ui.job_panel(runs_root() / name, key="ll", preview=learned_view.preview)
    if status.get("state") != "done":
        return
    info = runs.load_run(runs_root() / name)
    try:
        learned_view.show_result(runs_root(), info)
    except ValueError as exc:
        st.error(f"Cannot read the results of {name}: {exc}")
    with st.expander("metrics"):
        st.json(info.metrics)


launch_form()
runs_section()
