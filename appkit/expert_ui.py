"""The Expert labels page's data (study CSVs on disk, cached) and its study launcher."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from distill_core import runs
from distill_core.analysis.scaling import FORM, read_study_rows
from distill_core.labels.expert_sweep import best_expert_epochs, summarise
from distill_core.teacher import list_epoch_checkpoints

from . import expert_figures, jobs_ui, runs_view
from .paths import runs_root

IPCS = (1, 2, 5, 10, 20, 50)
TRANSFORM_PRESETS = {
    "none (the expert's labels)": ("none",),
    "hard labels (top-0)": ("topk:0",),
    "top-1 and top-2 kept": ("topk:1", "topk:2"),
    "swap test k = 1, 2, 5": ("swap:1", "swap:2", "swap:5"),
    "shuffled / uniform non-top mass": ("shuffle_nontop", "uniform_nontop"),
    "class 0 removed (two ways)": ("drop_class:0", "zero_class:0"),
}


def study_files() -> dict[str, Path]:
    """Run name -> results.csv of every `expertsweep` run, newest first."""
    return {r.name: r.path / "results.csv" for r in runs.list_runs(runs_root())
            if r.stage == "expertsweep" and (r.path / "results.csv").is_file()}


@st.cache_data(show_spinner=False)
def _rows(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> list[dict]:
    return read_study_rows(list(paths))


def load_rows(paths: list[Path]) -> list[dict]:
    """The ok rows of the studies, re-read when a CSV changes."""
    paths = [p for p in paths if p.is_file()]
    return _rows(tuple(map(str, paths)), tuple(p.stat().st_mtime for p in paths))


def best_epochs(rows: list[dict]) -> dict[int, int]:
    """IPC -> expert checkpoint epoch of the best untransformed labels."""
    summary = [r | {"expert_epoch": r["checkpoint_epoch"]} for r in summarise(rows)]
    return best_expert_epochs(summary)


@st.cache_data(show_spinner=False)
def scaling(rows: list[dict]) -> dict:
    """Per configuration: points and the power-law fit with 100 bootstrap refits (cached per rows)."""
    return expert_figures.scaling_data(rows, boots=100)


def _pm(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def zero_shot_table(data: list[dict]) -> list[dict]:
    return [{"removal": d["transform"], "class": d["class"], "IPC": d["ipc"], "removed class acc (%)": _pm(*d["removed"]),
             "overall acc (%)": _pm(*d["overall"]), "chance (%)": f"{100 * (d['chance'] or 0):.1f}"} for d in data]


def fit_table(fits: dict, names: list[str]) -> list[dict]:
    out = []
    for name in names:
        fit = fits[name]["fit"]
        if "error" in fit:
            out.append({"configuration": name, "form": FORM, "a": "", "b": "", "c": "", "RMSE (points)": fit["error"]})
            continue
        row = {"configuration": name, "form": FORM}
        for k in ("a", "b", "c"):
            lo, hi = fit["intervals"][k]
            row[k] = f"{fit['params'][k]:.3f} [{lo:.3f}, {hi:.3f}]"
        row["RMSE (points)"] = f"{100 * fit['rmse']:.2f} pts over {fit['points']} points"
        out.append(row)
    return out


def frontier_table(rows: list[dict]) -> list[dict]:
    return [{"IPC": c["ipc"], "configuration": c["config"], "accuracy (%)": _pm(c["accuracy_mean"], c["accuracy_std"]),
             "image bytes": c["image_bytes"], "label bytes": c["label_bytes"], "total bytes": c["total_bytes"]}
            for c in expert_figures.frontier_data(rows)["frontier"]]


def launcher() -> None:
    """A small study (teacher checkpoints × IPC × label transforms × seeds) as a background job."""
    from distill_core.labels.expert_sweep import ExpertSweepConfig

    st.subheader("Launch a study")
    teachers = [r for r in runs_view.teacher_runs() if r.state == "done"]
    if not teachers:
        st.caption("A study needs a finished teacher run (Data & teacher page); its checkpoints are the experts.")
        return
    with st.expander("study settings (expert epochs × images per class × label transforms × seeds)"):
        name = st.selectbox("teacher (its checkpoints are the experts)", [r.name for r in teachers], key="ex-teacher")
        epochs = list_epoch_checkpoints(runs_root() / name)
        c = st.columns(3)
        chosen = c[0].multiselect("expert epochs", epochs, default=[epochs[len(epochs) // 4], epochs[-1]]
                                  if len(epochs) > 1 else epochs, key=f"ex-epochs-{name}")
        ipcs = c[1].multiselect("images per class", IPCS, default=[1, 10], key="ex-ipcs")
        presets = c[2].multiselect("label transforms", list(TRANSFORM_PRESETS), default=list(TRANSFORM_PRESETS)[:2],
                                   key="ex-transforms")
        c = st.columns(4)
        seeds = c[0].number_input("seeds", 1, 10, 2, key="ex-seeds")
        student_epochs = c[1].number_input("student epochs", 1, 2000, 100, key="ex-sepochs")
        width = c[2].number_input("student width", 4, 256, 16, key="ex-width")
        temperature = c[3].number_input("temperature T", 0.05, 50.0, 1.0, key="ex-temp")
        run_name = st.text_input("run name", value=f"expert-{name}", key=f"ex-name-{name}")
        go = st.button("Launch study", key="ex-launch")
    if not go:
        return
    values = {"teacher": str(runs_root() / name), "expert_epochs": tuple(chosen), "ipcs": tuple(ipcs),
              "transforms": tuple(t for p in presets for t in TRANSFORM_PRESETS[p]), "seeds": tuple(range(int(seeds))),
              "temperature": float(temperature), "device": "cpu",
              "student": {"epochs": int(student_epochs), "model_args": {"width": int(width), "depth": 3}}}
    run_dir = jobs_ui.submit("expertsweep", ExpertSweepConfig, values, run_name, runs_root() / name)
    if run_dir is not None:
        st.session_state["ex-running"] = run_dir.name


def running_panel() -> None:
    """Progress of the study launched from this page (found again after a reload from the runs on disk)."""
    active = [r for r in runs.list_runs(runs_root()) if r.stage == "expertsweep" and r.state in jobs_ui.ACTIVE]
    name = st.session_state.get("ex-running") or (active[0].name if active else None)
    if name and (runs_root() / name).is_dir():
        jobs_ui.job_panel(runs_root() / name, key="ex")
