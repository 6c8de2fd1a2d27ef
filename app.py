"""distill_core app: routes only. Serve with `python3 dev.py app` (or `streamlit run app.py`).

No icons: ":material/..." icons make the browser fetch a font from a CDN, which fails offline, and
emoji depend on the viewer's fonts; the favicon is an emoji (an inline SVG). Heavy modules (torch,
the library's stages) are imported by the pages that need them, after their title is drawn.
"""
import streamlit as st

st.set_page_config(page_title="distill_core", page_icon="🧪", layout="wide")
# each page draws the app's chrome (style.apply) right after its title: see style.paint_now

PAGES = {
    "Start": [
        st.Page("app_pages/home.py", title="Home", default=True),
        st.Page("app_pages/data_teacher.py", title="Data & teacher"),
        st.Page("app_pages/synthesize.py", title="Synthesize"),
        st.Page("app_pages/learned_labels.py", title="Learned labels"),
    ],
    "Analyse": [
        st.Page("app_pages/diversity.py", title="Diversity"),
        st.Page("app_pages/embeddings.py", title="Embeddings"),
        st.Page("app_pages/soft_labels.py", title="Soft labels"),
        st.Page("app_pages/expert_labels.py", title="Expert labels"),
        st.Page("app_pages/compare.py", title="Compare"),
    ],
    "Share": [st.Page("app_pages/export.py", title="Export")],
}

st.navigation(PAGES).run()
