"""Analysis: why a distilled set works, measured on its artifacts.

Features of a fixed network (`features`), within-class cosine similarity (`similarity`; the
diversity argument of Xiao & He, NeurIPS 2024), distribution metrics against real images
(`diversity`: precision / recall / density / coverage of Naeem et al. 2020, Fréchet distance,
nearest-real copies) and 2-D embeddings of real and synthetic features fitted together
(`embeddings`: PCA, t-SNE, UMAP). `run.analyse_runs` is the one entry function the CLI's
`analyse` verb and the app both call. Inputs are image-set artifacts; outputs are CSV/JSON tables.
"""
