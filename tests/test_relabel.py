"""Label store: replay reproduces the stored logits, bytes add up, bad input is refused."""
import math

import pytest
import torch

from distill_core.data import DatasetInfo
from distill_core.imageset import ImageSetArtifact, load_image_set
from distill_core.labels.realimages import RealImagesConfig, random_real_images, run_realimages
from distill_core.labels.relabel import (
    RelabelConfig,
    label_bytes,
    load_checked_teacher,
    load_store,
    paper_label_bytes,
    replay_batch,
    run_relabel,
    storage_estimate,
)


@pytest.fixture(scope="module")
def labeled(tmp_path_factory, digits_teacher_dir):
    root = tmp_path_factory.mktemp("relabel")
    run_realimages(RealImagesConfig(dataset="digits", ipc=5, seed=0), root / "rr")
    metrics = run_relabel(RelabelConfig(images=str(root / "rr"), teacher=str(digits_teacher_dir), epochs=3,
                                        batch_size=16, crop_scale=(0.25, 1.0), device="cpu"), root / "labels")
    art = load_image_set(root / "rr")
    return root, art, load_store(root / "labels", art), metrics


def test_random_real_picks_ipc_real_images_per_class(digits):
    art = random_real_images(RealImagesConfig(ipc=4, seed=1), digits)
    assert torch.equal(torch.bincount(art.labels), torch.full((10,), 4))
    idx = torch.tensor(art.extra["real_indices"])
    assert torch.equal(digits.train.labels[idx], art.labels)
    assert torch.allclose(art.images, digits.train.images[idx].float() / 255)
    with pytest.raises(ValueError, match="ipc"):
        random_real_images(RealImagesConfig(ipc=10_000), digits)


def test_replayed_views_give_the_stored_logits(labeled, digits_teacher):
    _, art, store, _ = labeled
    teacher, _ = digits_teacher
    for b in (0, store.num_batches // 2, store.num_batches - 1):
        views, stored = replay_batch(store, art.images, b)
        with torch.no_grad():
            fresh = teacher(views)
        assert torch.allclose(fresh, stored, atol=2e-2, rtol=2e-3)


def test_store_layout_and_bytes(labeled):
    root, art, store, metrics = labeled
    n, nb = len(art.labels), math.ceil(len(art.labels) / 16)
    assert store.num_views == n * 3 and store.num_batches == 3 * nb
    assert torch.equal(torch.bincount(store.image_index.long(), minlength=n), torch.full((n,), 3))
    expected = label_bytes(n * 3, 3 * nb, 10, 2)
    assert store.nbytes() == expected == metrics["bytes_computed"] == metrics["bytes_formula"]
    assert expected <= metrics["bytes_on_disk"] < expected + 64_000


def test_paper_storage_figures():
    gib = 2**30
    assert abs(paper_label_bytes(10_000, 300, 1000) / gib - 5.67) < 0.02  # ImageNet-1K IPC10
    assert abs(paper_label_bytes(200_000, 300, 1000) / gib - 113) < 0.5  # IPC200
    est = storage_estimate(10_000, 1000, 300, 128, ratio=0.975)
    assert est["batches_per_epoch"] == 79 and est["kept_batches"] == math.floor(0.025 * 300 * 79)
    assert abs(est["bytes"] / gib - 0.14) < 0.01  # the paper's 40x figure
    with pytest.raises(ValueError):
        storage_estimate(100, 10, 3, 10, ratio=1.0)


def test_topk_and_precision_reduce_bytes(labeled):
    _, _, store, _ = labeled
    top = store.reduced(topk=3)
    assert top.nbytes() == label_bytes(store.num_views, store.num_batches, 10, 2, topk=3) < store.nbytes()
    dense = store.dense_logits(slice(0, 5))
    assert torch.equal(top.dense_logits(slice(0, 5)).topk(3).values, dense.topk(3).values.half().float())
    assert store.reduced(value_dtype="fp32").nbytes() == label_bytes(store.num_views, store.num_batches, 10, 4)


def test_store_for_other_images_is_refused(labeled):
    root, art, _, _ = labeled
    other = ImageSetArtifact(art.images.flip(0), art.labels, art.info, "random_real")
    with pytest.raises(ValueError, match="different image set"):
        load_store(root / "labels", other)


def test_teacher_with_other_class_count_is_refused(digits_teacher_dir, digits):
    info = DatasetInfo(**{**digits.info.to_dict(), "num_classes": 5, "class_names": tuple("abcde")})
    with pytest.raises(ValueError, match="classes"):
        load_checked_teacher(digits_teacher_dir, None, info, torch.device("cpu"))
