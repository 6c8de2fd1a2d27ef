"""2-D embeddings of the features of real samples plus one or more image sets: PCA, t-SNE, UMAP.

One projection is fitted over all the sets shown together, so positions are comparable across
them. The result is a table (a list of plain dict rows: x, y, class, class name, source, a global
id, the index within its source and a PNG thumbnail as a data URI) ready for an interactive
scatter. Fits are seeded and cached on disk by a key over the features, method, parameters and
seed. scikit-learn and umap-learn are imported inside the functions that need them, so importing
distill_core stays light. t-SNE reports its progress every 50 iterations and UMAP every epoch, both
from the libraries' own progress output (t-SNE's verbose lines, UMAP's tqdm bar).

UMAP's numba kernels on our path are compiled into numba's on-disk cache (`warm_umap`, run by
`dev.py setup`), so a new process (the app's embedding job) loads them instead of compiling them.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..runs import load_tensors, save_tensors

ProgressFn = Callable[[float, str], None]  # (fraction of the fit done, message)
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


def fit_2d(x: np.ndarray, method: str, seed: int, params: dict, threads: int | None = None,
           on_progress: ProgressFn | None = None) -> np.ndarray:
    """Project x [n, D] (float32) to [n, 2] with PCA, t-SNE or UMAP, seeded.

    threads: cap on OpenMP/BLAS threads during the fit (None = library default). On a CPU shared
    with other jobs, 1 avoids OpenMP spin-waiting (t-SNE of 60 points: 20 s with 2 threads under
    load, 0.8 s with 1).
    on_progress: called with the fraction of the fit done (t-SNE: every 50 iterations; UMAP: every
    epoch, at most every 0.1 s) and a message.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=threads):
        return _fit_2d(x, method, seed, params, on_progress or (lambda p, m: None))


# The fastest CPU settings that keep the picture (params["fast"], the default; fast=False gives the
# libraries' defaults): t-SNE on the first 50 principal components (the usual preprocessing; the
# neighbour search costs O(N D)), 500 iterations instead of 1,000 (250 of them early exaggeration)
# and a coarser Barnes-Hut angle; UMAP with 200 optimisation epochs instead of 500 below 10k points,
# on exact nearest neighbours computed here with BLAS (`exact_knn`): the graph UMAP itself builds
# below 4,096 points, where it calls its distance function once per pair from Python (4 of the 5 s
# of 2,000 points). bench/embedding_speed.py measures both against the defaults.
FAST_TSNE = {"pca_dims": 50, "max_iter": 500, "angle": 0.7}
FAST_UMAP_EPOCHS = 200


