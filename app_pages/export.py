"""Export: a standalone HTML report, PNG/SVG figures and CSVs; presentation mode for projectors."""
from __future__ import annotations

import time

import streamlit as st

from appkit import style

st.title("Export")
st.caption("A standalone HTML report (interactive figures, opens offline), a zip of PNG/SVG figures with the CSV "
           "behind each, and presentation mode (sidebar) for large fonts on a projector.")

style.paint_now("Export")

# below the title, so it is on screen before the library (torch) loads
from appkit import report, report_items, runs_view  # noqa: E402
from appkit.pickers import pick_image_sets  # noqa: E402

found = [r.name for r in runs_view.image_set_runs()]
if not found:
    st.info("Nothing to export yet: run the quick start on **Home** first.")
    st.page_link("app_pages/home.py", label="Go to the quick start")
    st.stop()

names = pick_image_sets("ex-runs", "runs in the report")
sections = st.multiselect("sections", report_items.SECTIONS, default=list(report_items.SECTIONS), key="ex-sections")
title = st.text_input("report title", value="Soft-label distillation: results", key="ex-title")
large = st.toggle("presentation fonts in the exported figures", value=style.presentation(), key="ex-large")
ok, why = report.static_export_available()
if not ok:
    st.warning(why)

if st.button("Build report", type="primary", key="ex-build", disabled=not names):
    with st.spinner("building figures..."):
        try:
            items = report_items.collect(names, tuple(sections), large)
        except ValueError as exc:
            st.error(f"Cannot build the report: {exc}")
            st.stop()
        intro = f"Runs: {', '.join(names)}."
        html_text = report.report_html(title, intro, items, large)
    st.session_state["ex-items"] = items
    st.session_state["ex-html"] = html_text
    st.session_state.pop("ex-zip", None)

if "ex-html" in st.session_state:
    stamp = time.strftime("%Y%m%d-%H%M")
    c = st.columns(2)
    c[0].download_button("Download HTML report", st.session_state["ex-html"], file_name=f"distill-report-{stamp}.html",
                         mime="text/html", key="ex-dl-html", type="primary",
                         on_click="ignore")
    if ok and c[1].button("Render PNG/SVG figures (a few seconds each)", key="ex-render"):
        with st.spinner("rendering with kaleido..."):
            data, notes = report.bundle_zip(st.session_state["ex-items"], st.session_state["ex-html"])
        st.session_state["ex-zip"] = data
        for note in dict.fromkeys(notes):
            st.warning(note)
    if not ok or "ex-zip" not in st.session_state:
        data, _ = report.bundle_zip(st.session_state["ex-items"], st.session_state["ex-html"], formats=())
        label = "Download zip (HTML, CSVs, image grids)"
    else:
        data, label = st.session_state["ex-zip"], "Download zip (HTML, PNG, SVG, CSVs)"
    st.download_button(label, data, file_name=f"distill-figures-{stamp}.zip", mime="application/zip", key="ex-dl-zip",
                       on_click="ignore")  # no rerun: the previews keep their media
    items = st.session_state["ex-items"]
    st.caption(f"{len(items)} items: " + ", ".join(i.title for i in items))
    for item in items:
        if item.figure is not None:
            st.plotly_chart(item.figure, key=f"ex-prev-{item.name}", theme=None, config={"displaylogo": False})
        elif item.image_png is not None:
            st.image(item.image_png, caption=item.title)
