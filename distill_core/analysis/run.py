"""The analysis job: similarity, diversity and embeddings of image-set runs, written as tables.

`analyse_sets` is the pure entry function (image sets + real images + a feature model in, an
`Analysis` out); `write_tables` writes it as CSV/JSON; `run_analyse` is the job behind
`python -m distill_core analyse --runs runs/A runs/B --out runs/A/analysis`.

Measures per run (see similarity.py and diversity.py for the equations):
  within/between-class cosine similarity of features and of pixels (mean ± std over classes),
  Fréchet distance and k-NN precision/recall/density/coverage of features against the real
  training images of the same classes (overall and per class), the nearest real training image of
  every image in pixel space (a near-copy flag) and in feature space; plus one 2-D embedding of the
  real images and all runs together.
The real images compared against are the training set, at most `max_real_per_class` per class
(drawn with `seed`); the pixel-space nearest-image search uses the whole training set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import check_choices, check_int, check_positive, knob
from ..data import ImageSet, load_dataset
from ..imageset import ImageSetArtifact, load_image_set
from . import diversity, embeddings, similarity
from .features import POOLS, FeatureModel, cached_features, load_feature_model

EMBEDDINGS = ("none",) + embeddings.METHODS


@dataclass(frozen=True)
class AnalyseConfig:
    runs: tuple[str, ...] = knob((), "image-set run folders (holding images.pt) to analyse together")
    feature_model: str = knob("", "teacher run folder or checkpoint giving features; '' = the first run's teacher")
    layer: str = knob("", "module to read features from (a forward hook); '' = the penultimate features()")
    pool: str = knob("avg", "reduce a 4-D layer output: avg (global average) | flatten", choices=POOLS)
    real: str = knob("", "dataset spec of the real images; '' = the runs' dataset "
                         "(path from the feature model's run config)")
    k: int = knob(diversity.DEFAULT_K, "neighbours for precision/recall/density/coverage (Naeem et al. use 5)")
    max_real_per_class: int = knob(500, "real training images per class compared against (random subset)")
    embedding: str = knob("pca", "2-D projection: pca (instant) | tsne | umap | none", choices=EMBEDDINGS)
    max_points: int = knob(embeddings.DEFAULT_MAX_POINTS, "embedding points before subsampling; typical 10000")
    copy_ratio: float = knob(0.1, "flag a near-copy when nearest-real distance < ratio x typical real-real distance")
    embedding_threads: int = knob(0, "OpenMP/BLAS threads for the embedding fit; 0 = library default, 1 on a shared CPU")
    thumbnails: bool = knob(True, "store a PNG thumbnail of each embedded image (for hover in the app)")
    seed: int = knob(0, "seed of the real subset, the subsampling and the embedding")
    device: str = knob("auto", "auto | cpu | cuda[:N]")

    def __post_init__(self):
        check_int("k", self.k)
        check_int("max_real_per_class", self.max_real_per_class, minimum=2)
        check_int("max_points", self.max_points, minimum=3)
        check_positive("copy_ratio", self.copy_ratio)
        if self.copy_ratio >= 1:
            raise ValueError(f"copy_ratio must be < 1, got {self.copy_ratio}; typical 0.1")
        check_int("seed", self.seed, minimum=0)
        check_int("embedding_threads", self.embedding_threads, minimum=0)
        check_choices(self)


@dataclass
class Analysis:
    """Everything `write_tables` writes; plain structures the app can plot."""

    summary: list[dict]  # one row per run
    per_class: list[dict]  # one row per (run, class)
    nearest: list[dict]  # one row per image of each run
    matrices: dict[str, dict[str, dict[int, torch.Tensor]]]  # run -> "features"/"pixels" -> class -> [n, n]
    embedding: embeddings.EmbeddingResult | None
    info: dict  # feature model, layer, real data, k, notes
    notes: list[str] = field(default_factory=list)


@dataclass
class RealReference:
    """The real images a run is compared against."""

    sub: ImageSet  # class-balanced random subset (uint8) used for features, Fréchet and k-NN measures
    sub_index: torch.Tensor  # [n_sub] index of each subset row in the full training set
    feats: torch.Tensor  # [n_sub, D] features of the subset
    all_images: torch.Tensor  # [N, C, H, W] float, the whole training set (pixel nearest-image search)
    all_labels: torch.Tensor  # [N]


def real_subset(real: ImageSet, per_class: int, seed: int) -> tuple[ImageSet, torch.Tensor]:
    """At most `per_class` random images of each class (seeded) and their indices in `real`."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in sorted(set(real.labels.tolist())):
        idx = real.class_indices(c)
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]].sort().values)
    index = torch.cat(picks)
    return ImageSet(real.images[index], real.labels[index]), index


