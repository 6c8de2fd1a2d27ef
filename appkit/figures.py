"""Plotly figure builders for the pages and the HTML report (no Streamlit here).

Every builder takes plain rows/arrays and returns a `go.Figure`; `style` sets fonts for the
screen or, with `large=True`, for a projector.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c")


def style(fig: go.Figure, large: bool = False, height: int | None = None) -> go.Figure:
    """White template, readable fonts (22 px in presentation mode), tight margins."""
    base = 22 if large else 14
    fig.update_layout(template="plotly_white", font=dict(size=base, family="Inter, Helvetica, Arial, sans-serif"),
                      title_font=dict(size=base + 4), legend=dict(font=dict(size=base - 1)),
                      margin=dict(l=60, r=20, t=60 if fig.layout.title.text else 30, b=50),
                      colorway=list(PALETTE))
    fig.update_annotations(font_size=base)  # subplot titles and reference-line labels
    if height:
        fig.update_layout(height=int(height * (1.25 if large else 1.0)))
    return fig


def accuracy_curve(history: Sequence[dict], title: str = "Teacher accuracy per epoch") -> go.Figure:
    """Train and test top-1 (%) per epoch from a teacher run's history.json rows."""
    fig = go.Figure()
    epochs = [r["epoch"] for r in history]
    for key, name, dash in (("test_acc", "test", "solid"), ("train_acc", "train", "dot")):
        if history and key in history[0]:
            fig.add_scatter(x=epochs, y=[100 * r[key] for r in history], name=name, mode="lines+markers",
                            line=dict(dash=dash))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="top-1 accuracy (%)")
    return fig


def loss_curves(rows: Sequence[dict], x: str = "iteration", log_y: bool = True, title: str = "Synthesis loss") -> go.Figure:
    """One line per numeric column of `rows` against column `x` (e.g. CE and BN terms per iteration).

    Rows that share an x value (several classes or groups) are averaged.
    """
    cols = [k for k in (rows[0] if rows else {}) if k != x and all(isinstance(r.get(k), (int, float)) for r in rows[:50])]
    cols = [c for c in cols if c not in ("class", "batch", "group", "rank", "seed", "lr")]
    fig = go.Figure()
    for col in cols:
        acc: dict = defaultdict(list)
        for r in rows:
            if isinstance(r.get(col), (int, float)) and math.isfinite(r[col]):
                acc[r[x]].append(r[col])
        xs = sorted(acc)
        fig.add_scatter(x=xs, y=[float(np.mean(acc[v])) for v in xs], name=col, mode="lines")
    fig.update_layout(title=title, xaxis_title=x, yaxis_title="loss", yaxis_type="log" if log_y else "linear")
    return fig


