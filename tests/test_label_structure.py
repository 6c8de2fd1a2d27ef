"""Label-structure transforms on small matrices worked out by hand."""
from __future__ import annotations

import pytest
import torch

from distill_core.labels.structure import apply_transform, list_transforms, parse_transform

P = torch.tensor([[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]])
Y = torch.tensor([1, 2])


def _t(name, arg=None, p=P, y=Y, seed=0):
    return apply_transform(name, p, y, arg, torch.Generator().manual_seed(seed))


def test_every_transform_is_registered_with_a_description():
    assert set(list_transforms()) == {"none", "swap", "topk", "shuffle_nontop", "uniform_nontop", "drop_class",
                                      "zero_class"}
    assert all(list_transforms().values())


def test_swap_k_th_largest_with_smallest():
    # row 0: largest 0.6 (class 1) <-> smallest 0.1 (class 0); row 1 (ties, stable order 2, 0, 1): 0.5 <-> class 1
    assert torch.allclose(_t("swap", 1).probs, torch.tensor([[0.6, 0.1, 0.3], [0.25, 0.5, 0.25]]))
    # second largest: row 0 0.3 (class 2) <-> 0.1; row 1 class 0 <-> class 1 (equal values)
    assert torch.allclose(_t("swap", 2).probs, torch.tensor([[0.3, 0.6, 0.1], [0.25, 0.25, 0.5]]))


def test_topk_keeps_k_entries_unnormalised_and_k0_is_the_hard_label():
    assert torch.allclose(_t("topk", 1).probs, torch.tensor([[0.0, 0.6, 0.0], [0.0, 0.0, 0.5]]))
    assert torch.allclose(_t("topk", 2).probs, torch.tensor([[0.0, 0.6, 0.3], [0.25, 0.0, 0.5]]))
    assert torch.equal(_t("topk", 0).probs, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.allclose(_t("topk", 3).probs, P)


def test_uniform_nontop_spreads_the_rest_evenly():
    assert torch.allclose(_t("uniform_nontop").probs, torch.tensor([[0.2, 0.6, 0.2], [0.25, 0.25, 0.5]]))


def test_shuffle_nontop_keeps_the_top_and_the_other_values_but_moves_them():
    p = torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]]).repeat(200, 1)
    out = _t("shuffle_nontop", p=p, y=torch.zeros(200, dtype=torch.long)).probs
    assert torch.all(out[:, 0] == 0.5)
    assert torch.allclose(out[:, 1:].sort(dim=1).values, p[:, 1:].sort(dim=1).values)
    unchanged = (out == p).all(dim=1).float().mean()
    assert unchanged < 0.2  # 1 / 4! = 4% of rows keep their order by chance


def test_drop_class_removes_its_images_and_keeps_its_mass_elsewhere():
    out = _t("drop_class", 1)
    assert out.keep.tolist() == [False, True]
    assert torch.allclose(out.probs, torch.tensor([[0.25, 0.25, 0.5]]))


def test_zero_class_keeps_every_image_and_zeroes_the_column():
    out = _t("zero_class", 2)
    assert out.keep.all()
    assert torch.allclose(out.probs, torch.tensor([[0.1, 0.6, 0.0], [0.25, 0.25, 0.0]]))


@pytest.mark.parametrize("name, arg, match", [
    ("topk", 4, r"k in 0\.\.3"), ("swap", 3, r"k in 1\.\.2"), ("swap", 0, r"k in 1\.\.2"),
    ("drop_class", 3, r"class in 0\.\.2"), ("zero_class", -1, r"class in 0\.\.2"), ("none", 2, "no argument"),
])
def test_out_of_range_arguments_say_the_valid_range(name, arg, match):
    with pytest.raises(ValueError, match=match):
        _t(name, arg)


def test_parse_transform_names_and_arguments():
    assert parse_transform("swap:3") == ("swap", 3)
    assert parse_transform("none") == ("none", 0)
    with pytest.raises(ValueError, match="unknown label transform"):
        parse_transform("flip:1")
    with pytest.raises(ValueError, match="integer"):
        parse_transform("topk:two")