def _run_rows(name: str, art: ImageSetArtifact, feats: torch.Tensor, ref: RealReference,
              cfg: AnalyseConfig) -> tuple[dict, list, list, dict, list]:
    """Summary row, per-class rows, nearest rows, similarity matrices and notes of one run."""
    feat_sim = similarity.class_similarity(feats, art.labels)
    pix_sim = similarity.class_similarity(art.images, art.labels)
    div = diversity.diversity(feats, art.labels, ref.feats, ref.sub.labels, cfg.k)
    near_pix = diversity.nearest_real(art.images, ref.all_images, cfg.copy_ratio, cfg.seed)
    near_feat_idx, near_feat_dist = diversity.nearest(feats, ref.feats)
    fs, ps = feat_sim.summary(), pix_sim.summary()
    fds = [r["fd"] for r in div.per_class if not math.isnan(r["fd"])]
    summary = {
        "run": name, "method": art.method, "ipc": art.ipc, "n_images": len(art.labels),
        "feat_within_mean": fs["within_mean"], "feat_within_std": fs["within_std"], "feat_between_mean": fs["between_mean"],
        "pix_within_mean": ps["within_mean"], "pix_within_std": ps["within_std"], "pix_between_mean": ps["between_mean"],
        "fd": div.overall["fd"], "fd_class_mean": sum(fds) / len(fds) if fds else math.nan,
        **{m: div.overall[m] for m in ("precision", "recall", "density", "coverage", "k")},
        "copies": int(near_pix.copy.sum()), "nearest_ratio_median": float(near_pix.ratio.median()),
    }
    per_class = []
    for row in div.per_class:
        c = row["class"]
        per_class.append({"run": name, "class": c, "class_name": _class_name(art, c), "n": feat_sim.counts[c],
                          "feat_within": feat_sim.within[c], "pix_within": pix_sim.within[c],
                          **{m: row[m] for m in ("fd", "precision", "recall", "density", "coverage")}})
    nearest = [{"run": name, "index": i, "class": int(art.labels[i]), "nearest_real": int(near_pix.index[i]),
                "nearest_real_class": int(ref.all_labels[near_pix.index[i]]),
                "pixel_distance": float(near_pix.distance[i]), "pixel_ratio": float(near_pix.ratio[i]),
                "copy": bool(near_pix.copy[i]), "nearest_real_feature": int(ref.sub_index[near_feat_idx[i]]),
                "feature_distance": float(near_feat_dist[i])} for i in range(len(art.labels))]
    matrices = {"features": feat_sim.matrices, "pixels": pix_sim.matrices}
    notes = [f"{name}: {n}" for n in feat_sim.notes + div.notes + near_pix.notes]
    return summary, per_class, nearest, matrices, notes


def _class_name(art: ImageSetArtifact, c: int) -> str:
    return art.info.class_names[c] if c < len(art.info.class_names) else str(c)