def _pca_reduce(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    if x.shape[1] <= dims or len(x) <= dims:
        return x
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(np.float32)


def _fit_2d(x: np.ndarray, method: str, seed: int, params: dict, on_progress: ProgressFn) -> np.ndarray:
    n = len(x)
    if n < 3:
        raise ValueError(f"an embedding needs at least 3 points, got {n}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        return _tsne(x, seed, params, on_progress)
    if method == "umap":
        return _umap(x, seed, params, on_progress)
    raise ValueError(f"unknown embedding method {method!r}; use one of {', '.join(METHODS)}")


class _LineReport(io.TextIOBase):
    """A text stream that hands each complete line (or tqdm's carriage-return update) to `parse`."""

    def __init__(self, parse: Callable[[str], None]):
        super().__init__()
        self.parse, self.pending = parse, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *done, self.pending = re.split(r"[\r\n]", self.pending + text)
        for line in filter(None, (d.strip() for d in done)):
            self.parse(line)
        return len(text)


TSNE_ITERATION = re.compile(r"^\[t-SNE\] Iteration (\d+):")


def _tsne(x: np.ndarray, seed: int, params: dict, on_progress: ProgressFn) -> np.ndarray:
    """scikit-learn's Barnes-Hut t-SNE; progress from its verbose lines ("[t-SNE] Iteration 250: ..."
    every 50 iterations), which go to `on_progress` instead of stdout."""
    from sklearn.manifold import TSNE

    n = len(x)
    perplexity = min(float(params.get("perplexity", 30.0)), (n - 1) / 3)
    extra = {}
    if params.get("fast", True):
        x = _pca_reduce(x, FAST_TSNE["pca_dims"], seed)
        extra = {"max_iter": FAST_TSNE["max_iter"], "angle": FAST_TSNE["angle"], "n_jobs": 1}
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, verbose=2, **extra)
    total = tsne.max_iter

    def parse(line: str) -> None:
        if m := TSNE_ITERATION.match(line):
            done = int(m.group(1))
            on_progress(0.1 + 0.9 * min(done / total, 1.0), f"t-SNE iteration {done}/{total}")
        elif line.startswith("[t-SNE] Computed conditional probabilities for sample"):
            on_progress(0.05, "t-SNE: neighbour affinities")

    on_progress(0.0, f"t-SNE: nearest neighbours of {n} points")
    with contextlib.redirect_stdout(_LineReport(parse)):
        return tsne.fit_transform(x)


def exact_knn(x: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices [n, k] (int32) and Euclidean distances [n, k] (float32) of every row's k nearest rows,
    itself first at distance 0, nearest first: brute force by BLAS in row chunks (O(n² D) time,
    O(chunk · n) memory). This is the graph UMAP builds itself below 4,096 points."""
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=0)  # centred: smaller norms, so less cancellation in |a|² + |b|² - 2ab
    sq = np.einsum("ij,ij->i", x, x)
    index = np.empty((len(x), k), dtype=np.int32)
    dist = np.empty((len(x), k), dtype=np.float32)
    for start in range(0, len(x), chunk):
        rows = np.arange(start, min(start + chunk, len(x)))
        d2 = np.maximum(sq[rows, None] + sq[None, :] - 2 * x[rows] @ x.T, 0)
        d2[np.arange(len(rows)), rows] = -1  # itself first, whatever the rounding
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d2, part, axis=1).argsort(axis=1, kind="stable")
        index[rows] = np.take_along_axis(part, order, axis=1)
        dist[rows] = np.sqrt(np.maximum(np.take_along_axis(d2, index[rows], axis=1), 0))
    return index, dist


# UMAP's numba kernels on the path `_umap` takes that umap-learn compiles without `cache=True`, so every
# new process compiled them again (about 8 s on a 2-core CPU). Only these: the parallel variant of the
# epoch kernel wraps the same Python function, and numba's cache does not tell the two apart.
UMAP_KERNELS = ("umap.umap_:smooth_knn_dist", "umap.umap_:compute_membership_strengths",
                "umap.layouts:_nb_optimize_layout_euclidean_single_epoch")


def umap_kernels() -> dict:
    """name -> numba dispatcher of each of UMAP_KERNELS, with numba's on-disk cache enabled (numba puts it
    beside umap's sources, or in the user's cache folder when those are read-only, or in $NUMBA_CACHE_DIR)."""
    import importlib

    from numba.core.caching import NullCache

    out = {}
    for name in UMAP_KERNELS:
        module, attr = name.split(":")
        kernel = getattr(importlib.import_module(module), attr)
        if isinstance(kernel._cache, NullCache):
            kernel.enable_caching()
        out[name] = kernel
    return out


UMAP_EPOCH = re.compile(r"^(\d+)/(\d+)$")  # the tqdm bar_format "{n}/{total}" set below
EXACT_KNN_MAX = 10_000  # more points: UMAP's own approximate search (NN-descent), as by default from 4,096
UMAP_EXPECTED_WARNINGS = (r"precomputed_knn\[2\] \(knn_search_index\) is not an NNDescent object",
                          r"n_jobs value \d+ overridden to 1 by setting random_state")


def _umap(x: np.ndarray, seed: int, params: dict, on_progress: ProgressFn) -> np.ndarray:
    """umap-learn, with the fast settings on exact nearest neighbours (`exact_knn`, up to EXACT_KNN_MAX
    points); progress from its per-epoch tqdm bar, drawn as "epoch/total" into a stream that calls
    `on_progress`."""
    import umap  # lazy: heavy import

    umap_kernels()
    n = len(x)
    nn = int(min(params.get("n_neighbors", 15), n - 1))
    extra = {}
    if params.get("fast", True):
        extra = {"n_epochs": FAST_UMAP_EPOCHS, "n_jobs": 1}
        if n <= EXACT_KNN_MAX:
            on_progress(0.0, f"UMAP: exact nearest neighbours of {n} points")
            extra["precomputed_knn"] = exact_knn(x, nn)
    on_progress(0.05, "UMAP: neighbour graph and spectral initialisation")

    def parse(line: str) -> None:
        if m := UMAP_EPOCH.match(line):
            done, total = int(m.group(1)), int(m.group(2))
            on_progress(0.1 + 0.9 * done / max(total, 1), f"UMAP epoch {done}/{total}")

    bar = {"disable": False, "file": _LineReport(parse), "bar_format": "{n}/{total}", "mininterval": 0.1}
    reducer = umap.UMAP(n_components=2, n_neighbors=nn, min_dist=float(params.get("min_dist", 0.1)),
                        random_state=seed, tqdm_kwds=bar, **extra)
    with warnings.catch_warnings():  # what we chose: no search index for new points, one thread with a seed
        for text in UMAP_EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=text)
        return reducer.fit_transform(x)


def warm_umap() -> dict[str, str]:
    """Compile UMAP_KERNELS into numba's on-disk cache by fitting 300 random points (dev.py setup runs this
    once per umap/numba version); returns each kernel's cache folder. Raises RuntimeError, saying what to
    set, when a kernel's cache index was not written."""
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    fit_2d(x, "umap", 0, {}, threads=1)
    out = {}
    for name, kernel in umap_kernels().items():
        folder = Path(str(kernel.stats.cache_path))
        if not any(folder.glob(f"*.{kernel.py_func.__qualname__}-*.nbi")):
            raise RuntimeError(f"numba wrote no cache for {name} in {folder}; set NUMBA_CACHE_DIR to a writable "
                               "folder (for the app's server and its jobs alike), then run dev.py setup again")
        out[name] = str(folder)
    return out


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
    settings = (FAST_TSNE, FAST_UMAP_EPOCHS, "exact-knn", EXACT_KNN_MAX) if params.get("fast", True) else ()
    h.update(f"{method}|{seed}|{sorted(params.items())}|{settings}".encode())
    return h.hexdigest()[:16]


