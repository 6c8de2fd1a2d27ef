"""What goes into an exported report: figures and tables for chosen image-set runs."""
from __future__ import annotations

from pathlib import Path

from . import figures, runs_view, sweep_ui
from .analysis import analyse_runs, load_set
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
            img = class_grid(art.images, art.labels, min(art.ipc, 10), min_tile=32)
            items.append(ReportItem(f"images_{_safe(n)}", f"{n}: {art.method}, IPC {art.ipc}", image_png=png_bytes(img),
                                    caption="one row per class: " + ", ".join(art.info.class_names)))
    need_analysis = {"diversity table", "similarity heatmaps", "per-class similarity", "embedding (PCA)"} & set(sections)
    if need_analysis and paths:
        result = analyse_runs(paths, embedding="pca" if "embedding (PCA)" in sections else "none")
        items += _analysis_items(result, sections, large)
    if "label size vs accuracy" in sections:
        files = sweep_ui.result_files()
        for key, path in list(files.items())[:2]:
            rows = runs_view.read_csv_rows(path)
            x = "label_bytes" if rows and "label_bytes" in rows[0] else "ratio"
            group = tuple(g for g in ("source", "strategy") if rows and g in rows[0]) or ("source",)
            fig = figures.style(figures.label_curve(rows, x=x, group=group), large, height=460)
            items.append(ReportItem(f"label_curve_{_safe(key)}", f"Label size vs accuracy ({key})", fig, rows))
    return items


def _analysis_items(result, sections: tuple[str, ...], large: bool) -> list[ReportItem]:
    items = []
    if "diversity table" in sections:
        fig = figures.style(figures.summary_bars(result.summary, "feat_within_mean", "feat_within_std",
                                                 "within-class cosine (features), mean ± std over classes"), large, 400)
        items.append(ReportItem("diversity", "Diversity summary", fig, result.summary,
                                caption=f"features of {result.info['feature_model_name']} ({result.info['layer']})"))
    if "per-class similarity" in sections:
        fig = figures.style(figures.per_class_bars(result.per_class, "feat_within", "within-class cosine"), large, 420)
        items.append(ReportItem("per_class_similarity", "Within-class similarity per class", fig, result.per_class))
    if "similarity heatmaps" in sections:
        for run, spaces in result.matrices.items():
            info = load_set(Path(runs_root() / run)).info if (runs_root() / run).is_dir() else None
            names = info.class_names if info else tuple(str(c) for c in spaces["features"])
            means = {r["class"]: r["feat_within"] for r in result.per_class if r["run"] == run}
            fig = figures.style(figures.similarity_heatmaps({c: m.numpy() for c, m in spaces["features"].items()},
                                                            names, f"{run}: within-class cosine (features)",
                                                            means=means), large)
            rows = [{"class": c, "i": i, "j": j, "cos": float(m[i, j])} for c, m in spaces["features"].items()
                    for i in range(m.shape[0]) for j in range(m.shape[1])]
            items.append(ReportItem(f"heatmaps_{_safe(run)}", f"Similarity heatmaps: {run}", fig, rows))
    if "embedding (PCA)" in sections and result.embedding is not None:
        fig = figures.style(figures.embedding_scatter(result.embedding.rows, "class", "PCA of features"), large)
        rows = [{k: v for k, v in r.items() if k != "thumb"} for r in result.embedding.rows]
        items.append(ReportItem("embedding_pca", "Embedding (PCA, real + synthetic)", fig, rows))
    return items
