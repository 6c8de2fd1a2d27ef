"""Page chrome: the stylesheet, the logo and presentation mode.

Presentation mode is one switch for the whole app: CSS enlarges text, metrics and tables on every
page, `figures.style(large=True)` (through `ui.chart`) enlarges plot text, and `ui.table` draws
tables as HTML so the CSS reaches them (st.dataframe paints on a canvas CSS cannot resize). It is
kept in the URL (`?present=1`), so a reload or a shared link keeps it; a page that draws its own
elements inherits it by using `ui.chart`, `ui.table` and `ui.metrics`.
"""
from __future__ import annotations

import time

import streamlit as st

from .paths import ASSETS

QUERY_KEY = "present"

# sizes in px, checked by the browser test at 1280x720
PRESENTATION_PX = {"text": 22, "metric_value": 48, "metric_label": 22, "table": 22, "plot": 22}

PRESENTATION_CSS = f"""
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p, [data-testid="stMain"] [data-testid="stMarkdownContainer"] li,
[data-testid="stMain"] label p, [data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p {{ font-size: {PRESENTATION_PX["text"]}px !important; }}
[data-testid="stMain"] h1 {{ font-size: 3.2rem !important; }} [data-testid="stMain"] h2 {{ font-size: 2.4rem !important; }}
[data-testid="stMain"] h3 {{ font-size: 2rem !important; }}
[data-testid="stMain"] [data-testid="stMetricValue"],
[data-testid="stMain"] [data-testid="stMetricValue"] div {{ font-size: {PRESENTATION_PX["metric_value"]}px !important;
  line-height: 1.15 !important; }}
[data-testid="stMain"] [data-testid="stMetricLabel"] p {{ font-size: {PRESENTATION_PX["metric_label"]}px !important; }}
[data-testid="stMain"] [data-testid="stMetricDelta"] div {{ font-size: {PRESENTATION_PX["text"]}px !important; }}
[data-testid="stMain"] [data-testid="stTable"] th, [data-testid="stMain"] [data-testid="stTable"] td
  {{ font-size: {PRESENTATION_PX["table"]}px !important; padding: 0.35rem 0.6rem !important; }}
[data-testid="stMain"] .block-container {{ max-width: none; padding-left: 2rem; padding-right: 2rem; }}
[data-testid="stMain"] .dc-lede {{ font-size: {PRESENTATION_PX["text"]}px !important; max-width: none; }}
</style>
"""


def presentation() -> bool:
    """Whether presentation mode (large fonts for projectors) is on."""
    return bool(st.session_state.get("presentation", False))


def _sync_from_toggle() -> None:
    st.session_state["presentation"] = bool(st.session_state["_presentation_toggle"])


def apply() -> None:
    """Inject the stylesheet, show the logo and the presentation toggle in the sidebar (every page calls this
    through `paint_now`, on every run). The URL's `?present=1` sets the mode when a session starts (a reload); after that
    the toggle sets it, and the URL follows (page switches drop query parameters, so it is re-set)."""
    css = ASSETS / "style.css"
    if css.is_file():
        st.html(f"<style>{css.read_text()}</style>")
    logo = ASSETS / "logo.png"
    if logo.is_file():
        st.logo(str(logo), size="large")
    if "presentation" not in st.session_state:
        st.session_state["presentation"] = st.query_params.get(QUERY_KEY) == "1"
    # a plain widget key is dropped when the toggle is not drawn on a page: copy it to a stable one
    st.sidebar.toggle("Presentation mode", key="_presentation_toggle", value=st.session_state["presentation"],
                      help="Large text, metrics, tables and figures for projectors and lab meetings; kept in the "
                           "address (?present=1), so a reload keeps it", on_change=_sync_from_toggle)
    if presentation():
        if st.query_params.get(QUERY_KEY) != "1":
            st.query_params[QUERY_KEY] = "1"
        st.html(PRESENTATION_CSS)
    elif QUERY_KEY in st.query_params:
        del st.query_params[QUERY_KEY]


PAINT_PAUSE_S = 0.05


def paint_now(page: str) -> None:
    """Draw the app's chrome (`apply`: stylesheet, logo, presentation toggle) and let the server send what
    page `page` has drawn so far (its title and caption) before it goes on.

    Pages call this right after their title, before they import the library and compute. The chrome comes
    after the title because a server's first session spends a few tenths of a second on it (the logo's
    image, the stylesheet). The library's work then holds the interpreter for long stretches, and on a busy
    CPU the title waited for it to reach the browser: a short sleep frees the interpreter for the server's
    sending thread, only when the page has just been opened in this session (a widget's rerun of the same
    page already has its title on screen).
    """
    apply()
    if st.session_state.get("_painted_page") != page:
        st.session_state["_painted_page"] = page
        time.sleep(PAINT_PAUSE_S)
