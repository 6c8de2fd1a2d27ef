"""Home: what the tool does, the runs on disk, and the one-click digits quick start.

The title and the introduction are drawn before anything heavy is imported (appkit.home_view pulls
in torch through the library), so the first page after the server starts paints at once.
"""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Soft-label dataset distillation")
st.html(
    "<p class='dc-lede'>distill_core compresses a training set into a few synthetic images per class plus the "
    "teacher's soft labels (SRe2L and class-wise LPLD synthesis, FKD relabeling, label pruning). "
    "It measures <em>why</em> that works: within-class similarity, diversity against real data, embeddings, "
    "and student accuracy against label storage, always beside random real images with the same labels. "
    "Every job writes a run folder (config, provenance, metrics, tensors), so nothing is lost on reload.</p>"
)
style.paint_now("Soft-label dataset distillation")


def main() -> None:
    from appkit import home_view  # torch and the library load here, after the title is on screen

    home_view.show()


main()
