"""Replay tests for augment.py: parameters in, the same views out."""
import torch

from distill_core import augment


def _images(n=6, c=1, s=8, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed))


def test_identity_box_is_the_image_and_flip_mirrors_it():
    x = _images()
    boxes = augment.identity_boxes(len(x))
    assert torch.allclose(augment.apply_crops(x, boxes), x, atol=1e-5)
    flips = torch.ones(len(x), dtype=torch.bool)
    assert torch.allclose(augment.apply_crops(x, boxes, flips), x.flip(-1), atol=1e-5)


def test_same_parameters_replay_the_same_views():
    x = _images()
    g = torch.Generator().manual_seed(3)
    boxes = augment.sample_resized_crops(len(x), (0.25, 1.0), generator=g)
    flips = augment.sample_flips(len(x), 0.5, g)
    mix = augment.sample_mix("cutmix", len(x), 8, 1.0, g)
    first = augment.apply_views(x, boxes, flips, mix)
    again = augment.apply_views(x.clone(), boxes.clone(), flips.clone(), mix)
    assert torch.equal(first, again)
    other = augment.sample_resized_crops(len(x), (0.25, 1.0), generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(augment.apply_crops(x, other), augment.apply_crops(x, boxes))


def test_sampling_is_determined_by_the_generator():
    a = augment.sample_mix("cutmix", 8, 16, 1.0, torch.Generator().manual_seed(1))
    b = augment.sample_mix("cutmix", 8, 16, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(a.perm, b.perm) and a.lam == b.lam and a.box == b.box
    ba = augment.sample_resized_crops(5, generator=torch.Generator().manual_seed(2))
    bb = augment.sample_resized_crops(5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(ba, bb)
    assert (ba[:, 2:] <= 1.0 + 1e-6).all() and (ba[:, :2] >= 0).all()


def test_cutmix_pastes_the_partner_box_and_lambda_is_the_kept_share():
    x = _images(n=4, s=16)
    mix = augment.sample_mix("cutmix", 4, 16, 1.0, torch.Generator().manual_seed(5))
    out = augment.apply_mix(x, mix)
    x0, y0, x1, y1 = mix.box
    assert torch.equal(out[:, :, y0:y1, x0:x1], x[mix.perm][:, :, y0:y1, x0:x1])
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[y0:y1, x0:x1] = True
    assert torch.equal(out[:, :, ~inside], x[:, :, ~inside])
    assert abs(mix.lam - (1 - inside.float().mean().item())) < 1e-6


def test_mixup_blends_with_lambda():
    x = _images(n=4)
    mix = augment.sample_mix("mixup", 4, 8, 0.5, torch.Generator().manual_seed(6))
    assert torch.allclose(augment.apply_mix(x, mix), mix.lam * x + (1 - mix.lam) * x[mix.perm])
    none = augment.sample_mix("none", 4, 8)
    assert torch.equal(augment.apply_mix(x, none), x)
