"""Figures of the expert-label study (Qin et al. 2024) from its tidy rows; no Streamlit here.

The `*_data` functions return the plain numbers each chart draws (tested in unit tests); the
figure builders only lay them out. Colours come from `palette.style_of`: the expert's own
accuracy and fixed expert labels are "expert", hard labels "hard", one IPC or configuration a
stable colour of its name.
"""
from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go

from distill_core.analysis.scaling import config_label, configurations, fit_scaling, pareto_frontier
from distill_core.labels.expert_sweep import summarise
from distill_core.labels.structure import transform_spec

from .palette import style_of


def _pct(v):
    return None if v is None else 100.0 * float(v)


def epoch_curve_data(rows: list[dict]) -> dict:
    """Per IPC: (checkpoint epoch, student mean, std) of untransformed labels; and the expert's own
    accuracy per checkpoint epoch."""
    lines: dict[int, list[tuple]] = defaultdict(list)
    expert: dict[int, float] = {}
    for r in summarise(rows):
        if r["transform"] == "none":
            lines[r["ipc"]].append((r["checkpoint_epoch"], r["accuracy_mean"], r["accuracy_std"]))
            expert[r["checkpoint_epoch"]] = r["expert_test_acc"]
    return {"lines": {ipc: sorted(v) for ipc, v in sorted(lines.items())}, "expert": dict(sorted(expert.items()))}


def epoch_curves(rows: list[dict]) -> go.Figure:
    """Student accuracy against expert epoch, one line per IPC, the expert's own accuracy beside it."""
    data = epoch_curve_data(rows)
    fig = go.Figure()
    for ipc, pts in data["lines"].items():
        st = style_of(f"IPC {ipc}")
        fig.add_scatter(x=[p[0] for p in pts], y=[_pct(p[1]) for p in pts], name=f"student, IPC {ipc}",
                        mode="lines+markers", marker_symbol=st.symbol, line_color=st.colour,
                        error_y=dict(type="data", array=[_pct(p[2]) for p in pts]))
    ex = style_of("expert")
    fig.add_scatter(x=list(data["expert"]), y=[_pct(v) for v in data["expert"].values()], name="the expert itself",
                    mode="lines+markers", line=dict(color=ex.colour, dash="dash"), marker_symbol=ex.symbol)
    fig.update_layout(title="Student accuracy against expert epoch", xaxis_title="expert (teacher checkpoint) epoch",
                      yaxis_title="top-1 accuracy on real test images (%)")
    return fig


def ablation_data(rows: list[dict], transform: str) -> dict:
    """(k, mean, std) of a k-transform (swap, topk) and the reference levels beside it: full labels
    (none), hard labels (topk 0), shuffled and spread non-top mass, each (mean, std) when present."""
    summary = summarise(rows)
    pts = sorted((r["transform_arg"], r["accuracy_mean"], r["accuracy_std"]) for r in summary
                 if r["transform"] == transform)
    refs = {}
    for name, t, arg in (("full expert labels", "none", 0), ("hard labels", "topk", 0),
                         ("shuffled non-top", "shuffle_nontop", 0), ("uniform non-top", "uniform_nontop", 0)):
        hit = [r for r in summary if r["transform"] == t and r["transform_arg"] == arg]
        if hit:
            refs[name] = (hit[0]["accuracy_mean"], hit[0]["accuracy_std"])
    return {"points": pts, "refs": refs}


REF_STYLE = {"full expert labels": "expert", "hard labels": "hard", "shuffled non-top": "shuffled non-top",
             "uniform non-top": "uniform non-top"}


def ablation_curve(rows: list[dict], transform: str) -> go.Figure:
    """Accuracy against k for the swap test or top-k, with horizontal reference levels."""
    data = ablation_data(rows, transform)
    fig = go.Figure()
    st = style_of(transform)
    pts = data["points"]
    fig.add_scatter(x=[p[0] for p in pts], y=[_pct(p[1]) for p in pts], name=transform, mode="lines+markers",
                    line_color=st.colour, marker_symbol=st.symbol,
                    error_y=dict(type="data", array=[_pct(p[2]) for p in pts]))
    for name, (mean, _) in data["refs"].items():
        ref = style_of(REF_STYLE[name])
        fig.add_hline(y=_pct(mean), line_dash="dot", line_color=ref.colour, annotation_text=name,
                      annotation_position="bottom right")
    what = {"swap": "k (the k-th largest probability swapped with the smallest)",
            "topk": "k (top-k entries kept, not renormalised; 0 = hard labels)"}.get(transform, "k")
    fig.update_layout(title=f"Label structure: {transform}", xaxis_title=what,
                      yaxis_title="top-1 accuracy on real test images (%)")
    return fig


def zero_shot_data(rows: list[dict]) -> list[dict]:
    """Per class-removal transform and class: overall and removed-class accuracy (mean, std), chance."""
    out = []
    chance = {r["transform"]: float(r["chance"]) for r in rows if r.get("chance") not in (None, "")}
    for r in summarise(rows):
        if transform_spec(r["transform"]).removes_class and "removed_class_acc_mean" in r:
            out.append({"transform": r["transform"], "class": r["transform_arg"], "ipc": r["ipc"],
                        "overall": (r["accuracy_mean"], r["accuracy_std"]),
                        "removed": (r["removed_class_acc_mean"], r["removed_class_acc_std"]),
                        "chance": chance.get(r["transform"])})
    return out


