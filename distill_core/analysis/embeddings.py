"""2-D embeddings of the features of real samples plus one or more image sets: PCA, t-SNE, UMAP.

One projection is fitted over all the sets shown together, so positions are comparable across
them. The result is a table (a list of plain dict rows: x, y, class, class name, source, a global
id, the index within its source and a PNG thumbnail as a data URI) ready for an interactive
scatter. Fits are seeded and cached on disk by a key over the features, method, parameters and
seed. scikit-learn and umap-learn are imported inside the functions that need them, so importing
distill_core stays light (UMAP's first fit in a process also compiles its numba kernels).
"""
from __future__ import annotations

import base64
import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..runs import load_tensors, save_tensors

METHODS = ("pca", "tsne", "umap")
DEFAULT_MAX_POINTS = 10_000
THUMB_MAX = 32  # thumbnails are at most this many pixels a side


@dataclass
class EmbedSource:
    """One set to embed: features [n, D], labels [n], pixel-space images [n, C, H, W] in [0, 1]."""

    name: str
    features: torch.Tensor
    labels: torch.Tensor
    images: torch.Tensor | None = None
    class_names: tuple[str, ...] = ()


@dataclass
class EmbeddingResult:
    rows: list[dict]  # x, y, class, class_name, source, id, index, thumb
    method: str
    params: dict
    n_total: int  # points offered
    n_shown: int  # points embedded (after subsampling)
    subsampled: bool
    cached: bool
    seconds: float  # fit time (0 when read from the cache)
    notes: list[str] = field(default_factory=list)


def check_sources(sources: list[EmbedSource], features_from_one_model: bool) -> None:
    """Refuse sets that cannot share one embedding (different feature sizes, or different image
    shapes unless one model made all the features)."""
    if not sources:
        raise ValueError("nothing to embed: give at least one set")
    dims = {s.name: int(s.features.shape[1]) for s in sources}
    if len(set(dims.values())) > 1:
        raise ValueError(f"feature sizes differ {dims}: extract all features with one model and layer")
    shapes = {s.name: tuple(s.images.shape[1:]) for s in sources if s.images is not None}
    if len(set(shapes.values())) > 1 and not features_from_one_model:
        raise ValueError(f"image shapes differ {shapes}: sets of different sizes/channels can only share an "
                         "embedding when one feature model accepts all of them")
    for s in sources:
        if len(s.features) != len(s.labels):
            raise ValueError(f"{s.name}: {len(s.features)} feature rows but {len(s.labels)} labels")


def allocate(sizes: list[int], budget: int) -> list[int]:
    """Points to keep from each set so the total is <= budget: small sets are kept whole and the
    rest of the budget is shared equally among the larger ones (water filling)."""
    keep = [0] * len(sizes)
    left, todo = budget, sorted(range(len(sizes)), key=lambda i: sizes[i])
    for pos, i in enumerate(todo):
        share = left // (len(todo) - pos)
        keep[i] = min(sizes[i], share)
        left -= keep[i]
    return keep


def _select(sources: list[EmbedSource], max_points: int, seed: int) -> tuple[list[torch.Tensor], bool]:
    sizes = [len(s.features) for s in sources]
    keep = allocate(sizes, max_points) if sum(sizes) > max_points else sizes
    g = torch.Generator().manual_seed(seed)
    picks = [torch.arange(n) if k == n else torch.randperm(n, generator=g)[:k].sort().values
             for n, k in zip(sizes, keep)]
    return picks, sum(sizes) > max_points


