import base64
import io

import pytest
import torch
from PIL import Image

from distill_core.analysis.embeddings import EmbedSource, allocate, embed, thumbnail_uri


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
