"""Small rendering helpers shared by the pages."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from . import figures, style


def chart(fig: go.Figure, key: str, height: int | None = None, where=None, **kwargs):
    """Draw a Plotly figure with our fonts (large in presentation mode), not Streamlit's theme, so the
    page looks like the exported figure. Returns st.plotly_chart's value (the selection event)."""
    figures.style(fig, style.presentation(), height=height)
    return (where or st).plotly_chart(fig, key=key, theme=None, **kwargs)