def _fit_cached(x: np.ndarray, method: str, seed: int, params: dict, cache_dir: Path | None,
                threads: int | None, on_progress: ProgressFn | None) -> tuple[np.ndarray, bool, float]:
    path = Path(cache_dir) / f"embedding-{_cache_key(x, method, seed, params)}.pt" if cache_dir else None
    if path is not None and path.is_file():
        try:
            xy = load_tensors(path)["xy"]
            if xy.shape == (len(x), 2):
                return xy.numpy(), True, 0.0
        except (ValueError, KeyError):
            pass  # corrupt cache: refit
    t0 = time.perf_counter()
    xy = np.asarray(fit_2d(x, method, seed, params, threads, on_progress), dtype=np.float32)
    seconds = time.perf_counter() - t0
    if path is not None:
        try:
            save_tensors(path, {"xy": torch.from_numpy(xy), "method": method, "seed": seed, "params": dict(params)})
        except OSError:
            pass
    return xy, False, seconds


def embed(sources: list[EmbedSource], method: str = "pca", seed: int = 0, params: dict | None = None,
          max_points: int = DEFAULT_MAX_POINTS, cache_dir: Path | str | None = None,
          features_from_one_model: bool = False, thumbnails: bool = True, threads: int | None = None,
          on_progress: ProgressFn | None = None) -> EmbeddingResult:
    """Fit one 2-D `method` projection over all `sources` and return its table.

    More than `max_points` points in total are subsampled with `seed` (small sets kept whole) and
    the result says so. params: t-SNE `perplexity` (30), UMAP `n_neighbors` (15) and `min_dist` (0.1);
    `fast` (True: FAST_TSNE / FAST_UMAP_EPOCHS; False: the libraries' defaults).
    threads, on_progress: see `fit_2d`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown embedding method {method!r}; use one of {', '.join(METHODS)}")
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, got {max_points}")
    params = dict(params or {})
    check_sources(sources, features_from_one_model)
    picks, subsampled = _select(sources, max_points, seed)
    x = torch.cat([s.features[p].float().cpu() for s, p in zip(sources, picks)]).numpy()
    xy, cached, seconds = _fit_cached(x, method, seed, params, Path(cache_dir) if cache_dir else None, threads,
                                      on_progress)
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
