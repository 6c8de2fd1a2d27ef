"""Replayable, batched augmentation on the device: sample parameters, then apply them.

Every augmentation is split in two, as in kornia's `forward_parameters()` / `forward(params=...)`:
`sample_*` draws parameters from an explicit `torch.Generator`, `apply_*` turns images plus
parameters into views. The same parameters always give the same views, which is what lets the
relabel store keep parameters instead of images, and the student meet each view's own soft label.

Crop boxes are (x0, y0, x1, y1) in [0, 1] coordinates of the source image (a box may reach outside
[0, 1] for translations; outside pixels read as zero). A view is the box resampled bilinearly to the
output size, optionally mirrored, in one `grid_sample` call for the whole batch (differentiable in
the images, so synthesis can optimise pixels through it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def _area_aspect(n: int, scale: tuple[float, float], ratio: tuple[float, float], attempts: int,
                 generator: torch.Generator | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """`attempts` draws per sample [n, attempts] of torchvision's rule: area share ~ U(scale), log aspect ~ U(log ratio)."""
    area = _uniform(n * attempts, scale[0], scale[1], generator, device).view(n, attempts)
    log_r = _uniform(n * attempts, math.log(ratio[0]), math.log(ratio[1]), generator, device).view(n, attempts)
    return area, torch.exp(log_r)


def _first_fit(w: torch.Tensor, h: torch.Tensor, ok: torch.Tensor, full: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height [n] of each sample's first attempt that fits (`ok` [n, attempts]); `full` where none does."""
    any_ok = ok.any(1)
    first = torch.where(any_ok, ok.float().argmax(1), torch.zeros_like(any_ok, dtype=torch.long))
    fallback = torch.full_like(w[:, 0], full)
    return (torch.where(any_ok, w.gather(1, first[:, None]).squeeze(1), fallback),
            torch.where(any_ok, h.gather(1, first[:, None]).squeeze(1), fallback))


def sample_resized_crops(
    n: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    attempts: int = 10,
) -> torch.Tensor:
    """Random-resized-crop boxes [n, 4] (torchvision's rule: area ~ U(scale), log aspect ~ U(log ratio)).

    Each sample tries `attempts` draws and keeps the first that fits inside the image; a sample
    where none fits gets the whole image.
    """
    device = generator.device if generator is not None else torch.device(device)
    area, aspect = _area_aspect(n, scale, ratio, attempts, generator, device)
    w = torch.sqrt(area * aspect)
    h = torch.sqrt(area / aspect)
    w, h = _first_fit(w, h, (w <= 1.0) & (h <= 1.0), 1.0)
    x0 = torch.rand(n, generator=generator, device=device) * (1.0 - w)
    y0 = torch.rand(n, generator=generator, device=device) * (1.0 - h)
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)


def sample_pixel_crops(
    n: int,
    size: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    attempts: int = 10,
) -> torch.Tensor:
    """Random-resized-crop boxes [n, 4] on whole pixels of a `size` x `size` image, as torchvision's
    `RandomResizedCrop.get_params`: w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect)) in pixels,
    the first of `attempts` draws with 0 < w, h <= size, its corner uniform over the whole-pixel positions;
    a sample where none fits gets the whole image (torchvision's fallback for a square image).
    Box coordinates are pixel counts / size, so `apply_pixel_crops` recovers the pixels exactly."""
    device = generator.device if generator is not None else torch.device(device)
    area, aspect = _area_aspect(n, scale, ratio, attempts, generator, device)
    area = area * size * size
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    w, h = _first_fit(w, h, (w > 0) & (w <= size) & (h > 0) & (h <= size), float(size))
    x0 = torch.floor(torch.rand(n, generator=generator, device=device) * (size - w + 1))
    y0 = torch.floor(torch.rand(n, generator=generator, device=device) * (size - h + 1))
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1) / size


def apply_pixel_crops(
    images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor | None = None, out_size: int | None = None
) -> torch.Tensor:
    """Views [N, C, S, S] of images [N, C, H, W] as torchvision's `resized_crop` with antialias: slice each
    whole-pixel box (from `sample_pixel_crops`), resize it bilinearly with antialiasing to S (default H), mirror
    where flips. Views that share a box are resized in one call; differentiable in the images."""
    n, _, h, w = images.shape
    out_size = out_size or h
    px = torch.round(boxes.detach().cpu().double() * torch.tensor([w, h, w, h], dtype=torch.float64)).long()
    unique, which = torch.unique(px, dim=0, return_inverse=True)
    parts, order = [], []
    for k, (x0, y0, x1, y1) in enumerate(unique.tolist()):
        idx = torch.nonzero(which == k).flatten()
        crop = images[idx.to(images.device), :, y0:y1, x0:x1]
        parts.append(F.interpolate(crop, size=(out_size, out_size), mode="bilinear", antialias=True,
                                   align_corners=False))
        order.append(idx)
    views = torch.cat(parts)[torch.argsort(torch.cat(order)).to(images.device)]
    if flips is not None:
        views = torch.where(flips.to(images.device)[:, None, None, None], views.flip(-1), views)
    return views


CROP_MODES = ("continuous", "pixel")


