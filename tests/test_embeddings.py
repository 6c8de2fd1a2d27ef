import base64
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from distill_core.analysis.embeddings import (
    FAST_UMAP_EPOCHS,
    UMAP_KERNELS,
    EmbedSource,
    allocate,
    embed,
    exact_knn,
    fit_2d,
    thumbnail_uri,
)


def _source(name, n, dim=6, seed=0, size=8, channels=1):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    feats = torch.randn(n, dim, generator=g) + 5 * labels[:, None].float()
    return EmbedSource(name, feats, labels, torch.rand(n, channels, size, size, generator=g), ("a", "b", "c"))


def test_pca_table_rows_and_separation():
    res = embed([_source("real", 60), _source("synth", 30, seed=1)], "pca", seed=0)
    assert len(res.rows) == 90 and res.n_shown == 90 and not res.subsampled
    assert [r["id"] for r in res.rows] == list(range(90))
    assert {r["source"] for r in res.rows} == {"real", "synth"}
    assert res.rows[61]["class_name"] == "b" and res.rows[61]["index"] == 1
    # classes are 5 apart in every feature: the first principal axis orders them
    xs = {c: sum(r["x"] for r in res.rows if r["class"] == c) / 30 for c in range(3)}
    assert abs(xs[0] - xs[2]) > abs(xs[0] - xs[1]) > 1.0


def test_seeded_and_cached(tmp_path):
    srcs = [_source("real", 40), _source("synth", 20, seed=1)]
    a = embed(srcs, "tsne", seed=3, params={"perplexity": 5}, cache_dir=tmp_path, thumbnails=False, threads=1)
    b = embed(srcs, "tsne", seed=3, params={"perplexity": 5}, cache_dir=tmp_path, thumbnails=False, threads=1)
    assert not a.cached and b.cached and b.seconds == 0.0
    assert [(r["x"], r["y"]) for r in a.rows] == [(r["x"], r["y"]) for r in b.rows]
    c = embed(srcs, "tsne", seed=3, params={"perplexity": 5}, thumbnails=False, threads=1)  # no cache: refit, same seed
    assert [r["x"] for r in c.rows] == pytest.approx([r["x"] for r in a.rows], abs=1e-4)


def test_subsampling_keeps_small_sets_and_says_so():
    assert allocate([10, 1000, 500], 300) == [10, 145, 145]
    res = embed([_source("real", 500), _source("synth", 20, seed=1)], "pca", max_points=120, thumbnails=False)
    assert res.subsampled and res.n_shown == 120 and res.n_total == 520
    assert sum(r["source"] == "synth" for r in res.rows) == 20
    assert "subsampled 520 points to 120" in res.notes[0]


def test_refuses_mixed_shapes_unless_one_model():
    a, b = _source("a", 10), _source("b", 10, size=16)
    with pytest.raises(ValueError, match="image shapes differ"):
        embed([a, b], "pca", features_from_one_model=False)
    assert len(embed([a, b], "pca", features_from_one_model=True, thumbnails=False).rows) == 20
    with pytest.raises(ValueError, match="feature sizes differ"):
        embed([a, _source("c", 10, dim=7)], "pca", features_from_one_model=True)


def test_thumbnail_is_a_png_of_the_image():
    img = torch.zeros(3, 64, 64)
    img[0] = 1.0  # red
    uri = thumbnail_uri(img)
    assert uri.startswith("data:image/png;base64,")
    pil = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert pil.size == (32, 32) and pil.getpixel((5, 5)) == (255, 0, 0)


def test_unknown_method():
    with pytest.raises(ValueError, match="pca, tsne, umap"):
        embed([_source("a", 10)], "mds")


def test_exact_knn_puts_each_point_first_then_its_nearest():
    x = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)  # on a line: distances worked out by hand
    index, dist = exact_knn(x, 3, chunk=3)  # two chunks
    assert index.tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 1]]
    assert dist.tolist() == [[0, 1, 3], [0, 1, 2], [0, 2, 3], [0, 4, 6]]
    assert index.dtype == np.int32 and dist.dtype == np.float32
    with pytest.raises(ValueError, match="k must be between 1 and the number of points"):
        exact_knn(x, 5)


def _blobs(n: int = 150, dims: int = 8) -> np.ndarray:
    g = np.random.default_rng(0)
    return (g.standard_normal((n, dims)) + 6 * (np.arange(n) % 3)[:, None]).astype(np.float32)


def test_tsne_reports_progress_every_50_iterations_and_prints_nothing(capsys):
    seen = []
    xy = fit_2d(_blobs(), "tsne", 0, {}, threads=1, on_progress=lambda p, m: seen.append((p, m)))
    assert xy.shape == (150, 2)
    iterations = [m for _, m in seen if m.startswith("t-SNE iteration")]
    assert iterations[0] == "t-SNE iteration 50/500" and len(iterations) >= 5
    assert [p for p, _ in seen] == sorted(p for p, _ in seen) and seen[-1][0] <= 1.0
    assert capsys.readouterr().out == ""  # scikit-learn's verbose lines went to the progress callback


def test_umap_reports_progress_by_epoch():
    seen = []
    xy = fit_2d(_blobs(), "umap", 0, {}, threads=1, on_progress=lambda p, m: seen.append((p, m)))
    assert xy.shape == (150, 2)
    epochs = [int(m.split()[2].split("/")[0]) for _, m in seen if m.startswith("UMAP epoch")]
    assert len(epochs) >= 2 and epochs == sorted(epochs) and epochs[-1] == FAST_UMAP_EPOCHS
    assert seen[-1] == (1.0, f"UMAP epoch {FAST_UMAP_EPOCHS}/{FAST_UMAP_EPOCHS}")


CACHE_STATS = """
import json
from distill_core.analysis import embeddings
import numpy as np
x = np.random.default_rng(1).standard_normal((120, 8)).astype(np.float32)
embeddings.fit_2d(x, "umap", 0, {}, threads=1)
print(json.dumps({k: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
                  for k, d in embeddings.umap_kernels().items()}))
"""


def test_a_new_process_loads_umaps_kernels_from_the_cache_warm_umap_wrote():
    """What dev.py setup does, then what the app's embedding job does in its own process: no compiling."""
    py = [sys.executable, "-c"]
    subprocess.run([*py, "from distill_core.analysis.embeddings import warm_umap; warm_umap()"], check=True)
    out = subprocess.run([*py, CACHE_STATS], check=True, capture_output=True, text=True).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    assert set(stats) == set(UMAP_KERNELS)
    assert all(hits >= 1 and misses == 0 for hits, misses in stats.values()), stats
