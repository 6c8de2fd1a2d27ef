"""Replay tests for augment.py: parameters in, the same views out."""
import torch
import torchvision.transforms.functional as tvf

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


def test_pixel_crops_are_whole_pixels_inside_the_image_with_torchvisions_areas():
    g = torch.Generator().manual_seed(0)
    boxes = augment.sample_pixel_crops(2000, 28, (0.25, 1.0), generator=g)
    px = boxes * 28
    assert torch.equal(px, px.round()) and bool((px >= 0).all()) and bool((px <= 28).all())
    w, h = px[:, 2] - px[:, 0], px[:, 3] - px[:, 1]
    assert bool((w >= 1).all()) and bool((h >= 1).all())
    area = w * h / 28**2
    assert 0.2 < float(area.min()) and float(area.max()) <= 1.0  # rounding to pixels moves the 0.25 floor a little
    assert float((w / h).min()) > 0.7 and float((w / h).max()) < 1.45


def test_pixel_crop_views_equal_torchvisions_antialiased_resized_crop():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(6, 3, 28, 28, generator=g)
    boxes = augment.sample_pixel_crops(6, 28, (0.08, 1.0), generator=g)
    flips = torch.tensor([True, False, True, False, False, True])
    views = augment.apply_pixel_crops(images, boxes, flips)
    for i, (x0, y0, x1, y1) in enumerate((boxes * 28).round().long().tolist()):
        ref = tvf.resized_crop(images[i], y0, x0, y1 - y0, x1 - x0, [28, 28], antialias=True)
        ref = tvf.hflip(ref) if flips[i] else ref
        torch.testing.assert_close(views[i], ref, atol=1e-5, rtol=1e-5)


def test_pixel_crops_pass_gradients_to_the_images():
    images = torch.rand(4, 1, 8, 8, requires_grad=True)
    boxes = torch.tensor([[0, 0, 4, 4], [0, 0, 4, 4], [2, 1, 8, 7], [0, 0, 8, 8]], dtype=torch.float32) / 8
    augment.apply_pixel_crops(images, boxes).sum().backward()
    assert float(images.grad[0, :, 4:, :].abs().sum()) == 0.0 and float(images.grad[0, :, :4, :4].abs().sum()) > 0
    assert float(images.grad[3].abs().min()) > 0  # the whole-image box reaches every pixel
