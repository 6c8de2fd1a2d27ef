import math

import pytest
import torch

from distill_core.analysis.diversity import diversity, frechet_distance, knn_radii, nearest, nearest_real, prdc


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_frechet_of_a_set_with_itself_is_zero():
    x = torch.randn(200, 16, generator=_gen(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_with_fewer_samples_than_dimensions_is_zero_against_itself():
    x = torch.randn(10, 64, generator=_gen(1))  # rank-deficient covariance
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_closed_form_for_shifted_and_scaled_gaussians():
    # exact sample statistics: a shift by m adds |m|^2; scaling by s gives d*(1 - s)^2 when S = I
    x = torch.randn(400, 3, generator=_gen(2)).double()
    x = (x - x.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T))).T  # mean 0, cov I
    shift = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)
    assert frechet_distance(x, x + shift) == pytest.approx(25.0, rel=1e-6)
    assert frechet_distance(x, 2 * x) == pytest.approx(3 * (1 - 2) ** 2, rel=1e-6)


def test_frechet_needs_two_samples():
    with pytest.raises(ValueError, match=">= 2 samples"):
        frechet_distance(torch.randn(1, 4), torch.randn(5, 4))


def test_prdc_of_a_set_against_itself():
    x = torch.randn(300, 8, generator=_gen(3))
    r = prdc(x, x, k=5)
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["coverage"] == 1.0
    assert r["density"] >= 1.0  # every point is inside its own ball and at least k others


def test_prdc_far_away_fake_scores_zero():
    real = torch.randn(200, 4, generator=_gen(4))
    r = prdc(real, real[:50] + 100.0, k=3)
    assert r["precision"] == 0.0 and r["density"] == 0.0 and r["coverage"] == 0.0 and r["recall"] == 0.0


def test_prdc_collapsed_fake_has_precision_but_no_coverage():
    real = torch.randn(500, 2, generator=_gen(5))
    fake = torch.zeros(50, 2)  # all at the mode
    r = prdc(real, fake, k=5)
    assert r["precision"] == 1.0 and r["coverage"] < 0.1


def test_prdc_recall_nan_when_too_few_fakes():
    r = prdc(torch.randn(50, 3, generator=_gen(6)), torch.randn(3, 3), k=5)
    assert math.isnan(r["recall"]) and not math.isnan(r["precision"]) and "recall" in r["note"]


def test_knn_radii_by_hand():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == pytest.approx([1.0, 1.0, 2.0, 4.0])
    assert knn_radii(x, 2).tolist() == pytest.approx([3.0, 2.0, 3.0, 6.0])


def test_nearest_real_finds_copies_and_not_noise():
    real = torch.rand(100, 1, 8, 8, generator=_gen(7))
    copies = real[[4, 17, 99]] + 1e-4
    fresh = torch.rand(3, 1, 8, 8, generator=_gen(8))
    res = nearest_real(torch.cat([copies, fresh]), real, copy_ratio=0.1)
    assert res.index[:3].tolist() == [4, 17, 99]
    assert res.copy.tolist() == [True, True, True, False, False, False]
    idx, dist = nearest(fresh, real)
    assert torch.equal(idx, res.index[3:])


def test_diversity_per_class_and_few_image_note():
    real = torch.randn(100, 4, generator=_gen(9))
    real_labels = torch.arange(100) % 2
    fake, fake_labels = real[:11], real_labels[:11].clone()
    fake_labels[0] = 2  # a class with one synthetic image and no real ones
    res = diversity(fake, fake_labels, real, real_labels, k=3)
    assert [r["class"] for r in res.per_class] == [0, 1, 2]
    assert math.isnan(res.per_class[2]["fd"]) and any("class 2" in n for n in res.notes)
    assert res.per_class[0]["precision"] == 1.0  # real images are their own neighbours
    assert not math.isnan(res.overall["fd"])
