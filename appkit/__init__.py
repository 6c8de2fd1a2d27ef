"""App-side helpers for the Streamlit pages: run lookup, job panels, figures, images, export.

Nothing here does tensor math: it finds runs, calls `distill_core`, and turns results into
Plotly figures, PNG grids and HTML. `distill_core` itself never imports Streamlit or Plotly.
"""
