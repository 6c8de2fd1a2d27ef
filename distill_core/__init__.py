"""distill_core: soft-label dataset distillation (SRe2L / class-wise LPLD, label-is-worth-a-thousand-images,
learned soft labels). GPU-backed, CPU-capable; imports neither Streamlit nor Plotly."""

__version__ = "0.1.0"
