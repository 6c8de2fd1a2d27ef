"""distill_core app: routes only. Serve with `python3 dev.py app` (or `streamlit run app.py`)."""
import streamlit as st

from appkit import style

st.set_page_config(page_title="distill_core", page_icon=":material/compress:", layout="wide")
style.apply()

PAGES = {
    "Start": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/data_teacher.py", title="Data & teacher", icon=":material/school:"),
        st.Page("app_pages/synthesize.py", title="Synthesize", icon=":material/auto_awesome:"),
    ],
    "Analyse": [
        st.Page("app_pages/diversity.py", title="Diversity", icon=":material/grid_view:"),
        st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page("app_pages/soft_labels.py", title="Soft labels", icon=":material/label:"),
        st.Page("app_pages/expert_labels.py", title="Expert labels", icon=":material/workspace_premium:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
    ],
    "Share": [st.Page("app_pages/export.py", title="Export", icon=":material/ios_share:")],
}

st.navigation(PAGES).run()
