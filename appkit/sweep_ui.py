"""The label-size vs accuracy sweep: its result tables on disk and a launcher."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from distill_core import runs
from distill_core.config import dump_yaml

from . import forms, jobs_ui, lib, runs_view
from .paths import runs_root

RESULT_COLUMNS = ("accuracy",)


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


def _spec_class(module) -> type | None:
    """The sweep module's spec dataclass (the class the YAML spec is read into)."""
    for name in ("SweepSpec", "SweepConfig"):
        cls = getattr(module, name, None)
        if cls is not None and dataclasses.is_dataclass(cls):
            return cls
    return None


def launcher() -> None:
    """Form over the sweep spec's fields; writes the spec YAML and starts `python -m distill_core sweep`."""
    st.subheader("Launch a sweep")
    sweep = lib.module("sweep")
    cls = _spec_class(sweep) if sweep is not None else None
    if cls is None:
        st.info(lib.missing_message("sweep"))
        return
    with st.expander("sweep settings (grid of image sources × pruning strategies × ratios × seeds)"):
        values = forms.config_form(cls, {}, "sw-knob")
        name = st.text_input("run name", value="sweep-digits", key="sw-name")
        go = st.button("Launch sweep", key="sw-launch")
    if not go:
        return
    spec, err = forms.build_config(cls, values)
    try:
        run_dir = runs.safe_run_name(name, runs_root())
        if run_dir.exists():
            raise ValueError(f"run {name!r} exists; choose another name")
    except ValueError as exc:
        err = err or str(exc)
    if err:
        st.error(err)
        return
    request = runs_root() / ".requests" / f"{name}.yaml"
    runs.write_text_atomic(request, dump_yaml(spec))
    jobs_ui.launch(["sweep", "--spec", str(request), "--run-dir", str(run_dir)], run_dir)
    st.success(f"sweep {name} started; its progress is below")
    jobs_ui.job_panel(run_dir, key="sw")
