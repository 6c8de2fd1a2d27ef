"""Labels: soft labels for an image set, and the students trained on them.

FKD-style relabelling (Shen & Xing 2022; SRe2L; LPLD, Xiao & He, NeurIPS 2024): for each of E label
epochs every image gets a random augmented view whose parameters and teacher logits are stored
(≈ N·E·(2C + 25) bytes); `prune` keeps a fraction of the stored batches (random, or by a rule) and
the student draws its batches with replacement from the kept pool. Students minimise
KL(softmax(z_T/T) ‖ softmax(z_S/T)) on the replayed views. Random real images per class are the
baseline of "A Label is Worth a Thousand Images" (Qin et al., NeurIPS 2024).

Modules and entry functions: `relabel.relabel`, `prune.prune`, `student.train_student`,
`realimages.random_real_images`, `sweep.run_sweep` (image sources x strategies x ratios x seeds,
resumable, tidy CSV). Inputs are image-set artifacts; outputs are label stores and result CSVs.
"""