def similarity_heatmaps(matrices: dict, class_names: Sequence[str], title: str, ncols: int = 5,
                        means: dict | None = None) -> go.Figure:
    """One cosine-similarity heatmap per class (matrices: class -> [n, n] array), shared colour scale.

    means: class -> within-class similarity, shown in each subplot's title.
    """
    classes = sorted(matrices, key=int)
    nrows = max(1, -(-len(classes) // ncols))
    names = [(class_names[int(c)] if int(c) < len(class_names) else str(c))
             + (f" ({means[c]:.2f})" if means and c in means else "") for c in classes]
    fig = make_subplots(rows=nrows, cols=min(ncols, max(1, len(classes))), subplot_titles=names,
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    lows = [float(np.nanmin(np.asarray(matrices[c], dtype=float))) for c in classes] or [0.0]
    zmin = math.floor(min(lows) * 10) / 10  # shared scale from the lowest value, so differences show
    for i, c in enumerate(classes):
        m = np.asarray(matrices[c], dtype=float)
        fig.add_trace(go.Heatmap(z=m, zmin=zmin, zmax=1.0, colorscale="Viridis", showscale=i == 0,
                                 colorbar=dict(title="cos"), hovertemplate="i=%{y} j=%{x}<br>cos %{z:.3f}<extra></extra>"),
                      row=i // ncols + 1, col=i % ncols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(title=title, height=230 * nrows + 80)
    return fig


def per_class_bars(rows: Sequence[dict], value: str, label: str, run_key: str = "run") -> go.Figure:
    """Grouped bars: one bar per (class, run) of `value`."""
    fig = go.Figure()
    by_run: dict = defaultdict(list)
    for r in rows:
        by_run[r[run_key]].append(r)
    for run, rs in by_run.items():
        rs = sorted(rs, key=lambda r: r["class"])
        fig.add_bar(x=[str(r.get("class_name", r["class"])) for r in rs], y=[r[value] for r in rs], name=str(run))
    fig.update_layout(barmode="group", xaxis_title="class", yaxis_title=label, title=f"{label} per class")
    return fig


def embedding_scatter(rows: Sequence[dict], color_by: str = "class", title: str = "") -> go.Figure:
    """2-D embedding: colour by class or by source, one marker symbol per source; real points small and faint.

    Each point carries its global id in customdata[0] so a selection can be mapped back to images.
    The legend lists colours and symbols once each (not every class x source pair).
    """
    fig = go.Figure()
    symbols = ("circle", "diamond", "square", "x", "triangle-up", "star", "cross", "pentagon")
    sources = list(dict.fromkeys(r["source"] for r in rows))
    class_name = {r["class"]: r["class_name"] for r in rows}
    keys = sorted(class_name) if color_by == "class" else sources
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    symbol = {s: symbols[i % len(symbols)] for i, s in enumerate(sources)}
    for src in sources:
        real = src == "real"
        for key in keys:
            pts = [r for r in rows if r["source"] == src and (r["class"] if color_by == "class" else r["source"]) == key]
            if not pts:
                continue
            fig.add_trace(go.Scatter(
                x=[r["x"] for r in pts], y=[r["y"] for r in pts], mode="markers", showlegend=False,
                legendgroup=str(key), customdata=[[r["id"], r["index"]] for r in pts],
                text=[f"{r['source']} #{r['index']} · {r['class_name']}" for r in pts],
                hovertemplate="%{text}<extra></extra>",
                marker=dict(size=5 if real else 11, opacity=0.35 if real else 0.95, color=colour[key],
                            symbol=symbol[src], line=dict(width=0 if real else 1, color="#111827"))))
    for key in keys if color_by == "class" else []:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(class_name[key]), legendgroup=str(key),
                                 marker=dict(size=11, color=colour[key])))
    for src in sources:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=src,
                                 legendgroup=src if color_by != "class" else None,
                                 marker=dict(size=11, symbol=symbol[src], line=dict(width=1, color="#111827"),
                                             color=colour.get(src, "#94a3b8"))))
    fig.update_layout(title=title, dragmode="lasso", xaxis_title="dim 1", yaxis_title="dim 2", height=640,
                      legend=dict(orientation="h", yanchor="top", y=-0.12, itemsizing="constant"))
    return fig


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def label_curve(rows: Iterable[dict], x: str = "label_bytes", group: Sequence[str] = ("source",),
                y: str = "accuracy", title: str = "Student accuracy vs soft-label storage") -> go.Figure:
    """Accuracy (%) against label size on a log axis; one line per group, mean ± std over seeds.

    Rows without labels (strategy `hard_labels`, or x <= 0) become dashed horizontal reference lines;
    rows whose `status` is not ok (failed sweep cells) are left out.
    """
    cells: dict = defaultdict(lambda: defaultdict(list))
    hard: dict = defaultdict(list)
    for r in rows:
        if r.get(y) is None or r.get(x) is None or r.get("status", "ok") != "ok":
            continue
        acc = 100 * float(r[y]) if float(r[y]) <= 1 else float(r[y])
        if r.get("strategy") == "hard_labels" or float(r[x]) <= 0:
            hard[str(r.get("source", ""))].append(acc)
            continue
        name = " · ".join(str(r.get(g)) for g in group if r.get(g) not in (None, ""))
        cells[name][float(r[x])].append(acc)
    fig = go.Figure()
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(cells))}
    for name, by_x in sorted(cells.items()):
        xs = sorted(by_x)
        stats = [_mean_std(by_x[v]) for v in xs]
        n = [len(by_x[v]) for v in xs]
        fig.add_scatter(x=xs, y=[m for m, _ in stats], name=name, mode="lines+markers", line_color=colour[name],
                        error_y=dict(type="data", array=[s for _, s in stats], visible=True),
                        customdata=n, hovertemplate="%{x:.3s}: %{y:.2f}% ± %{error_y.array:.2f} (n=%{customdata})<extra>"
                        + name + "</extra>")
    for i, (src, accs) in enumerate(sorted(hard.items())):
        mean, _ = _mean_std(accs)
        fig.add_hline(y=mean, line_dash="dash", line_color=colour.get(src, "#64748b"), annotation_text=f"{src} hard labels",
                      annotation_position="bottom right" if i % 2 else "top right")
    xlabel = {"label_bytes": "soft-label storage (bytes, log)", "ratio": "label compression (×, log)",
              "compression": "label compression (×, log)"}.get(x, x)
    fig.update_layout(title=title, xaxis_type="log", xaxis_title=xlabel, yaxis_title="student top-1 (%)")
    return fig


def topk_bars(probs: Sequence[float], class_names: Sequence[str], k: int = 5, title: str = "Top-5 soft label") -> go.Figure:
    """Horizontal bars of the k largest probabilities of one soft label."""
    order = np.argsort(-np.asarray(probs, dtype=float))[:k]
    names = [class_names[i] if i < len(class_names) else str(i) for i in order]
    fig = go.Figure(go.Bar(x=[float(probs[i]) for i in order][::-1], y=names[::-1], orientation="h",
                           text=[f"{float(probs[i]):.3f}" for i in order][::-1], textposition="auto"))
    fig.update_layout(title=title, xaxis_title="probability", xaxis_range=[0, 1], height=300)
    return fig


def summary_bars(rows: Sequence[dict], value: str, err: str | None, label: str) -> go.Figure:
    """One bar per run of `value` with optional error bars from column `err`."""
    fig = go.Figure(go.Bar(x=[r["run"] for r in rows], y=[r[value] for r in rows],
                           error_y=dict(type="data", array=[r[err] for r in rows]) if err else None,
                           marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(rows))]))
    fig.update_layout(title=label, yaxis_title=label.split(",")[0])
    return fig
