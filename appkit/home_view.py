"""Home page sections: the quick start (launch, re-attach, its results) and the runs on disk."""
from __future__ import annotations

import time

import streamlit as st

from distill_core import runs

from . import jobs_ui, runs_view, ui
from .paths import runs_root


def _pipeline_runs() -> list[runs.RunInfo]:
    """Pipeline runs, newest first (a just-launched one has no stage yet: known by its name)."""
    return [r for r in runs.list_runs(runs_root())
            if runs_view.kind(r) == "pipeline" or (r.name.startswith("quickstart-") and r.state in jobs_ui.ACTIVE)]


def _new_name() -> str:
    return f"quickstart-{time.strftime('%m%d-%H%M%S')}"


def _children(name: str) -> list[runs.RunInfo]:
    return [r for r in runs.list_runs(runs_root()) if r.name.startswith(name + "-")]


ORDER = {"sre2l": 0, "+C": 1, "lpld": 2, "random_real": 3}


def _show_images(sets: list[runs.RunInfo]) -> None:
    from .analysis import load_set
    from .images import class_grid

    st.markdown("**Images made by the quick start** (one row per class)")
    cols = st.columns(min(3, len(sets)))
    for col, info in zip(cols, sets):
        art = load_set(info.path)
        col.image(class_grid(art.images, art.labels, per_class=min(art.ipc, 10), min_tile=24,
                             class_names=art.info.class_names),
                  caption=f"{runs_view.method_label(art.method)} · IPC {art.ipc} · {info.name}", width="stretch")


def similarity_verdict(d) -> str:
    """What the interval `d` (`bootstrap.Interval`) of LPLD − SRe2L within-class similarity says."""
    if d.contains(0.0):
        return "includes 0: no difference shown at this number of classes and iterations"
    return "excludes 0: class-wise synthesis made each class's images " + (
        "less alike, as Xiao & He report" if d.high < 0 else "more alike, against Xiao & He's finding")


def _show_similarity(sets: list[runs.RunInfo]) -> None:
    """The headline comparison: within-class similarity of each set with a 95% bootstrap interval over
    classes, and the paired difference of class-wise LPLD against SRe2L."""
    from .analysis import analyse_runs, class_intervals, paired_interval

    with st.spinner("within-class similarity of the quick start's images..."):
        try:
            result = analyse_runs([str(r.path) for r in sets])
        except ValueError as exc:
            st.caption(f"no similarity comparison: {exc}")
            return
    ci = class_intervals(result, "feat_within")
    st.markdown("**Within-class similarity** (cosine of teacher features; lower = more diverse images)")
    items = []
    for row in result.summary:
        iv = ci.get(row["run"])
        text = f"[{iv.low:.3f}, {iv.high:.3f}]" if iv else "no interval"
        items.append((runs_view.method_label(row["method"]), f"{row['feat_within_mean']:.3f}",
                      f"95% bootstrap interval over classes {text}"))
    by_method = {r["method"]: r["run"] for r in result.summary}
    note = ""
    if "lpld" in by_method and "sre2l" in by_method:
        try:
            d = paired_interval(result, by_method["lpld"], by_method["sre2l"])
            items.append(("LPLD − SRe2L", ui.signed(d.mean),
                          f"95% paired bootstrap interval [{ui.signed(d.low)}, {ui.signed(d.high)}]"))
            note = f"LPLD − SRe2L: {ui.signed(d.mean)}, 95% paired bootstrap interval over {d.n} classes " \
                   f"[{ui.signed(d.low)}, {ui.signed(d.high)}], which {similarity_verdict(d)}."
        except ValueError as exc:
            note = f"no paired difference: {exc}"
    ui.metrics(items)
    intervals = "; ".join(f"{runs_view.method_label(r['method'])} [{ci[r['run']].low:.3f}, {ci[r['run']].high:.3f}]"
                          for r in result.summary if r["run"] in ci)
    st.caption(f"95% bootstrap intervals over classes: {intervals}. {note}")


def _show_results(name: str) -> None:
    sets = [r for r in _children(name) if (r.path / "images.pt").is_file()]
    if not sets:
        return
    sets = sorted(sets, key=lambda r: (ORDER.get(runs_view.method_of(r), 9), r.name))
    _show_images(sets)
    _show_similarity(sets)
    _show_accuracy(name)
    st.markdown("Next: look at them closely.")
    links = st.columns(4)
    links[0].page_link("app_pages/compare.py", label="Compare two runs")
    links[1].page_link("app_pages/diversity.py", label="Similarity heatmaps")
    links[2].page_link("app_pages/embeddings.py", label="Embedding")
    links[3].page_link("app_pages/export.py", label="Export a report")


