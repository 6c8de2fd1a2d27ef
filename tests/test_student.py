"""Students: the KD loss, the label pools, training end to end, DD-Ranking scores."""

import pytest
import torch
import torch.nn.functional as F

from distill_core.device import make_generator
from distill_core.labels.prune import prune
from distill_core.labels.realimages import RealImagesConfig, random_real_images
from distill_core.labels.relabel import RelabelConfig, relabel
from distill_core.labels.student import StudentConfig, dd_ranking, kd_loss, soft_batches, train_student


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine run far faster on one thread than two."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_kd_loss_is_the_tempered_kl():
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    T = 4.0
    p, q = F.softmax(t / T, 1), F.softmax(s / T, 1)
    manual = (p * (p.log() - q.log())).sum(1).mean()
    assert kd_loss(s, t, T, False) == pytest.approx(float(manual), rel=1e-5)
    assert kd_loss(s, t, T, True) == pytest.approx(float(manual) * T**2, rel=1e-5)
    assert kd_loss(t, t, T, False) == pytest.approx(0.0, abs=1e-6)
    top = t.clone()
    top[:, 5:] = float("-inf")  # a top-k target: dropped classes carry no mass
    assert torch.isfinite(kd_loss(s, top, T, False))


def test_dd_ranking_from_fractions():
    r = dd_ranking(real_hard=0.9, syn_hard=0.3, syn_soft=0.7, random_soft=0.6)
    assert r["HLR"] == pytest.approx(0.6) and r["IOR"] == pytest.approx(0.1)
    # a = (IOR - HLR) / 2 = -0.25; e^-0.25 = 1 - 0.25 + 0.03125 - 0.002604 + 0.000163 - ... = 0.778801,
    # e^-1 = 0.367879, e = 2.718282: LRS = (0.778801 - 0.367879) / (2.718282 - 0.367879) = 0.410922 / 2.350403
    assert r["LRS"] == pytest.approx(0.174830, abs=1e-6)
    assert dd_ranking(1.0, 0.0, 0.0, 1.0)["LRS"] == pytest.approx(0.0, abs=1e-12)  # a = -1: the lower end
    assert dd_ranking(0.0, 1.0, 1.0, 0.0)["LRS"] == pytest.approx(1.0, abs=1e-12)  # a = +1: the upper end
    with pytest.raises(ValueError, match="fraction"):
        dd_ranking(90.0, 30.0, 70.0, 60.0)


@pytest.fixture(scope="module")
def soft_setup(digits, digits_teacher):
    teacher, _ = digits_teacher
    art = random_real_images(RealImagesConfig(ipc=5, seed=0), digits)
    cfg = RelabelConfig(epochs=20, batch_size=10, crop_scale=(0.25, 1.0))
    store = relabel(teacher, art.images, cfg, torch.Generator().manual_seed(0), art.checksum, flip=False)
    return art, store


def test_pools_draw_nb_batches(soft_setup):
    art, store = soft_setup
    small, plan = prune(store, "random", 0.9, torch.Generator().manual_seed(0), art.labels)
    batches = list(soft_batches(small, plan, art.images, 0, torch.Generator().manual_seed(0)))
    assert len(batches) == store.batches_per_epoch
    assert all(v.shape[0] == t.shape[0] == 10 for v, t in batches)
    full, order = prune(store, "random", 0.0, torch.Generator(), art.labels)
    first = torch.cat([t for _, t in soft_batches(full, order, art.images, store.epochs + 1, torch.Generator())])
    assert torch.equal(first, full.dense_logits(slice(store.batches_per_epoch * 10, store.batches_per_epoch * 20)))


def test_soft_student_learns_and_beats_chance(soft_setup, digits):
    art, store = soft_setup
    small, plan = prune(store, "random", 0.5, torch.Generator().manual_seed(0), art.labels)
    cfg = StudentConfig(model_args={"width": 16, "depth": 2}, temperature=4.0, lr=1e-2, eval_every=10, device="cpu")
    result = train_student(cfg, art, digits.test, torch.device("cpu"), make_generator(0), small, plan)
    assert [h["epoch"] for h in result.history] == [10, 20]
    assert result.accuracy > 0.3  # 10 classes: chance is 0.1
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_same_seed_same_student_whatever_ran_before(soft_setup, digits):
    art, store = soft_setup
    small, plan = prune(store, "random", 0.9, torch.Generator().manual_seed(0), art.labels)
    cfg = StudentConfig(model_args={"width": 8, "depth": 2}, epochs=2, device="cpu")
    runs = []
    for _ in range(2):
        torch.rand(100)  # disturb the process-wide RNG
        runs.append(train_student(cfg, art, digits.test, torch.device("cpu"), make_generator(0), small, plan))
    assert runs[0].history == runs[1].history
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        assert torch.equal(a, b)


def test_hard_label_student_and_batch_size_mismatch(soft_setup, digits):
    art, store = soft_setup
    cfg = StudentConfig(model_args={"width": 16, "depth": 2}, epochs=3, batch_size=25, device="cpu")
    result = train_student(cfg, art, digits.test, torch.device("cpu"), make_generator(0))
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and 0.0 <= result.accuracy <= 1.0
    small, plan = prune(store, "random", 0.0, torch.Generator(), art.labels)
    with pytest.raises(ValueError, match="does not match the label store"):
        train_student(cfg, art, digits.test, torch.device("cpu"), make_generator(0), small, plan)


def test_bad_student_config():
    with pytest.raises(ValueError, match="ratio"):
        StudentConfig(ratio=1.0)
    with pytest.raises(ValueError, match="strategy"):
        StudentConfig(strategy="nope")