def sample_crops_by_mode(mode: str, n: int, size: int, scale: tuple[float, float],
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop boxes [n, 4] of `mode`: continuous (`sample_resized_crops`) or pixel (`sample_pixel_crops`)."""
    if mode == "pixel":
        return sample_pixel_crops(n, size, scale, generator=generator)
    if mode == "continuous":
        return sample_resized_crops(n, scale, generator=generator)
    raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")


def apply_crops_by_mode(mode: str, images: torch.Tensor, boxes: torch.Tensor,
                        flips: torch.Tensor | None = None) -> torch.Tensor:
    """Views of `mode`: continuous (`apply_crops`, bilinear grid_sample) or pixel (`apply_pixel_crops`)."""
    if mode == "pixel":
        return apply_pixel_crops(images, boxes, flips)
    if mode == "continuous":
        return apply_crops(images, boxes, flips)
    raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")


def sample_translations(
    n: int, max_shift: int, size: int, generator: torch.Generator | None = None, device="cpu"
) -> torch.Tensor:
    """Boxes [n, 4] shifting the image by whole pixels in [-max_shift, max_shift] (zero padding)."""
    device = generator.device if generator is not None else torch.device(device)
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator, device=device).float() / size
    return torch.cat([shift, shift + 1.0], dim=1)


def sample_flips(n: int, p: float = 0.5, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """Bool [n]: mirror the view horizontally."""
    device = generator.device if generator is not None else torch.device(device)
    return torch.rand(n, generator=generator, device=device) < p


def identity_boxes(n: int, device="cpu") -> torch.Tensor:
    return torch.tensor([0.0, 0.0, 1.0, 1.0], device=device).expand(n, 4).contiguous()


def apply_crops(
    images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor | None = None, out_size: int | None = None
) -> torch.Tensor:
    """Views [N, C, S, S] of images [N, C, H, W]: crop each box, resize to S (default H), mirror where flips."""
    n, c, h, _ = images.shape
    out_size = out_size or h
    boxes = boxes.to(images.device, torch.float32)
    sx = boxes[:, 2] - boxes[:, 0]
    sy = boxes[:, 3] - boxes[:, 1]
    if flips is not None:
        sx = torch.where(flips.to(images.device), -sx, sx)
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=torch.float32)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = boxes[:, 0] + boxes[:, 2] - 1.0
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = boxes[:, 1] + boxes[:, 3] - 1.0
    grid = F.affine_grid(theta.to(images.dtype), [n, c, out_size, out_size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------------------------------
# batch-level mixing: CutMix (Yun et al. 2019) and Mixup (Zhang et al. 2018)

MIX_KINDS = ("none", "cutmix", "mixup")


@dataclass(frozen=True)
class MixParams:
    """One batch's mixing: partner permutation [B], lambda (share of the original), CutMix box (pixels)."""

    kind: str
    perm: torch.Tensor  # int64 [B]; view i is mixed with view perm[i]
    lam: float  # CutMix: 1 - box area / image area (the exact share kept); Mixup: blend weight
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in output pixels; (0, 0, 0, 0) when unused


def sample_mix(
    kind: str, batch: int, size: int, alpha: float = 1.0, generator: torch.Generator | None = None, device="cpu"
) -> MixParams:
    """Draw one batch's CutMix/Mixup parameters (lambda ~ Beta(alpha, alpha))."""
    if kind not in MIX_KINDS:
        raise ValueError(f"mix kind must be one of {MIX_KINDS}, got {kind!r}")
    device = generator.device if generator is not None else torch.device(device)
    if kind == "none":
        return MixParams("none", torch.arange(batch, device=device), 1.0, (0, 0, 0, 0))
    perm = torch.randperm(batch, generator=generator, device=device)
    lam = _beta(alpha, generator, device)
    if kind == "mixup":
        return MixParams("mixup", perm, lam, (0, 0, 0, 0))
    centre = torch.rand(2, generator=generator, device=device).cpu()
    cut = int(round(size * math.sqrt(1.0 - lam)))
    cx, cy = int(centre[0] * size), int(centre[1] * size)
    x0, x1 = max(cx - cut // 2, 0), min(cx + cut // 2, size)
    y0, y1 = max(cy - cut // 2, 0), min(cy + cut // 2, size)
    lam = 1.0 - (x1 - x0) * (y1 - y0) / float(size * size)
    return MixParams("cutmix", perm, lam, (x0, y0, x1, y1))


def _beta(alpha: float, generator: torch.Generator | None, device) -> float:
    """One Beta(alpha, alpha) draw determined by `generator` (alpha = 1 is a plain uniform)."""
    if alpha == 1.0:
        return float(torch.rand(1, generator=generator, device=device))
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return float(torch.distributions.Beta(float(alpha), float(alpha)).sample())


def apply_mix(views: torch.Tensor, mix: MixParams) -> torch.Tensor:
    """Mix a batch of views [B, C, S, S] with its partner views according to `mix`."""
    if mix.kind == "none":
        return views
    perm = mix.perm.to(views.device)
    if mix.kind == "mixup":
        return mix.lam * views + (1.0 - mix.lam) * views[perm]
    x0, y0, x1, y1 = mix.box
    out = views.clone()
    out[:, :, y0:y1, x0:x1] = views[perm][:, :, y0:y1, x0:x1]
    return out


def apply_views(
    images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor | None, mix: MixParams, out_size: int | None = None
) -> torch.Tensor:
    """One batch of views [B, C, S, S]: crop + flip each image [B, C, H, W], then mix the batch.

    This is the whole FKD view: relabeling calls it with fresh parameters, the student replays it
    with stored ones, and both get the same pixels.
    """
    return apply_mix(apply_crops(images, boxes, flips, out_size), mix)
