"""Background jobs in the page: launch `python -m distill_core ...`, poll status.json, cancel.

A job is a subprocess writing its run folder, so widget clicks and page reloads never kill it;
`job_panel` re-attaches to whatever status.json says, from any page, after any reload.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import streamlit as st

from distill_core import jobs, runs
from distill_core.config import dump_yaml

from . import checks, forms
from .paths import ROOT, runs_root
from .runs_view import percent

ACTIVE = ("running", "queued")


def new_run_dir(name: str) -> Path:
    """The folder for a new run typed as `name` in a form; ValueError when invalid or already taken."""
    run_dir = runs.safe_run_name(name, runs_root())
    if run_dir.exists():
        raise ValueError(f"run {name!r} exists; choose another name or delete it")
    return run_dir


def checked_request(cls: type, values: dict, name: str, teacher_dir: Path | None = None) -> tuple[Any, Path] | None:
    """Validate a launch form: the config, the new run's name and (for a job that reads a teacher run)
    the teacher's sanity on real data.

    Shows what is wrong in the page and returns None, or returns (config, run folder) to launch.
    """
    cfg, err = forms.build_config(cls, values)
    try:
        run_dir = new_run_dir(name)
    except ValueError as exc:
        err = err or str(exc)
    if err:
        st.error(err)
        return None
    if teacher_dir is not None and not checks.require_sane_teacher(teacher_dir, getattr(cfg, "dataset", "") or ""):
        return None
    return cfg, run_dir


def submit(stage: str, cls: type, values: dict, name: str, teacher_dir: Path | None = None) -> Path | None:
    """The launch path of every form: validate (`checked_request`), then start stage `stage` on the
    config (`launch_config`). Returns the new run's folder, or None after showing what is wrong."""
    request = checked_request(cls, values, name, teacher_dir)
    if request is None:
        return None
    cfg, run_dir = request
    launch_config(stage, cfg, run_dir)
    return run_dir


def launch(args: list[str], run_dir: Path) -> int | None:
    """Start `python -m distill_core <args>` for `run_dir` from the repository root; returns the pid, or
    None after showing why nothing started (a folder in use by another job, or not a run)."""
    try:
        return jobs.launch([str(a) for a in args], Path(run_dir), cwd=ROOT)
    except (ValueError, OSError) as exc:
        st.error(f"Not started: {exc}")
        return None


CONFIG_FLAG = {"sweep": "--spec", "expertsweep": "--spec"}  # the flag taking the config file; else --config


def launch_config(stage: str, cfg: Any, run_dir: Path, extra: list[str] | None = None) -> int | None:
    """Launch stage `stage` with config `cfg`: the config goes through a YAML file (every field, exactly
    as the widgets set it) kept under `<runs>/.requests/`, so the job resolves it like the CLI would."""
    run_dir = Path(run_dir)
    request = run_dir.parent / ".requests" / f"{run_dir.name}.yaml"
    runs.write_text_atomic(request, dump_yaml(cfg))
    flag = CONFIG_FLAG.get(stage, "--config")
    return launch([stage, flag, str(request), "--run-dir", str(run_dir), *(extra or [])], run_dir)


def is_active(run_dir: Path) -> bool:
    """Whether the job of `run_dir` is queued or running."""
    return runs.read_status(Path(run_dir)).get("state") in ACTIVE


def listed_status(info: runs.RunInfo) -> dict:
    """A listed run's status.json with the state, progress and message the runs table shows for it."""
    return {**info.status, "state": info.state, "progress": info.progress, "message": info.message}


def status_block(run_dir: Path, key: str, preview: Callable[[Path], None] | None = None,
                 status: dict | None = None) -> dict:
    """One job's progress bar (state, percent, message), cancel button, error and log tail, drawn once;
    from `status` when given (a snapshot shared with other elements), else from status.json now."""
    status = runs.read_status(run_dir) if status is None else status
    state = status.get("state", "unknown")
    progress = float(status.get("progress", 0.0))
    msg = status.get("message") or state
    st.progress(min(max(progress, 0.0), 1.0), text=f"**{run_dir.name}** · {state} · {percent(progress)}% · {msg}")
    if state in ACTIVE and st.button("Cancel job", key=f"cancel-{key}", type="secondary"):
        jobs.cancel(run_dir)
        st.toast(f"cancel sent to {run_dir.name}")
    if state == "failed":
        st.error(f"Job {run_dir.name} failed: {status.get('error') or msg}")
    elif state in ("cancelled", "interrupted"):
        st.warning(f"Job {run_dir.name} is {state}: {msg}")
    if preview is not None:
        preview(run_dir)
    tail = jobs.log_tail(run_dir, 15)
    if tail:
        with st.expander("job log (last lines)", expanded=state == "failed"):
            st.code(tail, language=None)
    return status


def job_panel(run_dir: Path, key: str, every: float = 1.5, preview: Callable[[Path], None] | None = None) -> dict:
    """Show a run's progress; while it runs, redraw every `every` s and rerun the page when it ends."""
    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    if status.get("state") not in ACTIVE:
        return status_block(run_dir, key, preview)

    @st.fragment(run_every=every)
    def _live() -> None:
        now = status_block(run_dir, key, preview)
        if now.get("state") not in ACTIVE:
            st.rerun(scope="app")

    _live()
    return status
