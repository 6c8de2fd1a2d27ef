"""Datasets and teacher histories, cached for the pages."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from distill_core import runs
from distill_core.data import Dataset, load_dataset


@st.cache_resource(show_spinner="loading dataset...", max_entries=4)
def dataset(spec: str) -> Dataset:
    """A loaded dataset (kept in memory across reruns; raises ValueError with the paths tried)."""
    return load_dataset(spec)


def history(run_dir: Path) -> list[dict]:
    """A teacher run's accuracy per epoch (history.json), [] when not written yet."""
    try:
        return runs.read_json(Path(run_dir) / "history.json", default=[]) or []
    except ValueError:
        return []