def fit_2d(x: np.ndarray, method: str, seed: int, params: dict, threads: int | None = None) -> np.ndarray:
    """Project x [n, D] (float32) to [n, 2] with PCA, t-SNE or UMAP, seeded.

    threads: cap on OpenMP/BLAS threads during the fit (None = library default). On a CPU shared
    with other jobs, 1 avoids OpenMP spin-waiting (t-SNE of 60 points: 20 s with 2 threads under
    load, 0.8 s with 1).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=threads):
        return _fit_2d(x, method, seed, params)


# The fastest CPU settings that keep the picture (params["fast"], the default; fast=False gives the
# libraries' defaults): t-SNE on the first 50 principal components (the usual preprocessing; the
# neighbour search costs O(N D)), 500 iterations instead of 1,000 (250 of them early exaggeration)
# and a coarser Barnes-Hut angle; UMAP with 200 optimisation epochs instead of 500 below 10k points.
# bench/embedding_speed.py measures both against the defaults.
FAST_TSNE = {"pca_dims": 50, "max_iter": 500, "angle": 0.7}
FAST_UMAP_EPOCHS = 200


def _pca_reduce(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    if x.shape[1] <= dims or len(x) <= dims:
        return x
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(np.float32)


def _fit_2d(x: np.ndarray, method: str, seed: int, params: dict) -> np.ndarray:
    n = len(x)
    if n < 3:
        raise ValueError(f"an embedding needs at least 3 points, got {n}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    fast = bool(params.get("fast", True))
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(float(params.get("perplexity", 30.0)), (n - 1) / 3)
        extra = {}
        if fast:
            x = _pca_reduce(x, FAST_TSNE["pca_dims"], seed)
            extra = {"max_iter": FAST_TSNE["max_iter"], "angle": FAST_TSNE["angle"], "n_jobs": 1}
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, **extra).fit_transform(x)
    if method == "umap":
        import umap  # lazy: heavy import, numba compilation on first fit

        nn = int(min(params.get("n_neighbors", 15), n - 1))
        extra = {"n_epochs": FAST_UMAP_EPOCHS, "n_jobs": 1} if fast else {}
        reducer = umap.UMAP(n_components=2, n_neighbors=nn, min_dist=float(params.get("min_dist", 0.1)),
                            random_state=seed, **extra)
        return reducer.fit_transform(x)
    raise ValueError(f"unknown embedding method {method!r}; use one of {', '.join(METHODS)}")


def thumbnail_uri(image: torch.Tensor) -> str:
    """A PNG data URI of one pixel-space image [C, H, W] in [0, 1], downscaled to <= THUMB_MAX px."""
    from PIL import Image

    img = image.detach().float().cpu().clamp(0, 1)
    if max(img.shape[1:]) > THUMB_MAX:
        img = torch.nn.functional.interpolate(img[None], size=(THUMB_MAX, THUMB_MAX), mode="area")[0]
    arr = (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _cache_key(x: np.ndarray, method: str, seed: int, params: dict) -> str:
    h = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    settings = (FAST_TSNE, FAST_UMAP_EPOCHS) if params.get("fast", True) else ()
    h.update(f"{method}|{seed}|{sorted(params.items())}|{settings}".encode())
    return h.hexdigest()[:16]


def _fit_cached(x: np.ndarray, method: str, seed: int, params: dict, cache_dir: Path | None,
                threads: int | None) -> tuple[np.ndarray, bool, float]:
    path = Path(cache_dir) / f"embedding-{_cache_key(x, method, seed, params)}.pt" if cache_dir else None
    if path is not None and path.is_file():
        try:
            xy = load_tensors(path)["xy"]
            if xy.shape == (len(x), 2):
                return xy.numpy(), True, 0.0
        except (ValueError, KeyError):
            pass  # corrupt cache: refit
    t0 = time.perf_counter()
    xy = np.asarray(fit_2d(x, method, seed, params, threads), dtype=np.float32)
    seconds = time.perf_counter() - t0
    if path is not None:
        try:
            save_tensors(path, {"xy": torch.from_numpy(xy), "method": method, "seed": seed, "params": dict(params)})
        except OSError:
            pass
    return xy, False, seconds


def embed(sources: list[EmbedSource], method: str = "pca", seed: int = 0, params: dict | None = None,
          max_points: int = DEFAULT_MAX_POINTS, cache_dir: Path | str | None = None,
          features_from_one_model: bool = False, thumbnails: bool = True, threads: int | None = None) -> EmbeddingResult:
    """Fit one 2-D `method` projection over all `sources` and return its table.

    More than `max_points` points in total are subsampled with `seed` (small sets kept whole) and
    the result says so. params: t-SNE `perplexity` (30), UMAP `n_neighbors` (15) and `min_dist` (0.1);
    `fast` (True: FAST_TSNE / FAST_UMAP_EPOCHS; False: the libraries' defaults).
    threads: see `fit_2d`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown embedding method {method!r}; use one of {', '.join(METHODS)}")
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, got {max_points}")
    params = dict(params or {})
    check_sources(sources, features_from_one_model)
    picks, subsampled = _select(sources, max_points, seed)
    x = torch.cat([s.features[p].float().cpu() for s, p in zip(sources, picks)]).numpy()
    xy, cached, seconds = _fit_cached(x, method, seed, params, Path(cache_dir) if cache_dir else None, threads)
    rows, gid = [], 0
    for s, p in zip(sources, picks):
        for i in p.tolist():
            c = int(s.labels[i])
            rows.append({"id": gid, "source": s.name, "index": i, "class": c,
                         "class_name": s.class_names[c] if c < len(s.class_names) else str(c),
                         "x": float(xy[gid, 0]), "y": float(xy[gid, 1]),
                         "thumb": thumbnail_uri(s.images[i]) if thumbnails and s.images is not None else ""})
            gid += 1
    n_total = sum(len(s.features) for s in sources)
    notes = [f"subsampled {n_total} points to {len(x)} (seed {seed}); raise max_points to show all"] if subsampled else []
    return EmbeddingResult(rows, method, params, n_total, len(x), subsampled, cached, seconds, notes)
