import pytest
import torch

from distill_core.analysis.features import (
    cached_features,
    capture_output,
    extract_features,
    feature_key,
    list_layers,
    load_feature_model,
    wrap_model,
)


@pytest.fixture(scope="module")
def fm(digits_teacher_dir):
    return load_feature_model(digits_teacher_dir)


def test_penultimate_features_match_model_features(fm, digits):
    x = digits.train.float_images()[:37]
    feats = extract_features(fm, x, batch_size=10)  # several batches, ragged last one
    with torch.no_grad():
        want = fm.model.features(x)
    assert feats.shape == want.shape and torch.allclose(feats, want, atol=1e-5)


def test_named_layer_is_pooled_and_hook_removed(fm, digits):
    x = digits.train.float_images()[:8]
    layer = next(n for n in list_layers(fm.model) if n.endswith("body.1"))  # first BatchNorm
    before = sum(len(m._forward_hooks) for m in fm.model.modules())
    avg = extract_features(fm, x, layer=layer, pool="avg")
    flat = extract_features(fm, x, layer=layer, pool="flatten")
    assert avg.shape == (8, 32) and flat.shape[0] == 8 and flat.shape[1] == 32 * 8 * 8
    assert torch.allclose(avg, flat.view(8, 32, 64).mean(2), atol=1e-5)
    assert sum(len(m._forward_hooks) for m in fm.model.modules()) == before


def test_hook_removed_when_forward_raises(fm):
    with pytest.raises(RuntimeError):
        with capture_output(fm.model, "body.0"):
            fm.model(torch.zeros(2, 3, 8, 8))  # wrong channel count
    assert all(len(m._forward_hooks) == 0 for m in fm.model.modules())


def test_unknown_layer_lists_valid_ones(fm):
    with pytest.raises(ValueError, match="valid layers"):
        extract_features(fm, torch.zeros(1, 1, 8, 8), layer="nope")


def test_cache_hits_and_key_depends_on_layer(fm, digits, tmp_path):
    x = digits.train.float_images()[:12]
    a = cached_features(fm, x, tmp_path)
    files = list(tmp_path.glob("features-*.pt"))
    assert len(files) == 1
    # a cached result is returned without running the model: poison the model to prove it
    other = wrap_model(fm.spec.build().eval(), fm.spec)
    other.key = fm.key
    assert torch.equal(cached_features(other, x, tmp_path), a)
    cached_features(fm, x, tmp_path, layer="body.1")
    assert len(list(tmp_path.glob("features-*.pt"))) == 2
    assert feature_key("s", fm.key, "", "avg") != feature_key("s", fm.key, "body.1", "avg")


def test_corrupt_cache_is_recomputed(fm, digits, tmp_path):
    x = digits.train.float_images()[:5]
    a = cached_features(fm, x, tmp_path)
    path = next(tmp_path.glob("features-*.pt"))
    path.write_bytes(b"not a tensor file")
    assert torch.allclose(cached_features(fm, x, tmp_path), a)
