"""Image tensors to PNG grids for display (nearest-neighbour upscaling keeps 8x8 digits crisp)."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from distill_core.imageset import tile_images

MIN_TILE = 56  # pixels: small images are upscaled to at least this side


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
    return tile_images(torch.cat(rows) if rows else images[:0], per_class, min_tile=min_tile)


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
