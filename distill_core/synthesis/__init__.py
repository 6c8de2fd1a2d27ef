"""Synthesis: make the images of a distilled set.

BatchNorm-matching recovery (SRe2L, Yin et al. 2023; class-wise LPLD, Xiao & He, NeurIPS 2024):
optimise pixels X_c so that, for class c,
    CE(f(A(X_c)), c) + α · Σ_l w_l (‖μ_l(A(X_c)) − μ_{l,c}‖₂ + ‖σ²_l(A(X_c)) − σ²_{l,c}‖₂),
with cross-class batches and the teacher's global running statistics (sre2l), class-wise batches
(+C) or class-conditional statistics (lpld). The ablation ladder is the `preset` config value.

Modules: `bn_stats` (class-conditional BN statistics, exact or the reference EMA), `hooks`
(BN-input capture), `synthesize` (the loss and the optimisation, one entry function
`synthesize(cfg, model, stats, ...)`), `run` (the run-folder job `run_synthesize`, sharded over
torchrun ranks). Output: an image-set artifact (`distill_core.imageset`) that the label and
analysis stages read.

Bilevel distillation with learned soft labels (Wang et al. 2018; Sucholutsky & Schonlau, IJCNN 2021):
`bilevel` (config, the unrolled inner loop through `torch.func.functional_call`, the outer Adam
step, entry function `bilevel_distill`), `bilevel_eval` (fresh networks trained on the learned set),
`bilevel_run` (the resumable run-folder job), `learned_labels` (the label-vector artifact) and
`text` (sentences as free matrices in a frozen word-embedding space).
"""
