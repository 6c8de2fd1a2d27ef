"""Export page: a standalone HTML report with embedded figures, a zip with CSVs; PNG/SVG through kaleido."""
from __future__ import annotations

import io
import zipfile

import plotly.graph_objects as go
import pytest
from app_support import app_at

from appkit import report


def test_build_report_offers_html_and_zip(app_env):
    at = app_at("app_pages/export.py")
    at.multiselect(key="ex-runs").set_value(["t-lpld", "t-sre2l"]).run()
    at.button(key="ex-build").click().run()
    html_text = at.session_state["ex-html"]
    assert html_text.startswith("<!doctype html>") and "Plotly.newPlot" in html_text
    assert "{{" not in html_text.split("</style>")[0]  # the stylesheet is valid CSS
    assert html_text.count("</section>") == len(at.session_state["ex-items"])
    assert "cdn.plot.ly" not in html_text.split("Plotly.newPlot")[0][-2000:]  # plotly.js inline, opens offline
    names = {i.name for i in at.session_state["ex-items"]}
    assert {"images_t-lpld", "diversity", "embedding_pca"} <= names


def test_zip_holds_a_csv_per_figure():
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    items = [report.ReportItem("bars", "Bars", fig, rows=[{"x": 1, "y": 3}, {"x": 2, "y": 4}])]
    data, notes = report.bundle_zip(items, report.report_html("t", "", items), formats=())
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"report.html", "bars.csv", "bars.html"} <= set(names)
    assert zipfile.ZipFile(io.BytesIO(data)).read("bars.csv").decode().splitlines() == ["x,y", "1,3", "2,4"]


def test_png_export_through_kaleido():
    ok, why = report.static_export_available()
    if not ok:
        pytest.skip(why)
    try:
        png = report.figure_bytes(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "png", scale=1)
    except RuntimeError as exc:
        pytest.skip(f"no browser for kaleido here: {exc}")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