def analyse_sets(sets: dict[str, ImageSetArtifact], real: ImageSet, fm: FeatureModel, cfg: AnalyseConfig,
                 cache_dirs: dict[str, Path | None] | None = None, real_cache: Path | None = None,
                 on_progress: Callable[[float, str], None] = lambda p, m: None) -> Analysis:
    """Analyse image sets `sets` (name -> artifact) against real training images `real` with feature model `fm`.

    cache_dirs: per set, where its features are cached (None = no cache); real_cache likewise.
    """
    if not sets:
        raise ValueError("give at least one image-set run to analyse")
    _check_shapes(sets, real, fm)
    # the progress bar's share of the measures before the embedding: t-SNE and UMAP take most of the time
    share = 0.4 if cfg.embedding in ("tsne", "umap") else 0.95
    real_sub, sub_index = real_subset(real, cfg.max_real_per_class, cfg.seed)
    real_sub_float = real_sub.float_images()
    on_progress(0.05 * share, f"features of {len(real_sub)} real images")
    real_feats = cached_features(fm, real_sub_float, real_cache, cfg.layer, cfg.pool)
    ref = RealReference(real_sub, sub_index, real_feats, real.float_images(), real.labels)
    out: dict[str, list] = {"summary": [], "per_class": [], "nearest": [], "notes": []}
    matrices, feats_by_run = {}, {}
    for i, (name, art) in enumerate(sets.items()):
        on_progress(share * (0.1 + 0.9 * i / len(sets)), f"analysing {name} ({i + 1} of {len(sets)})")
        feats = cached_features(fm, art.images, (cache_dirs or {}).get(name), cfg.layer, cfg.pool, images_sha=art.checksum)
        feats_by_run[name] = feats
        row, pc, nr, mats, notes = _run_rows(name, art, feats, ref, cfg)
        out["summary"].append(row)
        out["per_class"] += pc
        out["nearest"] += nr
        out["notes"] += notes
        matrices[name] = mats
    emb = None
    if cfg.embedding != "none":
        on_progress(share, f"{cfg.embedding} embedding")
        info = next(iter(sets.values())).info
        sources = [embeddings.EmbedSource("real", real_feats, real_sub.labels, real_sub_float, info.class_names)]
        sources += [embeddings.EmbedSource(n, feats_by_run[n], a.labels, a.images, a.info.class_names)
                    for n, a in sets.items()]
        emb = embeddings.embed(sources, cfg.embedding, cfg.seed, max_points=cfg.max_points, cache_dir=real_cache,
                               features_from_one_model=True, thumbnails=cfg.thumbnails,
                               threads=cfg.embedding_threads or None,
                               on_progress=lambda p, m: on_progress(share + (1 - share) * p, m))
        for row in emb.rows:  # real rows: index into the whole training set, like nearest_real
            if row["source"] == "real":
                row["index"] = int(sub_index[row["index"]])
        out["notes"] += emb.notes
    info = {"feature_model": fm.source, "feature_model_name": fm.spec.name, "feature_model_args": fm.spec.args,
            "layer": cfg.layer or "penultimate", "pool": cfg.pool, "k": cfg.k, "n_real": len(real_sub),
            "n_real_nearest_search": len(real), "copy_ratio": cfg.copy_ratio, "seed": cfg.seed}
    return Analysis(out["summary"], out["per_class"], out["nearest"], matrices, emb, info, out["notes"])


def _check_shapes(sets: dict[str, ImageSetArtifact], real: ImageSet, fm: FeatureModel) -> None:
    want = (fm.spec.info.channels, fm.spec.info.image_size, fm.spec.info.image_size)
    shapes = {"real": tuple(real.images.shape[1:]), **{n: tuple(a.images.shape[1:]) for n, a in sets.items()}}
    bad = {n: s for n, s in shapes.items() if s != want}
    if bad:
        raise ValueError(f"the feature model takes {want} images but {bad} differ: analyse sets of another "
                         "size/channel count separately, with a feature model trained on their data")


# ---------------------------------------------------------------------------------------------
# tables


def _csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    import csv
    import io

    buf = io.StringIO()
    columns = columns or (list(rows[0]) if rows else [])
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


