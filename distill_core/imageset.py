"""The image-set artifact: a distilled (or selected) set of images with labels and provenance.

Every stage that produces images (synthesis, random-real selection) writes `images.pt` through
`save_image_set`, and every stage that consumes images (relabel, students, analyses, the app)
reads it through `load_image_set`. Schema "distill_core.images/1":
  images     float32 [N, C, H, W] in [0, 1] (pixel space; models normalise internally)
  labels     int64 [N]
  data_info  DatasetInfo.to_dict() of the dataset the images stand for
  method     how they were made: "sre2l", "+C", "lpld", "random_real", ...
  checksum   sha256 of the images' bytes: label stores record it and refuse other image sets
  extra      plain metadata (teacher run, config summary, real indices for random_real, ...)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import DatasetInfo
from .runs import load_artifact, save_tensors

SCHEMA = "distill_core.images/1"
IMAGES_FILE = "images.pt"


@dataclass
class ImageSetArtifact:
    images: torch.Tensor  # float32 [N, C, H, W] in [0, 1]
    labels: torch.Tensor  # int64 [N]
    info: DatasetInfo
    method: str
    extra: dict = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        return images_checksum(self.images)

    @property
    def ipc(self) -> int:
        """Images per class (the largest count over classes present)."""
        return int(torch.bincount(self.labels).max()) if len(self.labels) else 0

    def class_images(self, c: int) -> torch.Tensor:
        return self.images[self.labels == c]


def images_checksum(images: torch.Tensor) -> str:
    """sha256 of the float32 image bytes (contiguous, on CPU)."""
    data = images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()


def save_image_set(path: Path, artifact: ImageSetArtifact) -> None:
    """Atomically write an image set. `path` is a file, or a run folder (then images.pt inside it)."""
    path = Path(path)
    if path.suffix != ".pt":
        path = path / IMAGES_FILE
    images = artifact.images.detach().to("cpu", torch.float32).contiguous()
    if images.ndim != 4 or len(images) != len(artifact.labels):
        raise ValueError(f"images must be [N, C, H, W] with one label each; got {tuple(images.shape)} and "
                         f"{len(artifact.labels)} labels")
    save_tensors(path, {
        "schema": SCHEMA, "images": images, "labels": artifact.labels.detach().cpu().long(),
        "data_info": artifact.info.to_dict(), "method": artifact.method,
        "checksum": images_checksum(images), "extra": dict(artifact.extra),
    })


def load_image_set(path: Path | str) -> ImageSetArtifact:
    """Read an image set from a file or a run folder; checks the schema and the checksum."""
    path = Path(path)
    if path.is_dir():
        path = path / IMAGES_FILE
    raw = load_artifact(path, SCHEMA, "image set")
    images, labels = raw.get("images"), raw.get("labels")
    if not (isinstance(images, torch.Tensor) and images.ndim == 4 and isinstance(labels, torch.Tensor)
            and labels.ndim == 1 and len(labels) == len(images)):
        raise ValueError(f"{path}: images must be a tensor [N, C, H, W] and labels a tensor [N]; the file is damaged, "
                         "re-run the stage that made it")
    try:
        art = ImageSetArtifact(images, labels, DatasetInfo.from_dict(raw["data_info"]), str(raw["method"]),
                               dict(raw.get("extra", {})))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: damaged image-set header ({type(exc).__name__}: {exc}); re-run the stage that "
                         "made it") from None
    if raw.get("checksum") and raw["checksum"] != art.checksum:
        raise ValueError(f"{path}: images do not match their stored checksum (file modified or corrupt)")
    return art


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [0, 1] or uint8 -> uint8 numpy [N, H, W, C]."""
    x = images.detach().cpu()
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def tile_images(images: torch.Tensor, ncol: int, pad: int = 2, min_tile: int = 56, background: int = 255):
    """Tile images [N, C, H, W] row-major into a PIL image with `ncol` columns; small images are
    upscaled (nearest neighbour, so 8x8 digits stay crisp) to at least `min_tile` pixels a side."""
    from PIL import Image

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
