"""Image tensors to PNG grids for display (nearest-neighbour upscaling keeps 8x8 digits crisp)."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from distill_core.imageset import tile_images

MIN_TILE = 56  # pixels: small images are upscaled to at least this side


def class_grid(images: torch.Tensor, labels: torch.Tensor, per_class: int, classes: list[int] | None = None,
               min_tile: int = MIN_TILE, class_names: tuple[str, ...] | list[str] | None = None) -> Image.Image:
    """One row per class, the first `per_class` images of each (blank where a class has fewer); with
    `class_names` (indexed by class), each row starts with its class's name."""
    labels = labels.cpu()
    classes = classes if classes is not None else sorted(set(labels.tolist()))
    rows = []
    blank = torch.ones_like(images[:1]) if images.dtype != torch.uint8 else torch.full_like(images[:1], 255)
    for c in classes:
        sel = images[labels == c][:per_class]
        fill = [blank] * (per_class - len(sel))
        rows.append(torch.cat([sel, *fill]) if fill else sel)
    grid = tile_images(torch.cat(rows) if rows else images[:0], per_class, min_tile=min_tile)
    if not class_names or not classes:
        return grid
    names = [class_names[c] if c < len(class_names) else str(c) for c in classes]
    return label_rows(grid, names)


def label_rows(grid: Image.Image, names: list[str], pad: int = 2) -> Image.Image:
    """`grid` (equal rows, as tile_images makes them) with each row's name written to its left."""
    from PIL import ImageDraw, ImageFont

    row_h = (grid.height - pad) / max(1, len(names))
    size = int(min(max(12, row_h * 0.42), 28))
    font = ImageFont.load_default(size=size)
    width = max(int(font.getlength(n)) for n in names) + size
    out = Image.new("RGB", (grid.width + width, grid.height), "white")
    out.paste(grid.convert("RGB"), (width, 0))
    draw = ImageDraw.Draw(out)
    for i, name in enumerate(names):
        y = pad + i * row_h + row_h / 2
        draw.text((width - size // 2, y), name, fill="#111827", font=font, anchor="rm")
    return out


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
