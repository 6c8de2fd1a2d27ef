"""What the Learned labels page reads from bilevel run folders: the outer-loss log (live while the job
runs), the label matrix, step sizes, decoded sentences, and learned vs one-hot accuracy rows."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from distill_core import runs

from . import learned_figures, runs_view, ui

STAGES = ("bilevel", "bilevel-text")


def loss_rows(run_dir: Path) -> list[dict]:
    """Rows {step, outer_loss, ...} of outer_loss.csv (written at every checkpoint and at the end)."""
    return runs_view.read_csv_rows(Path(run_dir) / "outer_loss.csv")


def bilevel_runs(root: Path) -> list[runs.RunInfo]:
    return [r for r in runs.list_runs(root) if r.stage in STAGES]


def protocol_of(metrics: dict) -> str:
    return "learned steps, same init" if "learned_steps_same_init" in metrics.get("evaluation", {}) \
        else "learned steps, fresh init"


def comparison_rows(root: Path, run: runs.RunInfo) -> list[dict]:
    """Finished bilevel runs on the same data, sample count and init as `run`, with their accuracy (%)."""
    keys = ("dataset", "num_samples", "init", "inner_steps")
    out = []
    for r in bilevel_runs(root):
        if r.state != "done" or not r.metrics or any(r.config.get(k) != run.config.get(k) for k in keys):
            continue
        out.append({"run": r.name, "method": r.metrics.get("method", "learned"),
                    "accuracy": 100 * float(r.metrics["accuracy"]), "protocol": protocol_of(r.metrics)})
    return sorted(out, key=lambda row: (row["method"], row["run"]))


def preview(run_dir: Path) -> None:
    """The outer-loss curve from the run folder (so a reload keeps it); silent before the first checkpoint."""
    rows = loss_rows(run_dir)
    if rows:
        from . import figures

        fig = figures.loss_curves([{"step": r["step"], "outer_loss": r["outer_loss"]} for r in rows], x="step",
                                  log_y=False, title="Outer loss (CE on real batches)")
        ui.chart(fig, f"ll-loss-{Path(run_dir).name}-{len(rows)}", height=320)


def show_result(root: Path, run: runs.RunInfo) -> None:
    """Samples with their label vectors, the step sizes, accuracy against one-hot runs, sentences for text."""
    from distill_core.synthesis.learned_labels import load_learned_labels

    learned = load_learned_labels(run.path)
    st.subheader("What the labels learned")
    title = "Learned label vectors (samples x classes)" if learned.learn_labels else \
        "Label vectors (samples x classes): fixed one-hot, the baseline"
    ui.chart(learned_figures.label_heatmap(learned.labels.tolist(), learned.class_names, title),
             f"ll-heat-{run.name}", height=140 + 28 * len(learned.labels))
    if (run.path / "images.pt").is_file():
        _images(run.path, learned)
    if (run.path / "text.pt").is_file():
        _sentences(run.path)
    left, right = st.columns(2)
    ui.chart(learned_figures.step_size_bars(learned.step_sizes.tolist()), f"ll-lr-{run.name}", height=320,
             where=left)
    rows = comparison_rows(root, run)
    ui.chart(learned_figures.accuracy_bars(rows), f"ll-acc-{run.name}", height=320, where=right)
    if not any(r["method"] == "onehot" for r in rows):
        right.caption("No one-hot run with the same data, M and init yet: launch one to compare.")
    st.caption(f"Accuracy protocol: {protocol_of(run.metrics)} (a fresh network trained by the T learned steps). "
               "All protocols are in metrics below.")


def _images(run_dir: Path, learned) -> None:
    from distill_core.imageset import load_image_set

    art = load_image_set(run_dir)
    names = learned.class_names
    top = learned.labels.topk(min(2, learned.labels.shape[1]), dim=1)
    captions = [f"{i}: {names[int(top.indices[i, 0])]} {float(top.values[i, 0]):.2f}"
                + (f", {names[int(top.indices[i, 1])]} {float(top.values[i, 1]):.2f}" if top.indices.shape[1] > 1 else "")
                for i in range(len(art.labels))]
    from distill_core.imageset import tile_images

    st.image([tile_images(art.images[i : i + 1], ncol=1, min_tile=96) for i in range(len(art.labels))],
             caption=captions, width=110)


def _sentences(run_dir: Path) -> None:
    from distill_core.synthesis.text import load_learned_text

    text = load_learned_text(run_dir)
    rows = runs_view.read_csv_rows(run_dir / "sentences.csv")
    st.dataframe([{"sample": r["sample"], "label (argmax)": r["label"],
                   "decoded (nearest word per position)": " ".join(w for w in text["words"][i] if w != "<pad>")}
                  for i, r in enumerate(rows)], hide_index=True)
