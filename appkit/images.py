"""Image tensors to PNG grids for display (nearest-neighbour upscaling keeps 8x8 digits crisp)."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

MIN_TILE = 56  # pixels: small images are upscaled to at least this side


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [0, 1] or uint8 -> uint8 numpy [N, H, W, C]."""
    x = images.detach().cpu()
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid(images: torch.Tensor, ncol: int, pad: int = 2, min_tile: int = MIN_TILE, background: int = 255) -> Image.Image:
    """Tile [N, C, H, W] images row-major into a PIL image with `ncol` columns."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape if len(arr) else (0, 1, 1, 1)
    scale = max(1, -(-min_tile // max(h, w)))
    ncol = max(1, min(ncol, max(n, 1)))
    nrow = max(1, -(-n // ncol))
    th, tw = h * scale, w * scale
    canvas = np.full((nrow * (th + pad) + pad, ncol * (tw + pad) + pad, c), background, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, ncol)
        tile = arr[i].repeat(scale, axis=0).repeat(scale, axis=1)
        canvas[pad + r * (th + pad): pad + r * (th + pad) + th, pad + q * (tw + pad): pad + q * (tw + pad) + tw] = tile
    return Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)


def class_grid(images: torch.Tensor, labels: torch.Tensor, per_class: int, classes: list[int] | None = None,
               min_tile: int = MIN_TILE) -> Image.Image:
    """One row per class, the first `per_class` images of each (blank where a class has fewer)."""
    labels = labels.cpu()
    classes = classes if classes is not None else sorted(set(labels.tolist()))
    rows = []
    blank = torch.ones_like(images[:1]) if images.dtype != torch.uint8 else torch.full_like(images[:1], 255)
    for c in classes:
        sel = images[labels == c][:per_class]
        fill = [blank] * (per_class - len(sel))
        rows.append(torch.cat([sel, *fill]) if fill else sel)
    return grid(torch.cat(rows) if rows else images[:0], per_class, min_tile=min_tile)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def from_data_uri(uri: str) -> torch.Tensor:
    """A PNG data URI (as in embedding rows' `thumb`) -> uint8 [C, H, W]."""
    import base64

    raw = base64.b64decode(uri.split(",", 1)[1])
    arr = np.asarray(Image.open(io.BytesIO(raw)))
    arr = arr[:, :, None] if arr.ndim == 2 else arr[:, :, :3]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)
