import gzip
import struct

import numpy as np
import pytest
import torch

from distill_core import data
from distill_core.data import find_fashion_mnist, list_datasets, load_dataset, read_idx, sample_per_class


def test_registry_lists_every_dataset():
    assert {"digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder"} <= set(list_datasets())


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*digits.*fashion-mnist"):
        load_dataset("imagenet")


def test_digits_split_is_stratified_deterministic_and_disjoint(digits):
    info = digits.info
    assert (info.num_classes, info.channels, info.image_size, info.flip) == (10, 1, 8, False)
    assert len(digits.train) + len(digits.test) == 1797
    counts = torch.bincount(digits.test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each class (~36)
    data._CACHE.clear()
    again = load_dataset("digits")
    assert torch.equal(again.train.images, digits.train.images) and torch.equal(again.test.labels, digits.test.labels)
    train_rows = {bytes(x.numpy()) for x in digits.train.images}
    overlap = sum(bytes(x.numpy()) in train_rows for x in digits.test.images)
    assert overlap < 5  # the sklearn digits hold a handful of exact duplicates, not a leaked split


def test_digits_mean_std_describe_the_training_images(digits):
    x = digits.train.float_images()
    assert abs(x.mean().item() - digits.info.mean[0]) < 1e-3
    assert abs(x.std().item() - digits.info.std[0]) < 1e-3


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loader_reads_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, gz)
    ds = load_dataset("fashion-mnist", root=tmp_path)
    assert ds.train.images.shape == (20, 1, 28, 28) and ds.test.images.shape == (10, 1, 28, 28)
    assert ds.info.class_names[9] == "Ankle boot"


def test_missing_fashion_mnist_says_which_paths_were_tried(tmp_path, monkeypatch):
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "env-dir"))
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM", tmp_path / "system-dir")
    with pytest.raises(ValueError, match="Tried: .*env-dir.*system-dir"):
        find_fashion_mnist(None)


def test_corrupt_idx_file_is_refused(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 5, 28, 28) + b"\x00" * 100)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(bad)
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(bad)


def test_real_fashion_mnist_when_installed():
    try:
        ds = load_dataset("fashion-mnist")
    except ValueError as exc:
        pytest.skip(f"Fashion-MNIST not installed here: {exc}")
    assert (len(ds.train), len(ds.test), ds.info.image_size) == (60000, 10000, 28)
    assert torch.bincount(ds.train.labels).tolist() == [6000] * 10


def test_offline_torchvision_dataset_error_says_where_to_put_files(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Dataset not found. You can use download=True to download it")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(ValueError, match=f"place torchvision's .* files under {tmp_path}"):
        load_dataset("cifar10", root=tmp_path)


def test_imagefolder_needs_train_and_val(tmp_path):
    with pytest.raises(ValueError, match="must contain train/ and val/"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_loads_class_subfolders(tmp_path, monkeypatch):
    from PIL import Image

    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (40, 30), (i * 40, 10, 200)).save(tmp_path / split / c / f"{i}.png")
    monkeypatch.setenv(data.IMAGEFOLDER_SIZE_ENV, "16")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.train.images.shape == (6, 3, 16, 16) and ds.info.class_names == ("cat", "dog")


def test_sample_per_class_refuses_ipc_larger_than_class(digits):
    g = torch.Generator().manual_seed(0)
    picked = sample_per_class(digits.train, 5, g)
    assert torch.bincount(picked.labels).tolist() == [5] * 10
    with pytest.raises(ValueError, match="IPC 1000 is larger than class 0"):
        sample_per_class(digits.train, 1000, g)
