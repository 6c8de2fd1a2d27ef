"""Pruning strategies: kept counts, pools, easy vs hard, compression and bad ratios."""
import math

import pytest
import torch

from distill_core.labels.prune import kept_count, list_strategies, prune, ratio_from_factor, score_confidence
from distill_core.labels.relabel import RelabelConfig, relabel
from distill_core.models import build_model


@pytest.fixture(scope="module")
def store_and_labels(digits):
    torch.manual_seed(0)
    images = digits.train.float_images()[:60]
    labels = digits.train.labels[:60]
    teacher = build_model("convnet", digits.info, width=8, depth=2).eval()
    cfg = RelabelConfig(epochs=5, batch_size=16, crop_scale=(0.25, 1.0))
    store = relabel(teacher, images, cfg, torch.Generator().manual_seed(0), "x", flip=False)
    return store, labels


def test_random_keeps_floor_of_batches_and_draws_with_replacement(store_and_labels):
    store, labels = store_and_labels
    assert store.num_batches == 5 * math.ceil(60 / 16)
    for factor in (2, 5, 10):
        r = ratio_from_factor(factor)
        small, plan = prune(store, "random", r, torch.Generator().manual_seed(1), labels)
        assert len(plan.kept) == math.floor((1 - r) * store.num_batches + 1e-9) == small.num_batches
        assert plan.with_replacement and len(set(plan.kept.tolist())) == len(plan.kept)
        assert plan.compression == pytest.approx(store.nbytes() / small.nbytes())
        assert plan.compression > 0.8 * factor


def test_full_store_at_ratio_zero_is_replayed_in_order(store_and_labels):
    store, labels = store_and_labels
    small, plan = prune(store, "confidence_easy", 0.0, torch.Generator(), labels)
    assert not plan.with_replacement and plan.compression == 1.0 and small.num_batches == store.num_batches


def test_epoch_strategy_keeps_whole_label_epochs(store_and_labels):
    store, labels = store_and_labels
    small, plan = prune(store, "epoch", 0.6, torch.Generator(), labels)
    assert not plan.with_replacement
    assert sorted(set(small.batch_epoch.tolist())) == [0, 1]
    assert small.num_batches == 2 * store.batches_per_epoch


def test_easy_keeps_higher_scores_than_hard(store_and_labels):
    store, labels = store_and_labels
    scores = score_confidence(store, labels)
    _, easy = prune(store, "confidence_easy", 0.8, torch.Generator().manual_seed(0), labels)
    _, hard = prune(store, "confidence_hard", 0.8, torch.Generator().manual_seed(0), labels)
    assert scores[easy.kept].min() >= scores[hard.kept].max()
    for rule in ("margin", "correct", "cutmix"):
        assert f"{rule}_easy" in list_strategies() and f"{rule}_hard" in list_strategies()
        prune(store, f"{rule}_hard", 0.5, torch.Generator(), labels)


def test_storage_reductions_compose_with_pruning(store_and_labels):
    store, labels = store_and_labels
    _, plain = prune(store, "random", 0.5, torch.Generator().manual_seed(0), labels)
    _, top = prune(store, "random", 0.5, torch.Generator().manual_seed(0), labels, topk=2)
    _, wide = prune(store, "random", 0.5, torch.Generator().manual_seed(0), labels, value_dtype="fp32")
    assert top.compression > plain.compression > wide.compression


def test_bad_ratios_are_refused(store_and_labels):
    store, labels = store_and_labels
    for r in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            kept_count(store, r)
    with pytest.raises(ValueError, match="leaves no batch"):
        prune(store, "random", 0.999, torch.Generator(), labels)
    with pytest.raises(ValueError, match="unknown pruning strategy"):
        prune(store, "nope", 0.5, torch.Generator(), labels)


def test_first_keeps_the_first_batches_generated_and_draws_with_replacement(store_and_labels):
    store, labels = store_and_labels
    small, plan = prune(store, "first", 0.5, torch.Generator().manual_seed(0), labels)
    assert torch.equal(plan.kept, torch.arange(store.num_batches // 2)) and plan.with_replacement
    assert torch.equal(small.batch_epoch, store.batch_epoch[: store.num_batches // 2])