def zero_shot_bars(rows: list[dict], class_names: tuple[str, ...] | None = None) -> go.Figure:
    """Removed class's accuracy (zero-shot) beside overall accuracy, per removal mode and class, and chance."""
    data = zero_shot_data(rows)
    names = [f"{d['transform']} · class {class_names[d['class']] if class_names else d['class']}" for d in data]
    fig = go.Figure()
    for key, label, style in (("removed", "removed class alone (zero-shot)", "expert"),
                              ("overall", "all classes", "random_real")):
        st = style_of(style)
        fig.add_bar(x=names, y=[_pct(d[key][0]) for d in data], name=label, marker_color=st.colour,
                    error_y=dict(type="data", array=[_pct(d[key][1]) for d in data]))
    if data and data[0]["chance"]:
        fig.add_hline(y=_pct(data[0]["chance"]), line_dash="dash", line_color=style_of("hard").colour,
                      annotation_text="chance")
    fig.update_layout(title="A removed class learned from its mass in other labels", barmode="group",
                      yaxis_title="top-1 accuracy (%)")
    return fig


def scaling_data(rows: list[dict], boots: int = 200) -> dict[str, dict]:
    """Per configuration: its (IPC, mean, std) points and its fit (or the refusal message)."""
    out = {}
    for conf in configurations(rows):
        out.setdefault(conf["config"], {"points": [], "rows": []})["points"].append(
            (conf["ipc"], conf["accuracy_mean"], conf["accuracy_std"]))
    for r in rows:
        if r["transform"] in ("none", "topk") and config_label(r) in out:
            out[config_label(r)]["rows"].append(r)
    for name, d in out.items():
        try:
            d["fit"] = fit_scaling([r["ipc"] for r in d["rows"]], [r["accuracy"] for r in d["rows"]], boots).to_dict()
        except ValueError as exc:
            d["fit"] = {"error": str(exc)}
        del d["rows"]
    return out


def scaling_fig(data: dict[str, dict], chosen: list[str] | None = None) -> go.Figure:
    """Accuracy against IPC (log), the fitted saturating power law and its 95% bootstrap band."""
    fig = go.Figure()
    for name in chosen or list(data):
        d = data[name]
        st = style_of("hard" if name == "hard labels" else name)
        pts = d["points"]
        fig.add_scatter(x=[p[0] for p in pts], y=[_pct(p[1]) for p in pts], mode="markers", name=name,
                        marker=dict(color=st.colour, symbol=st.symbol, size=9), legendgroup=name,
                        error_y=dict(type="data", array=[_pct(p[2]) for p in pts]))
        band = d["fit"].get("band")
        if band:
            xs = [b["ipc"] for b in band]
            fig.add_scatter(x=xs + xs[::-1], y=[_pct(b["hi"]) for b in band] + [_pct(b["lo"]) for b in band][::-1],
                            fill="toself", fillcolor=st.colour, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                            showlegend=False, legendgroup=name)
            p = d["fit"]["params"]
            fig.add_scatter(x=xs, y=[_pct(b["fitted"]) for b in band], mode="lines", line=dict(color=st.colour),
                            legendgroup=name, name=f"fit: {100 * p['a']:.1f} - {100 * p['b']:.1f}·IPC^-{p['c']:.2f}")
    fig.update_layout(title="Accuracy against images per class: acc = a - b·IPC^(-c)", xaxis_type="log",
                      xaxis_title="images per class (log)", yaxis_title="top-1 accuracy (%)")
    return fig


def frontier_data(rows: list[dict]) -> dict:
    """Every (IPC, expert, top-k) configuration with its total bytes, and the Pareto frontier of them."""
    confs = configurations(rows)
    return {"points": confs, "frontier": pareto_frontier(confs)}


def _hover(c: dict) -> str:
    return (f"IPC {c['ipc']}, {c['config']}<br>accuracy {100 * c['accuracy_mean']:.1f} ± {100 * c['accuracy_std']:.1f}%"
            f"<br>images {c['image_bytes']:,} B + labels {c['label_bytes']:,} B = {c['total_bytes']:,} B")


def frontier_fig(rows: list[dict]) -> go.Figure:
    """Accuracy against total bytes (images + labels, log axis); the frontier line; hover = configuration."""
    data = frontier_data(rows)
    fig = go.Figure()
    by_conf: dict[str, list[dict]] = defaultdict(list)
    for c in data["points"]:
        by_conf[c["config"]].append(c)
    for name, cs in sorted(by_conf.items()):
        st = style_of("hard" if name == "hard labels" else name)
        fig.add_scatter(x=[c["total_bytes"] for c in cs], y=[_pct(c["accuracy_mean"]) for c in cs], mode="markers",
                        name=name, marker=dict(color=st.colour, symbol=st.symbol, size=9),
                        hovertext=[_hover(c) for c in cs], hoverinfo="text")
    front = data["frontier"]
    fig.add_scatter(x=[c["total_bytes"] for c in front], y=[_pct(c["accuracy_mean"]) for c in front],
                    mode="lines", name="Pareto frontier", line=dict(color=style_of("expert").colour, shape="hv"),
                    hovertext=[_hover(c) for c in front], hoverinfo="text")
    fig.update_layout(title="Accuracy per byte: IPC × expert epoch × top-k", xaxis_type="log",
                      xaxis_title="total bytes: uint8 images + labels (log)", yaxis_title="top-1 accuracy (%)")
    return fig
