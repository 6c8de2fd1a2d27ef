"""Run pickers shared by the analysis pages (with the empty-state message when there is nothing)."""
from __future__ import annotations

import streamlit as st

from . import runs_view


def _default_sets(names: list[str]) -> list[str]:
    """The newest image sets of one family (same prefix up to the last '-'), else the first three."""
    if not names:
        return []
    family = names[0].rsplit("-", 1)[0]
    same = [n for n in names if n.rsplit("-", 1)[0] == family]
    return (same if len(same) > 1 else names)[:4]


def pick_image_sets(key: str, label: str = "image-set runs", max_default: int = 4) -> list[str]:
    """Multiselect of finished image-set runs; shows the empty state and returns [] when there are none."""
    names = [r.name for r in runs_view.image_set_runs()]
    if not names:
        st.info("No image sets yet. Run the quick start on **Home** (about a minute on digits), "
                "or launch a synthesis on **Synthesize**.")
        st.page_link("app_pages/home.py", label="Go to the quick start", icon=":material/rocket_launch:")
        return []
    return st.multiselect(label, names, default=_default_sets(names)[:max_default], key=key)