SCHEMA = "distill_core.analysis/1"
ARTIFACT = "analysis.pt"  # the whole Analysis, read back by `read_analysis` (the CSV/JSON files are for people)


def _embedding_dict(emb: embeddings.EmbeddingResult | None) -> dict | None:
    return None if emb is None else {k: getattr(emb, k) for k in embeddings.EmbeddingResult.__dataclass_fields__}


def read_analysis(out: Path) -> Analysis:
    """The Analysis an `analyse` job wrote into `out` (its analysis.pt). ValueError naming the folder when
    there is none (a job still running, or tables written before analysis.pt existed: run analyse again)."""
    from ..runs import load_artifact

    path = Path(out) / ARTIFACT
    if not path.is_file():
        raise ValueError(f"{out} holds no {ARTIFACT}: the analysis has not finished there, or was written by an "
                         "older version; run `python -m distill_core analyse` into it again")
    raw = load_artifact(path, SCHEMA, "analysis")
    emb = raw["embedding"]
    return Analysis(raw["summary"], raw["per_class"], raw["nearest"], raw["matrices"],
                    None if emb is None else embeddings.EmbeddingResult(**emb), raw["info"], raw["notes"])


def write_tables(analysis: Analysis, out: Path) -> list[str]:
    """Write the analysis into `out` (atomically): CSV/JSON tables, and the whole of it as analysis.pt
    for `read_analysis`; returns the file names."""
    from ..runs import save_tensors, write_json_atomic, write_text_atomic

    out = Path(out)
    files = {
        "summary.csv": _csv_text(analysis.summary),
        "per_class.csv": _csv_text(analysis.per_class),
        "nearest_real.csv": _csv_text(analysis.nearest),
    }
    for name, text in files.items():
        write_text_atomic(out / name, text)
    write_json_atomic(out / "summary.json", {"info": analysis.info, "summary": analysis.summary,
                                             "notes": analysis.notes})
    mats = {run: {space: {str(c): m.double().round(decimals=4).tolist() for c, m in by_class.items()}
                  for space, by_class in spaces.items()}
            for run, spaces in analysis.matrices.items()}
    write_json_atomic(out / "similarity_matrices.json", mats)
    save_tensors(out / ARTIFACT, {"schema": SCHEMA, "summary": analysis.summary, "per_class": analysis.per_class,
                                  "nearest": analysis.nearest, "matrices": analysis.matrices, "info": analysis.info,
                                  "notes": analysis.notes, "embedding": _embedding_dict(analysis.embedding)})
    names = [*files, "summary.json", "similarity_matrices.json", ARTIFACT]
    emb = analysis.embedding
    if emb is not None:
        cols = ["id", "source", "index", "class", "class_name", "x", "y"]
        write_text_atomic(out / "embedding.csv", _csv_text(emb.rows, cols))
        write_json_atomic(out / "embedding.json", {"method": emb.method, "params": emb.params, "n_total": emb.n_total,
                                                   "n_shown": emb.n_shown, "subsampled": emb.subsampled,
                                                   "notes": emb.notes, "rows": emb.rows})
        names += ["embedding.csv", "embedding.json"]
    return names


# ---------------------------------------------------------------------------------------------
# the job


def _teacher_path(art: ImageSetArtifact, run_dir: Path) -> Path | None:
    teacher = art.extra.get("teacher")
    if not teacher:
        return None
    for cand in (Path(str(teacher)), run_dir.parent / Path(str(teacher)).name):
        if cand.exists():
            return cand
    raise ValueError(f"{run_dir}: its teacher {teacher} is gone; pass --feature-model <teacher run>")


