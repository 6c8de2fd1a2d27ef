"""Plotly figures of the Learned labels page (no Streamlit here): the samples x classes label
heatmap, the learned step sizes, and learned against one-hot accuracy."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from .palette import style_of


def label_heatmap(labels: Sequence[Sequence[float]], class_names: Sequence[str],
                  title: str = "Learned label vectors (samples x classes)") -> go.Figure:
    """Heatmap of the unnormalised label matrix [M, C]; diverging colours centred on 0 (weights may be negative)."""
    z = [[float(v) for v in row] for row in labels]
    peak = max((abs(v) for row in z for v in row), default=1.0) or 1.0
    fig = go.Figure(go.Heatmap(z=z, x=list(class_names), y=[f"sample {i}" for i in range(len(z))],
                               colorscale="RdBu", zmid=0.0, zmin=-peak, zmax=peak, colorbar=dict(title="weight"),
                               text=[[f"{v:.2f}" for v in row] for row in z], texttemplate="%{text}"))
    fig.update_layout(title=title, xaxis_title="class", yaxis=dict(autorange="reversed"))
    return fig


def step_size_bars(step_sizes: Sequence[float], title: str = "Learned step sizes η_t") -> go.Figure:
    fig = go.Figure(go.Bar(x=[t + 1 for t in range(len(step_sizes))], y=[float(v) for v in step_sizes],
                           marker_color=style_of("learned").colour))
    fig.update_layout(title=title, xaxis_title="inner step t", yaxis_title="step size", xaxis=dict(dtick=1))
    return fig


def accuracy_bars(rows: Sequence[dict], title: str = "Test accuracy: learned vs one-hot labels") -> go.Figure:
    """One bar per run: rows {run, method ("learned" | "onehot"), accuracy (%), protocol}; colour by method."""
    fig = go.Figure()
    for method in ("learned", "onehot"):
        mine = [r for r in rows if r["method"] == method]
        if mine:
            s = style_of(method)
            fig.add_bar(x=[r["run"] for r in mine], y=[r["accuracy"] for r in mine], name=s.label,
                        marker_color=s.colour, text=[f"{r['accuracy']:.1f}" for r in mine], textposition="outside")
    fig.update_layout(title=title, yaxis_title="top-1 accuracy (%)", yaxis=dict(range=[0, 100]))
    return fig
