"""distill_core: soft-label dataset distillation (SRe2L / class-wise LPLD; the random-real-images
baseline of "A Label is Worth a Thousand Images"; bilevel distillation with learned soft labels and
text distillation, Sucholutsky & Schonlau 2021). GPU-backed, CPU-capable; imports neither
Streamlit nor Plotly.

Shared infrastructure lives at the root (config, data, models, augment, imageset, runs, jobs,
device, distributed, teacher); each stage is a subpackage: `synthesis`, `labels`, `analysis`.
"""

__version__ = "0.2.0"
