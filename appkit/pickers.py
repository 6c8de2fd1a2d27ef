"""Run pickers shared by the analysis pages (with the empty-state message when there is nothing).

Defaults are the image sets of one experiment the user can see and change (a quick start's pipeline
or a sweep), never the newest runs on disk: an extra run must not change what a page shows.
"""
from __future__ import annotations

import streamlit as st

from . import experiments, runs_view

NO_EXPERIMENT = "(none: choose runs yourself)"


def _empty_state() -> None:
    st.info("No image sets yet. Run the quick start on **Home** (under a minute on digits), "
            "or launch a synthesis on **Synthesize**.")
    st.page_link("app_pages/home.py", label="Go to the quick start")


def pick_experiment(key: str, where=None) -> experiments.Experiment | None:
    """Select box of the experiments on disk (pipelines, then sweeps); None when there are none or the
    user picks none. The choice is shared by every page (one key per page, one remembered value)."""
    found = experiments.list_experiments()
    if not found:
        return None
    labels = [e.label for e in found] + [NO_EXPERIMENT]
    remembered = st.session_state.get("experiment")
    names = [e.name for e in found]
    index = names.index(remembered) if remembered in names else 0
    choice = (where or st).selectbox("experiment", labels, index=index, key=key,
                                     help="a quick start (pipeline) or a sweep: its image sets are the default runs "
                                          "of every analysis page and of the report")
    if choice == NO_EXPERIMENT:
        return None
    exp = found[labels.index(choice)]
    st.session_state["experiment"] = exp.name
    return exp


def pick_image_sets(key: str, label: str = "image-set runs") -> list[str]:
    """An experiment picker, then a multiselect of finished image-set runs defaulting to that
    experiment's sets; shows the empty state and returns [] when there are none."""
    names = [r.name for r in runs_view.image_set_runs()]
    if not names:
        _empty_state()
        return []
    exp = pick_experiment(f"{key}-exp")
    default = [n for n in (exp.image_sets if exp else []) if n in names]
    owner = exp.name if exp else None
    if st.session_state.get(f"{key}-owner", "") != owner:  # a new experiment: its sets replace the choice
        st.session_state[key] = default
        st.session_state[f"{key}-owner"] = owner
    elif key in st.session_state:  # a run deleted since: drop it rather than fail
        st.session_state[key] = [n for n in st.session_state[key] if n in names]
    return st.multiselect(label, names, key=key, help="defaults to the chosen experiment's image sets")
