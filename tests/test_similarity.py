import math

import pytest
import torch

from distill_core.analysis.similarity import class_similarity, cosine_matrix, mean_off_diagonal


def test_identical_images_have_similarity_one():
    img = torch.rand(1, 1, 8, 8)
    res = class_similarity(img.repeat(5, 1, 1, 1), torch.zeros(5, dtype=torch.long))
    assert res.within[0] == pytest.approx(1.0)
    assert torch.allclose(res.matrices[0], torch.ones(5, 5), atol=1e-6)


def test_orthogonal_vectors_have_similarity_zero_and_scale_is_ignored():
    x = torch.eye(4) * torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert mean_off_diagonal(cosine_matrix(x)) == pytest.approx(0.0)
    assert cosine_matrix(x).diagonal().tolist() == pytest.approx([1.0] * 4)


def test_between_class_and_summary():
    # class 0: two copies of e1; class 1: two copies of -e1 -> within 1, between -1
    e1 = torch.tensor([1.0, 0.0])
    x = torch.stack([e1, e1, -e1, -e1])
    res = class_similarity(x, torch.tensor([0, 0, 1, 1]))
    assert res.between[0, 1] == pytest.approx(-1.0) and res.between[1, 0] == pytest.approx(-1.0)
    s = res.summary()
    assert s["within_mean"] == pytest.approx(1.0) and s["within_std"] == pytest.approx(0.0)
    assert s["between_mean"] == pytest.approx(-1.0)


def test_mean_off_diagonal_by_hand():
    s = torch.tensor([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert mean_off_diagonal(s) == pytest.approx((0.2 + 0.4 + 0.6) / 3)


def test_single_image_class_is_nan_with_note():
    res = class_similarity(torch.rand(3, 4), torch.tensor([0, 0, 1]))
    assert math.isnan(res.within[1]) and not math.isnan(res.within[0])
    assert any("fewer than 2" in n for n in res.notes)
    assert res.summary()["classes_measured"] == 1


def test_label_count_mismatch_raises():
    with pytest.raises(ValueError, match="one label per image"):
        class_similarity(torch.rand(3, 4), torch.tensor([0, 1]))
