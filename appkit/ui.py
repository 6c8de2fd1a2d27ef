"""Small rendering helpers shared by the pages: charts, tables and metrics that follow presentation mode."""
from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from . import figures, style


def chart(fig: go.Figure, key: str, height: int | None = None, where=None, **kwargs):
    """Draw a Plotly figure with our fonts (large in presentation mode), not Streamlit's theme, so the
    page looks like the exported figure. Returns st.plotly_chart's value (the selection event)."""
    figures.style(fig, style.presentation(), height=height)
    return (where or st).plotly_chart(fig, key=key, theme=None, config={"displaylogo": False}, **kwargs)


def fmt(value, spec: str = "") -> str:
    """A cell as text: None/nan as an empty cell, floats with `spec` (e.g. '.3f'), ints with separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and spec and float(format(value, spec)) == 0:
        value = 0.0  # no "-0.0"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, spec or ".3g")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


STATIC_ROWS = 30


def signed(value: float, digits: int = 3) -> str:
    """A difference with its sign, rounded, never "-0.000"."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def table(rows: list[dict], formats: dict[str, str] | None = None, labels: dict[str, str] | None = None,
          where=None, key: str | None = None) -> None:
    """A table of `rows` with column `labels` (field -> header) and number `formats` (field -> '.3f').

    Up to `STATIC_ROWS` rows, and always in presentation mode, an HTML table (st.table): every row
    visible, empty cells empty, and the presentation stylesheet can enlarge it (a dataframe paints on
    a canvas CSS cannot resize). Longer tables are an interactive st.dataframe."""
    formats, labels = formats or {}, labels or {}
    where = where or st
    if not rows:
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    if style.presentation() or len(rows) <= STATIC_ROWS:
        import pandas as pd

        frame = pd.DataFrame([{labels.get(c, c): fmt(r.get(c), formats.get(c, "")) for c in cols} for r in rows])
        where.table(frame.set_index(frame.columns[0]))
        return
    config = {c: st.column_config.NumberColumn(labels.get(c, c), format="%" + formats[c].lstrip("%"))
              if c in formats else st.column_config.Column(labels.get(c, c)) for c in cols}
    where.dataframe(rows, hide_index=True, width="stretch", column_config=config, key=key)


def metrics(items: list[tuple[str, str, str | None]], where=None) -> None:
    """A row of st.metric: (label, value text, help or None) each."""
    cols = (where or st).columns(max(1, len(items)))
    for col, (label, value, help_text) in zip(cols, items):
        col.metric(label, value, help=help_text)
