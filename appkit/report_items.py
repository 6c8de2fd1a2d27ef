"""What goes into an exported report: figures and tables for chosen image-set runs."""
from __future__ import annotations

from pathlib import Path

from . import experiments, figures, results, runs_view
from .analysis import analyse_runs, class_intervals, load_set
from .images import class_grid, png_bytes
from .paths import runs_root
from .report import ReportItem

SECTIONS = ("images", "diversity table", "similarity heatmaps", "per-class similarity", "embedding (PCA)",
            "label size vs accuracy")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def collect(names: list[str], sections: tuple[str, ...], large: bool = False) -> list[ReportItem]:
    """Report items for runs `names` (folders under the runs root) and the chosen `sections`."""
    items: list[ReportItem] = []
    paths = [str(runs_root() / n) for n in names]
    if "images" in sections:
        for n in names:
            art = load_set(runs_root() / n)
            img = class_grid(art.images, art.labels, min(art.ipc, 10), min_tile=32, class_names=art.info.class_names)
            items.append(ReportItem(f"images_{_safe(n)}", f"{n}: {runs_view.method_label(art.method)}, IPC {art.ipc}",
                                    image_png=png_bytes(img), caption="one row per class"))
    need_analysis = {"diversity table", "similarity heatmaps", "per-class similarity", "embedding (PCA)"} & set(sections)
    if need_analysis and paths:
        result = analyse_runs(paths, embedding="pca" if "embedding (PCA)" in sections else "none")
        items += _analysis_items(result, sections, large)
    if "label size vs accuracy" in sections:
        items += _accuracy_items(names, large)
    return items


def _accuracy_items(names: list[str], large: bool) -> list[ReportItem]:
    """Per sweep that used one of `names`: its curve (those runs and the sweep's random real images) and
    the accuracy table with DD-Ranking's scores. Rows are matched by run folder, not method name."""
    items = []
    sweeps: dict[Path, set[str]] = {}
    for n in names:
        for sweep_dir, key in experiments.sweeps_covering(runs_root() / n):
            sweeps.setdefault(sweep_dir, set()).add(key)
    for sweep_dir, keys in sweeps.items():
        path = runs_view.find_csv(sweep_dir, ("accuracy", "source"))
        if path is None:
            continue
        all_rows = runs_view.read_csv_rows(path)
        keys = keys | {r["source"] for r in all_rows if r.get("method") == results.RANDOM_REAL}
        rows = [r for r in all_rows if r.get("source") in keys]
        x = "ratio" if rows and "ratio" in rows[0] else "label_bytes"
        fig = figures.style(figures.label_curve(rows, x=x, group=("source", "strategy")), large, height=460)
        items.append(ReportItem(f"label_curve_{_safe(sweep_dir.name)}", f"Accuracy vs label compression "
                                f"(sweep {sweep_dir.name})", fig, rows, caption="mean ± std over seeds; dashed: "
                                "hard-label students"))
        table = results.accuracy_table(rows, experiments.teacher_accuracy(sweep_dir))
        items.append(ReportItem(f"accuracy_{_safe(sweep_dir.name)}", f"Accuracy and DD-Ranking (sweep "
                                f"{sweep_dir.name})", rows=table, caption=results.TABLE_HELP, open_table=True))
    return items


def _analysis_items(result, sections: tuple[str, ...], large: bool) -> list[ReportItem]:
    items = []
    methods = {r["run"]: r["method"] for r in result.summary}
    if "diversity table" in sections:
        ci = class_intervals(result, "feat_within")
        rows = [{**r, "feat_within_ci_low": ci[r["run"]].low if r["run"] in ci else None,
                 "feat_within_ci_high": ci[r["run"]].high if r["run"] in ci else None} for r in result.summary]
        fig = figures.style(figures.summary_bars(rows, "feat_within_mean", "feat_within_ci_low", "feat_within_ci_high",
                                                 "within-class cosine (features), mean and 95% interval over classes",
                                                 methods), large, 400)
        items.append(ReportItem("diversity", "Diversity summary", fig, rows,
                                caption=f"features of {result.info['feature_model_name']} ({result.info['layer']}); "
                                        "interval: 95% bootstrap over classes"))
    if "per-class similarity" in sections:
        fig = figures.style(figures.per_class_bars(result.per_class, "feat_within", "within-class cosine",
                                                   methods=methods), large, 420)
        items.append(ReportItem("per_class_similarity", "Within-class similarity per class", fig, result.per_class))
    if "similarity heatmaps" in sections:
        zmin = figures.shared_zmin(m.numpy() for spaces in result.matrices.values() for m in spaces["features"].values())
        for run, spaces in result.matrices.items():
            info = load_set(Path(runs_root() / run)).info if (runs_root() / run).is_dir() else None
            names = info.class_names if info else tuple(str(c) for c in spaces["features"])
            means = {r["class"]: r["feat_within"] for r in result.per_class if r["run"] == run}
            fig = figures.style(figures.similarity_heatmaps({c: m.numpy() for c, m in spaces["features"].items()},
                                                            names, f"{run}: within-class cosine (features)",
                                                            means=means, zmin=zmin), large)
            rows = [{"class": c, "i": i, "j": j, "cos": float(m[i, j])} for c, m in spaces["features"].items()
                    for i in range(m.shape[0]) for j in range(m.shape[1])]
            items.append(ReportItem(f"heatmaps_{_safe(run)}", f"Similarity heatmaps: {run}", fig, rows,
                                    caption=f"one colour scale for every run: {zmin:.1f} to 1"))
    if "embedding (PCA)" in sections and result.embedding is not None:
        fig = figures.style(figures.embedding_scatter(result.embedding.rows, "class", "PCA of features", methods), large)
        rows = [{k: v for k, v in r.items() if k != "thumb"} for r in result.embedding.rows]
        items.append(ReportItem("embedding_pca", "Embedding (PCA, real + synthetic)", fig, rows))
    return items
