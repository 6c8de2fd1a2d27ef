"""distill_core app: routes only. Serve with `python3 dev.py app` (or `streamlit run app.py`).

Icons are emoji, never ":material/...": those make the browser fetch a font from a CDN, which
fails offline. Heavy modules (torch, the library's stages) are imported by the pages that need
them, so the first paint waits for none of them.
"""
import streamlit as st

from appkit import style

st.set_page_config(page_title="distill_core", page_icon="🧪", layout="wide")
style.apply()

PAGES = {
    "Start": [
        st.Page("app_pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("app_pages/data_teacher.py", title="Data & teacher", icon="🎓"),
        st.Page("app_pages/synthesize.py", title="Synthesize", icon="✨"),
    ],
    "Analyse": [
        st.Page("app_pages/diversity.py", title="Diversity", icon="🔳"),
        st.Page("app_pages/embeddings.py", title="Embeddings", icon="🗺️"),
        st.Page("app_pages/soft_labels.py", title="Soft labels", icon="🏷️"),
        st.Page("app_pages/compare.py", title="Compare", icon="⚖️"),
    ],
    "Share": [st.Page("app_pages/export.py", title="Export", icon="📤")],
}

st.navigation(PAGES).run()