def resolve_inputs(cfg: AnalyseConfig, device: torch.device) -> tuple[dict, FeatureModel, str]:
    """(name -> image set, feature model, real-data spec) for a config."""
    if not cfg.runs:
        raise ValueError("give the image-set runs to analyse: --runs runs/A runs/B")
    dirs = [Path(r) for r in cfg.runs]
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        names = [str(d) for d in dirs]
    sets = {n: load_image_set(d) for n, d in zip(names, dirs)}
    fm_path = Path(cfg.feature_model) if cfg.feature_model else next(
        (p for n, d in zip(names, dirs) if (p := _teacher_path(sets[n], d)) is not None), None)
    if fm_path is None:
        raise ValueError("no run names its teacher; pass --feature-model <teacher run folder or checkpoint>")
    fm = load_feature_model(fm_path, device=device)
    return sets, fm, cfg.real or _real_spec(sets, fm_path)


def _real_spec(sets: dict[str, ImageSetArtifact], fm_path: Path) -> str:
    """The runs' dataset spec: one a run recorded (random-real runs do), else the feature model run's
    training spec when it is the same dataset (it carries the data path), else the dataset's name."""
    from ..config import load_yaml
    from ..data import parse_spec

    name = next(iter(sets.values())).info.name
    cfg_file = fm_path / "config.yaml" if fm_path.is_dir() else None
    candidates = [str(a.extra.get("dataset", "")) for a in sets.values()]
    candidates.append(str(load_yaml(cfg_file).get("dataset", "")) if cfg_file and cfg_file.is_file() else "")
    return next((c for c in candidates if c and parse_spec(c)[0] == name), name)


def analyse_runs(cfg: AnalyseConfig, device: torch.device | str, real_cache: Path,
                 on_progress: Callable[[float, str], None] = lambda p, m: None) -> Analysis:
    """Analyse the image-set runs of `cfg`: resolve them, their feature model and their real data, then
    `analyse_sets`. Features and embeddings are cached in each run's `analysis/` folder and the real
    images' in `real_cache`; the CLI job and the app both call this, so they report the same numbers."""
    sets, fm, real_spec = resolve_inputs(cfg, device)
    real = load_dataset(real_spec).train
    caches = {n: Path(r) / "analysis" for n, r in zip(sets, cfg.runs)}
    analysis = analyse_sets(sets, real, fm, cfg, caches, Path(real_cache), on_progress)
    analysis.info["real"] = real_spec
    return analysis


def run_analyse(cfg: AnalyseConfig, out_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: analyse `cfg.runs` into `out_dir` (tables + caches). Re-running refreshes the tables in place
    and keeps the feature and embedding caches; a folder of another stage is refused."""
    from .. import jobs, runs
    from ..device import resolve_device

    out_dir = Path(out_dir)
    stage = runs.read_json(out_dir / "provenance.json", {}).get("stage") if out_dir.is_dir() else None
    if out_dir.is_dir() and ((out_dir / "images.pt").exists() or stage not in (None, "analyse")):
        raise ValueError(f"{out_dir} is a {stage or 'image-set'} run, not an analysis folder; choose another --out")
    # what `jobs.launch` writes before the process starts (job.log, a queued status) is not a previous analysis
    existing = out_dir.is_dir() and any(p.name not in runs.LAUNCH_FILES for p in out_dir.iterdir())
    cache_only = out_dir.name == "analysis" and runs.is_run(out_dir.parent)  # <run>/analysis: feature caches
    if existing and not runs.is_run(out_dir) and not cache_only:
        raise ValueError(f"{out_dir} holds files but is not an analysis run; nothing was changed. "
                         "Choose a new or empty --out")
    if existing and not overwrite:
        (out_dir / "config.yaml").unlink(missing_ok=True)  # tables are regenerated; the old config is stale
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        analysis = analyse_runs(cfg, device, ctx.run_dir / "cache", ctx.report)
        files = write_tables(analysis, ctx.run_dir)
        return {"runs": list(analysis.matrices), "files": files, "info": analysis.info, "summary": analysis.summary,
                "notes": analysis.notes}

    return jobs.run_stage("analyse", cfg, out_dir, body, device, cfg.seed, resume or (existing and not overwrite),
                          overwrite)
