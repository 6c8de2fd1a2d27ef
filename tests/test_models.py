import pytest
import torch

from distill_core.data import DatasetInfo
from distill_core.models import ModelSpec, bn_layers, build_model, list_models, load_checkpoint, save_checkpoint

INFO = {
    8: DatasetInfo("t8", 10, 1, 8, (0.3,), (0.4,), tuple("abcdefghij"), flip=False),
    32: DatasetInfo("t32", 5, 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), tuple("abcde")),
}


def test_registry_has_the_architectures_the_papers_use():
    assert {"convnet", "lenet", "resnet18", "tv_resnet18", "tv_resnet50"} <= set(list_models())


@pytest.mark.parametrize("name,size", [("convnet", 8), ("convnet", 32), ("lenet", 8), ("lenet", 32), ("resnet18", 32)])
def test_models_give_logits_and_features_and_have_batchnorm(name, size):
    info = INFO[size]
    model = build_model(name, info).eval()
    x = torch.rand(3, info.channels, size, size)
    logits, feats = model(x), model.features(x)
    assert logits.shape == (3, info.num_classes) and feats.ndim == 2 and feats.shape[0] == 3
    assert torch.allclose(model.head(feats), logits, atol=1e-5)
    assert len(bn_layers(model)) >= 2


def test_resnet18_small_stem_keeps_resolution():
    model = build_model("resnet18", INFO[32])
    conv1 = model.body.net.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert isinstance(model.body.net.maxpool, torch.nn.Identity)


def test_model_normalises_its_input():
    model = build_model("convnet", INFO[8])
    x = torch.full((1, 1, 8, 8), 0.3)
    assert torch.allclose(model.normalize(x), torch.zeros_like(x))


def test_unknown_model_and_bad_arguments():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*convnet"):
        build_model("vgg", INFO[8])
    with pytest.raises(ValueError, match="bad arguments"):
        build_model("convnet", INFO[8], widht=3)
    with pytest.raises(ValueError, match="below 1px"):
        build_model("convnet", INFO[8], depth=5)


def test_checkpoint_round_trip_rebuilds_the_same_function(tmp_path):
    spec = ModelSpec("convnet", INFO[8], {"width": 16, "depth": 2})
    model = spec.build().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, spec, epoch=3, test_acc=0.5)
    loaded, loaded_spec, raw = load_checkpoint(path)
    x = torch.rand(4, 1, 8, 8)
    assert loaded_spec == spec and raw["epoch"] == 3
    assert torch.allclose(loaded(x), model(x))


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt or not a distill_core artifact"):
        load_checkpoint(path)
    torch.save({"schema": "other"}, path)
    with pytest.raises(ValueError, match="not a distill_core model checkpoint"):
        load_checkpoint(path)
