"""Home: what the tool does, the runs on disk, and the one-click digits quick start."""
from __future__ import annotations

import time

import streamlit as st

from appkit import jobs_ui, runs_view
from appkit.analysis import load_set
from appkit.images import class_grid
from appkit.paths import runs_root
from distill_core import runs

st.title("Soft-label dataset distillation")
st.html(
    "<p class='dc-lede'>distill_core compresses a training set into a few synthetic images per class plus the "
    "teacher's soft labels (SRe2L and class-wise LPLD synthesis, FKD relabeling, label pruning). "
    "It measures <em>why</em> that works: within-class similarity, diversity against real data, embeddings, "
    "and student accuracy against label storage, always beside random real images with the same labels. "
    "Every job writes a run folder (config, provenance, metrics, tensors), so nothing is lost on reload.</p>"
)


def _pipeline_runs() -> list[runs.RunInfo]:
    """Pipeline runs, newest first (a just-launched one has no stage yet: known by its name)."""
    return [r for r in runs.list_runs(runs_root())
            if runs_view.kind(r) == "pipeline" or (r.name.startswith("quickstart-") and r.state in jobs_ui.ACTIVE)]


def _new_name() -> str:
    return f"quickstart-{time.strftime('%m%d-%H%M%S')}"


def _children(name: str) -> list[runs.RunInfo]:
    return [r for r in runs.list_runs(runs_root()) if r.name.startswith(name + "-")]


def _result_table(results: list[dict]) -> list[dict]:
    """One row per image source, one column per (strategy, compression): mean test accuracy in %."""
    table: dict[str, dict] = {}
    for r in results:
        col = "hard labels" if r.get("strategy") == "hard_labels" else f"{r.get('strategy')} {float(r.get('ratio', 0)):g}×"
        acc = r.get("accuracy_mean", r.get("accuracy"))
        row = table.setdefault(str(r.get("source")), {"source": str(r.get("source"))})
        row[col] = None if acc is None else round(100 * float(acc), 1)
    return list(table.values())


def _show_results(name: str) -> None:
    sets = [r for r in _children(name) if (r.path / "images.pt").is_file()]
    if not sets:
        return
    st.markdown("**Images made by the quick start** (one row per class)")
    cols = st.columns(min(3, len(sets)))
    order = {"sre2l": 0, "+C": 1, "lpld": 2, "random_real": 3}
    for col, info in zip(cols, sorted(sets, key=lambda r: (order.get(runs_view.method_of(r), 9), r.name))):
        art = load_set(info.path)
        col.image(class_grid(art.images, art.labels, per_class=min(art.ipc, 10), min_tile=24),
                  caption=f"{info.name} · {art.method} · IPC {art.ipc}", width="stretch")
    results = runs.load_run(runs_root() / name).metrics.get("results") or []
    if results:
        st.markdown("**Student accuracy on the real test set** (soft labels at each compression; hard labels for reference)")
        st.dataframe(_result_table(results), hide_index=True)
    st.markdown("Next: look at them closely.")
    links = st.columns(4)
    links[0].page_link("app_pages/diversity.py", label="Similarity heatmaps", icon="🔳")
    links[1].page_link("app_pages/embeddings.py", label="Embedding", icon="🗺️")
    links[2].page_link("app_pages/soft_labels.py", label="Label size vs accuracy", icon="🏷️")
    links[3].page_link("app_pages/export.py", label="Export a report", icon="📤")


def quick_start() -> None:
    st.subheader("Quick start")
    pipelines = _pipeline_runs()
    st.markdown(
        "One click runs the whole distillation on the embedded **digits** dataset (8×8, 10 classes) on this "
        "machine: a teacher, SRe2L and class-wise LPLD images at IPC 10, random real images, soft labels, "
        "label pruning and students. About a minute on a laptop CPU."
    )
    busy = any(r.state in jobs_ui.ACTIVE for r in pipelines)
    if st.button("Run the digits quick start", type="primary", disabled=busy, key="quickstart"):
        name = _new_name()
        jobs_ui.launch(["pipeline", "--dataset", "digits", "--run-dir", runs_root() / name], runs_root() / name)
        st.session_state["quickstart_run"] = name
        st.rerun()
    latest = st.session_state.get("quickstart_run") or (pipelines[0].name if pipelines else None)
    if latest and (runs_root() / latest).is_dir():
        status = jobs_ui.job_panel(runs_root() / latest, key="home-qs")
        if status.get("state") == "done":
            _show_results(latest)


def runs_table() -> None:
    st.subheader("Runs on disk")
    rows = runs_view.table_rows()
    st.caption(f"folder: `{runs_root()}` (set `DISTILL_RUNS` to use another)")
    if not rows:
        st.info("No runs yet. Start with the quick start above, or train a teacher on the **Data & teacher** page.")
        return
    st.dataframe(
        rows, hide_index=True, width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100, format="%d%%"),
            "accuracy": st.column_config.NumberColumn("accuracy (%)", format="%.2f"),
            "ipc": st.column_config.NumberColumn("IPC", format="%d"),
        },
    )
    if st.button("Refresh", key="refresh-runs"):
        st.rerun()


quick_start()
runs_table()