def _show_accuracy(name: str) -> None:
    from . import experiments, results

    info = runs.load_run(runs_root() / name)
    sweep = (info.metrics.get("children") or {}).get("sweep")
    if not sweep or not (csv := runs_view.find_csv(sweep, ("accuracy", "source"))):
        return
    rows = runs_view.read_csv_rows(csv)
    st.markdown("**Student accuracy on the real test set** (soft labels at each compression; hard labels for "
                "reference), with DD-Ranking's scores")
    teacher = info.metrics.get("teacher_test_acc")
    ui.table(results.accuracy_table(rows, teacher if teacher is not None else experiments.teacher_accuracy(sweep)),
             formats=results.TABLE_FORMATS,
             key="home-results")
    seeds = sorted({r.get("seed") for r in rows})
    st.caption(f"{len(seeds)} student seed{'s' if len(seeds) != 1 else ''} per cell"
               + (" (no spread over seeds: run a sweep with more seeds on **Soft labels** for ± std). "
                  if len(seeds) == 1 else ". ") + results.TABLE_HELP)


def quick_start() -> str | None:
    """The quick start's text and button; returns the run to show (the one just launched, else the newest)."""
    st.subheader("Quick start")
    pipelines = _pipeline_runs()
    st.markdown(
        "One click runs the whole distillation on the embedded **digits** dataset (8×8, 10 classes) on this "
        "machine: a teacher, SRe2L and class-wise LPLD images at IPC 10 (1,000 synthesis iterations), random "
        "real images, 100 stored label epochs pruned to 1× and 40×, and students for 3 seeds. About 30 s on an "
        "idle 2-core CPU."
    )
    busy = any(r.state in jobs_ui.ACTIVE for r in pipelines)
    if st.button("Run the digits quick start", type="primary", disabled=busy, key="quickstart"):
        name = _new_name()
        jobs_ui.launch(["pipeline", "--dataset", "digits", "--run-dir", runs_root() / name], runs_root() / name)
        st.session_state["quickstart_run"] = name
        st.rerun()
    latest = st.session_state.get("quickstart_run") or (pipelines[0].name if pipelines else None)
    return latest if latest and (runs_root() / latest).is_dir() else None


def show() -> None:
    """The quick start and the runs on disk. While the quick start runs, its progress bar and the runs table
    redraw together (every 1.5 s) from one read of the runs' status.json, so they show the same state and
    progress; once it has finished, its results sit between them."""
    latest = quick_start()
    if latest is not None and jobs_ui.is_active(runs_root() / latest):
        _live_job_and_table(latest)
        return
    if latest is not None:
        status = jobs_ui.job_panel(runs_root() / latest, key="home-qs")
        if status.get("state") == "done":
            _show_results(latest)
    runs_table()


def _live_job_and_table(name: str) -> None:
    @st.fragment(run_every=1.5)
    def _live() -> None:
        listed = runs.list_runs(runs_root())
        info = next((r for r in listed if r.name == name), None)
        if info is not None:
            jobs_ui.status_block(info.path, "home-qs", status=jobs_ui.listed_status(info))
        _runs_section(listed)
        if info is None or info.state not in jobs_ui.ACTIVE:
            st.rerun(scope="app")  # finished: draw its results

    _live()


def _runs_section(listed: list[runs.RunInfo]) -> list[dict]:
    st.subheader("Runs on disk")
    st.caption(f"folder: `{runs_root()}` (set `DISTILL_RUNS` to use another)")
    rows = runs_view.table_rows(listed=listed)
    if not rows:
        st.info("No runs yet. Start with the quick start above, or train a teacher on the **Data & teacher** page.")
        return rows
    st.dataframe(
        rows, hide_index=True, width="stretch", key="home-runs",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100, format="%d%%"),
            "accuracy": st.column_config.NumberColumn("accuracy (%)", format="%.2f"),
            "ipc": st.column_config.NumberColumn("IPC", format="%d"),
        },
    )
    return rows


def runs_table() -> None:
    """The runs on disk; while any of them runs, redrawn every 1.5 s from status.json."""
    live = any(r.state in jobs_ui.ACTIVE for r in runs.list_runs(runs_root()))

    @st.fragment(run_every=1.5 if live else None)
    def _table() -> None:
        rows = _runs_section(runs.list_runs(runs_root()))
        if live and not any(r["state"] in jobs_ui.ACTIVE for r in rows):
            st.rerun(scope="app")

    _table()
