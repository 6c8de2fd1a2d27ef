"""Page chrome: the stylesheet, the logo and the presentation-mode switch."""
from __future__ import annotations

import streamlit as st

from .paths import ASSETS

PRESENTATION_CSS = """
<style>
html, body, [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.35rem !important; }
h1 { font-size: 3rem !important; } h2 { font-size: 2.3rem !important; } h3 { font-size: 1.9rem !important; }
[data-testid="stDataFrame"] { font-size: 1.2rem; }
</style>
"""


def presentation() -> bool:
    """Whether presentation mode (large fonts for projectors) is on."""
    return bool(st.session_state.get("presentation", False))


def apply() -> None:
    """Inject the stylesheet, show the logo and the presentation toggle in the sidebar."""
    css = ASSETS / "style.css"
    if css.is_file():
        st.html(f"<style>{css.read_text()}</style>")
    logo = ASSETS / "logo.png"
    if logo.is_file():
        st.logo(str(logo), size="large")
    # a plain key would be dropped when the toggle is not drawn on a page: copy it to a stable one
    st.session_state.setdefault("presentation", False)
    st.sidebar.toggle("Presentation mode", key="_presentation_toggle", value=st.session_state["presentation"],
                      help="Large fonts and taller figures for projectors and lab meetings",
                      on_change=lambda: st.session_state.update(presentation=st.session_state["_presentation_toggle"]))
    if presentation():
        st.html(PRESENTATION_CSS)
