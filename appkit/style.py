"""Page chrome: the stylesheet, the logo and the presentation-mode switch."""
from __future__ import annotations

import streamlit as st

from .paths import ASSETS

PRESENTATION_CSS = """
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p, [data-testid="stMain"] [data-testid="stMarkdownContainer"] li,
[data-testid="stMain"] label p, [data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1.3rem !important; }
[data-testid="stMain"] h1 { font-size: 3.2rem !important; } [data-testid="stMain"] h2 { font-size: 2.4rem !important; }
[data-testid="stMain"] h3 { font-size: 2rem !important; }
[data-testid="stMain"] .block-container { max-width: none; padding-left: 2rem; padding-right: 2rem; }
</style>
"""


def presentation() -> bool:
    """Whether presentation mode (large fonts for projectors) is on."""
    return bool(st.session_state.get("presentation", False))


def apply() -> None:
    """Inject the stylesheet, show the logo and the presentation toggle in the sidebar (app.py calls this
    on every run)."""
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
