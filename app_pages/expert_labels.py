"""Expert labels: the "a label is worth a thousand images" study (Qin, Deng, Alvarez-Melis 2024)."""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Expert labels")
st.caption("Random real images, each labelled once with softmax(z/T) of a teacher checkpoint (the *expert*), "
           "a student trained with soft cross-entropy: how good must the expert be, what in its labels matters, "
           "and how accuracy grows with images per class and with bytes.")

style.paint_now("Expert labels")

# below the title, so it is on screen before the library (torch) loads
from appkit import expert_figures as ef  # noqa: E402
from appkit import expert_ui, ui  # noqa: E402

studies = expert_ui.study_files()
if not studies:
    st.info("No expert-label study yet: launch a small one below (or `python -m distill_core expertsweep`).")
    rows = []
else:
    chosen = st.multiselect("studies (results.csv of `expertsweep` runs)", list(studies),
                            default=list(studies)[:2], key="ex-studies")
    rows = expert_ui.load_rows([studies[n] for n in chosen])
    st.caption(f"{len(rows)} finished cells; accuracy is top-1 on real test images, mean ± std over seeds.")

if rows:
    tabs = st.tabs(["Expert epoch", "Label structure", "Zero-shot", "Scaling", "Bytes frontier"])
    with tabs[0]:
        data = ef.epoch_curve_data(rows)
        if data["lines"]:
            ui.chart(ef.epoch_curves(rows), "ex-epochs", height=440)
            best = expert_ui.best_epochs(rows)
            st.caption("Best expert epoch per IPC: " + ", ".join(f"IPC {i} → epoch {e}" for i, e in best.items()))
        else:
            st.info("These studies hold no untransformed labels (transform `none`).")
    with tabs[1]:
        present = [t for t in ("swap", "topk") if ef.ablation_data(rows, t)["points"]]
        if not present:
            st.info("No swap or top-k cells in these studies.")
        for t in present:
            ui.chart(ef.ablation_curve(rows, t), f"ex-abl-{t}", height=380)
    with tabs[2]:
        zs = ef.zero_shot_data(rows)
        if zs:
            ui.chart(ef.zero_shot_bars(rows), "ex-zeroshot", height=400)
            st.dataframe(expert_ui.zero_shot_table(zs), hide_index=True)
        else:
            st.info("No class-removal cells (drop_class / zero_class) in these studies.")
    with tabs[3]:
        fits = expert_ui.scaling(rows)
        names = list(fits)
        shown = st.multiselect("configurations", names, default=names[:3], key="ex-scaling-confs")
        ui.chart(ef.scaling_fig(fits, shown), "ex-scaling", height=440)
        st.dataframe(expert_ui.fit_table(fits, shown), hide_index=True)
    with tabs[4]:
        ui.chart(ef.frontier_fig(rows), "ex-frontier", height=460)
        st.dataframe(expert_ui.frontier_table(rows), hide_index=True)

expert_ui.launcher()
expert_ui.running_panel()
