"""Keep every page behind app.py's router, even on the first request after a server start.

Streamlit decides at start-up that an app with a `pages/` folder is a legacy multipage app until
some run calls `st.navigation`. A deep link (e.g. /embeddings) opened first would then run the page
without app.py: no sections, no logo, no presentation switch. Each page calls `ensure_router()`
first; in that legacy mode it switches the flag off and reruns, and the rerun goes through app.py
to the same page (both modes give the page the same identity). A session that app.py has already
served (`ROUTED` in its state) is left alone: a rerun there would only drop the pending widget event.
"""
from __future__ import annotations

import streamlit as st

ROUTED = "_routed_by_app"


def mark_routed() -> None:
    """Called by app.py on every run."""
    st.session_state[ROUTED] = True


def ensure_router() -> None:
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without this internal: nothing to repair
        return
    if PagesManager.uses_pages_directory and not st.session_state.get(ROUTED):
        PagesManager.uses_pages_directory = False
        st.rerun()
