"""Plotly figure builders for the pages and the HTML report (no Streamlit here).

Every builder takes plain rows/arrays and returns a `go.Figure`; `style` sets fonts for the
screen or, with `large=True`, for a projector. A trace that shows a method takes that method's
colour and symbol from `palette.style_of`, never a colour by its position in a list.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import style_of

# classes are not methods: a qualitative scale keyed by class index (stable across pages)
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                 "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")
DASHES = ("solid", "dot", "dash", "longdash", "dashdot")
BASE_PX, LARGE_PX = 14, 22  # plot text: screen, presentation


def style(fig: go.Figure, large: bool = False, height: int | None = None) -> go.Figure:
    """White template, readable fonts (22 px in presentation mode), margins that grow with the text.

    A horizontal legend moves to the foot of the figure (container coordinates), below the x-axis
    title, so large fonts never make them overlap."""
    base = LARGE_PX if large else BASE_PX
    fig.update_layout(template="plotly_white", font=dict(size=base, family="Inter, Helvetica, Arial, sans-serif"),
                      title_font=dict(size=base + 4), legend=dict(font=dict(size=base - 1)),
                      margin=dict(l=int(4.5 * base), r=20, t=int(4.3 * base) if fig.layout.title.text else 30,
                                  b=int(3.6 * base)))
    fig.update_xaxes(automargin=True, title_standoff=base // 2)
    fig.update_yaxes(automargin=True)
    if fig.layout.legend.orientation == "h":
        fig.update_layout(legend=dict(yref="container", y=0, yanchor="bottom", x=0, xanchor="left"),
                          margin_b=int(3.6 * base) + 3 * base)
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


def shared_zmin(matrices: Iterable) -> float:
    """The lower end of one colour scale for several similarity matrices: their lowest value, floored
    to 0.1, so every run drawn with it uses the same colours for the same cosine."""
    lows = [float(np.nanmin(np.asarray(m, dtype=float))) for m in matrices if np.asarray(m).size]
    return math.floor(min(lows) * 10) / 10 if lows else 0.0


def similarity_heatmaps(matrices: dict, class_names: Sequence[str], title: str, ncols: int = 5,
                        means: dict | None = None, zmin: float | None = None) -> go.Figure:
    """One cosine-similarity heatmap per class (matrices: class -> [n, n] array), one colour scale.

    means: class -> within-class similarity, shown in each subplot's title. zmin: the scale's lower
    end; pass `shared_zmin` over every run shown so two runs' heatmaps compare (default: this run's).
    """
    classes = sorted(matrices, key=int)
    nrows = max(1, -(-len(classes) // ncols))
    names = [(class_names[int(c)] if int(c) < len(class_names) else str(c))
             + (f" ({means[c]:.2f})" if means and c in means else "") for c in classes]
    fig = make_subplots(rows=nrows, cols=min(ncols, max(1, len(classes))), subplot_titles=names,
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    zmin = shared_zmin(matrices[c] for c in classes) if zmin is None else zmin
    for i, c in enumerate(classes):
        m = np.asarray(matrices[c], dtype=float)
        fig.add_trace(go.Heatmap(z=m, zmin=zmin, zmax=1.0, colorscale="Viridis", showscale=i == 0,
                                 colorbar=dict(title="cos"), hovertemplate="i=%{y} j=%{x}<br>cos %{z:.3f}<extra></extra>"),
                      row=i // ncols + 1, col=i % ncols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(title=title, height=230 * nrows + 80)
    return fig


def _padded_range(values: Iterable[float], pad: float = 0.15) -> list[float] | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    span = max(hi - lo, 1e-3)
    return [lo - pad * span, hi + pad * span]


def per_class_bars(rows: Sequence[dict], value: str, label: str, run_key: str = "run",
                   methods: dict[str, str] | None = None) -> go.Figure:
    """One marker per (class, run) of `value`, runs side by side within each class, coloured by the
    run's method (methods: run -> method key). Markers, not bars: the y range is fitted to the values
    (within-class cosines lie between 0.8 and 0.95), and a bar would have to start at 0."""
    fig = go.Figure()
    by_run: dict = defaultdict(list)
    for r in rows:
        by_run[r[run_key]].append(r)
    methods = methods or {}
    seen: dict[str, int] = defaultdict(int)
    for run, rs in by_run.items():
        rs = sorted(rs, key=lambda r: r["class"])
        st_ = style_of(methods.get(run, str(run)))
        repeat = seen[st_.colour]
        seen[st_.colour] += 1
        fig.add_scatter(x=[str(r.get("class_name", r["class"])) for r in rs], y=[r[value] for r in rs], name=str(run),
                        mode="markers", marker=dict(color=st_.colour, symbol=st_.symbol + ("-open" if repeat else ""),
                                                    size=12, line=dict(width=1, color="#111827")),
                        hovertemplate="class %{x}: %{y:.3f}<extra>" + str(run) + "</extra>")
    fig.update_layout(scattermode="group", xaxis_title="class", yaxis_title=label, title=f"{label} per class",
                      xaxis_type="category")
    rng = _padded_range(r[value] for r in rows)
    if rng:
        fig.update_yaxes(range=rng)
    return fig


def embedding_scatter(rows: Sequence[dict], color_by: str = "class", title: str = "",
                      methods: dict[str, str] | None = None) -> go.Figure:
    """2-D embedding: colour by class or by source, one marker symbol per source; real points small and faint.

    methods: source -> method key, so a source has its method's colour and symbol on every page
    ("real" is the real images). Each point carries its global id in customdata[0] so a selection
    can be mapped back to images. The legend lists colours and symbols once each (not every class x
    source pair).
    """
    fig = go.Figure()
    methods = {"real": "real", **(methods or {})}
    sources = list(dict.fromkeys(r["source"] for r in rows))
    class_name = {r["class"]: r["class_name"] for r in rows}
    keys = sorted(class_name) if color_by == "class" else sources
    if color_by == "class":
        colour = {k: CLASS_COLOURS[int(k) % len(CLASS_COLOURS)] for k in keys}
    else:
        colour = {k: style_of(methods.get(k, k)).colour for k in keys}
    symbol = {s: style_of(methods.get(s, s)).symbol for s in sources}
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
                      legend=dict(orientation="h", itemsizing="constant"))
    return fig


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


HARD = "hard_labels"


def _is_hard(r: dict, x: str) -> bool:
    """A hard-label reference row (no soft labels, so no label size or compression)."""
    return r.get("strategy") == HARD or (isinstance(r.get(x), (int, float)) and float(r[x]) <= 0)


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _ticks(x: str, values: list[float]) -> dict:
    """Ticks at exactly the x values that ran, labelled as compression (40×) or bytes (4.57 kB)."""
    vals = sorted(set(values))
    text = [human_bytes(v) if x == "label_bytes" else f"{v:g}×" for v in vals]
    return dict(tickmode="array", tickvals=vals, ticktext=text)


def label_curve(rows: Iterable[dict], x: str = "label_bytes", group: Sequence[str] = ("source",),
                y: str = "accuracy", title: str | None = None) -> go.Figure:
    """Accuracy (%) against label size or compression on a log axis; one line per group, mean ± std
    over seeds (error bars; n in the hover and the legend).

    Each line takes the colour and symbol of its rows' `method` (or `source`), a second strategy a
    second dash. Hard-label rows (strategy `hard_labels`) become dashed horizontal reference lines in
    their method's colour, named in the legend (no labels on the plot to collide). Rows whose
    `status` is not ok (failed sweep cells) are left out. Ticks sit at the x values that ran.
    """
    cells: dict = defaultdict(lambda: defaultdict(list))
    hard: dict = defaultdict(list)
    method: dict[str, str] = {}
    strategies: dict[str, str] = {}
    for r in rows:
        if r.get(y) is None or r.get("status", "ok") != "ok":
            continue
        acc = 100 * float(r[y]) if float(r[y]) <= 1 else float(r[y])
        key = str(r.get("method") or r.get("source") or "")
        if _is_hard(r, x):
            src = " · ".join(str(r.get(g)) for g in group if g != "strategy" and r.get(g) not in (None, "")) \
                or str(r.get("source", ""))
            hard[src].append(acc)
            method[f"hard:{src}"] = key
            continue
        if r.get(x) is None:
            continue
        name = " · ".join(str(r.get(g)) for g in group if r.get(g) not in (None, ""))
        cells[name][float(r[x])].append(acc)
        method[name] = key
        strategies[name] = str(r.get("strategy", ""))
    fig = go.Figure()
    dash = {s: DASHES[i % len(DASHES)] for i, s in enumerate(sorted(set(strategies.values())))}
    xs_all = [v for by_x in cells.values() for v in by_x]
    for name, by_x in sorted(cells.items()):
        xs = sorted(by_x)
        stats = [_mean_std(by_x[v]) for v in xs]
        n = [len(by_x[v]) for v in xs]
        st_ = style_of(method[name])
        seeds = f" (n={min(n)})" if min(n) == max(n) else f" (n={min(n)}–{max(n)})"
        fig.add_scatter(x=xs, y=[m for m, _ in stats], name=name + seeds, mode="lines+markers",
                        line=dict(color=st_.colour, dash=dash[strategies[name]]),
                        marker=dict(symbol=st_.symbol, size=10, color=st_.colour),
                        error_y=dict(type="data", array=[s for _, s in stats], visible=True),
                        customdata=n, hovertemplate="%{x:.3s}: %{y:.2f}% ± %{error_y.array:.2f} (n=%{customdata})<extra>"
                        + name + "</extra>")
    lo, hi = (min(xs_all), max(xs_all)) if xs_all else (1.0, 10.0)
    for src, accs in sorted(hard.items()):
        mean, sd = _mean_std(accs)
        st_ = style_of(method[f"hard:{src}"])
        fig.add_scatter(x=[lo, hi], y=[mean, mean], mode="lines", name=f"{src} hard labels (n={len(accs)})",
                        line=dict(color=st_.colour, dash="dash", width=2),
                        hovertemplate=f"{src} hard labels: {mean:.2f}% ± {sd:.2f} (n={len(accs)})<extra></extra>")
    xlabel = {"label_bytes": "soft-label storage (log)", "ratio": "label compression (×, log)",
              "compression": "label compression (×, log)", "factor": "label compression (×, log)"}.get(x, x)
    if title is None:
        title = "Student accuracy vs " + ("soft-label storage" if x == "label_bytes" else "label compression")
    fig.update_layout(title=title, xaxis_type="log", xaxis_title=xlabel, yaxis_title="student top-1 (%)")
    if xs_all:
        fig.update_xaxes(**_ticks(x, xs_all))
    return fig


def topk_bars(probs: Sequence[float], class_names: Sequence[str], k: int = 5, title: str = "Top-5 soft label") -> go.Figure:
    """Horizontal bars of the k largest probabilities of one soft label."""
    order = np.argsort(-np.asarray(probs, dtype=float))[:k]
    names = [class_names[i] if i < len(class_names) else str(i) for i in order]
    fig = go.Figure(go.Bar(x=[float(probs[i]) for i in order][::-1], y=names[::-1], orientation="h",
                           text=[f"{float(probs[i]):.3f}" for i in order][::-1], textposition="auto"))
    fig.update_layout(title=title, xaxis_title="probability", xaxis_range=[0, 1], height=300)
    return fig


def summary_bars(rows: Sequence[dict], value: str, low: str | None, high: str | None, label: str,
                 methods: dict[str, str] | None = None) -> go.Figure:
    """One marker per run of `value` with an interval [row[low], row[high]] (e.g. a bootstrap
    interval over classes), coloured by the run's method; y range fitted to the intervals."""
    methods = methods or {}
    fig = go.Figure()
    for r in rows:
        st_ = style_of(methods.get(r["run"], str(r.get("method", r["run"]))))
        err = {}
        if low and high and r.get(low) is not None:
            err = dict(error_y=dict(type="data", symmetric=False, array=[r[high] - r[value]],
                                    arrayminus=[r[value] - r[low]], thickness=2, width=10))
        fig.add_scatter(x=[r["run"]], y=[r[value]], mode="markers", name=r["run"], showlegend=False,
                        marker=dict(color=st_.colour, symbol=st_.symbol, size=16, line=dict(width=1, color="#111827")),
                        **err)
    ends = [r.get(k) for r in rows for k in (value, low, high) if k]
    fig.update_layout(title=label, yaxis_title=label.split(",")[0], xaxis_type="category")
    rng = _padded_range(ends)
    if rng:
        fig.update_yaxes(range=rng)
    return fig
