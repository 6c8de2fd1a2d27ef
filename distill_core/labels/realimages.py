"""Random real images per class as an image run: the "label is worth a thousand images" baseline.

Qin et al. (2024) show that random real images, relabeled by a teacher exactly like synthetic ones,
match most soft-label distillation methods; every synthetic result is shown beside this baseline.
The run writes `images.pt` (method "random_real"; `extra` holds the chosen training-set indices and,
when given, the expert epoch of the teacher that will label them).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ..config import FINAL_TEACHER_LEGACY, check_int, check_teacher_epoch, knob
from ..data import Dataset, load_dataset, per_class_indices
from ..device import make_generator
from ..imageset import ImageSetArtifact, save_image_set


@dataclass(frozen=True)
class RealImagesConfig:
    dataset: str = knob("digits", "dataset spec: digits | fashion-mnist[:dir] | ...")
    ipc: int = knob(10, "images per class drawn from the training set; typical 10 or 50")
    seed: int = knob(0, "seed of the random selection")
    expert_epoch: int | None = knob(None, "teacher epoch meant to label these images (recorded only, >= 1); "
                                          "None = the final teacher")

    LEGACY_VALUES: ClassVar[dict] = {"expert_epoch": FINAL_TEACHER_LEGACY}

    def __post_init__(self):
        check_int("ipc", self.ipc)
        check_int("seed", self.seed, minimum=0)
        check_teacher_epoch(self.expert_epoch, "expert_epoch")


def select_random_real(data: Dataset, ipc: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-set indices [K*ipc] (class-major, ascending class) and their labels, ipc per class."""
    index = per_class_indices(data.train, ipc, generator, list(range(data.info.num_classes)))
    return index, data.train.labels[index]


def random_real_images(cfg: RealImagesConfig, data: Dataset) -> ImageSetArtifact:
    """The image-set artifact of `cfg.ipc` random real training images per class."""
    index, labels = select_random_real(data, cfg.ipc, make_generator(cfg.seed))
    images = data.train.images[index].float() / 255.0
    extra = {"real_indices": index.tolist(), "seed": cfg.seed, "dataset": cfg.dataset}
    if cfg.expert_epoch is not None:
        extra["expert_epoch"] = cfg.expert_epoch
    return ImageSetArtifact(images, labels.clone(), data.info, "random_real", extra)


def run_realimages(cfg: RealImagesConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: write a random-real image run into `run_dir`."""
    from .. import jobs

    def body(ctx: jobs.JobContext) -> dict:
        data = load_dataset(cfg.dataset)
        art = random_real_images(cfg, data)
        save_image_set(ctx.run_dir, art)
        ctx.report(1.0, f"{len(art.labels)} images")
        return {"method": "random_real", "dataset": data.info.name, "ipc": cfg.ipc, "num_images": len(art.labels),
                "checksum": art.checksum}

    return jobs.run_stage("realimages", cfg, run_dir, body, torch.device("cpu"), cfg.seed, resume, overwrite)
