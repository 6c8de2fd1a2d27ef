"""Fixed expert soft labels (Qin, Deng, Alvarez-Melis, NeurIPS 2024, "A label is worth a thousand images").

One soft label per image, P = softmax(z_e / T) of teacher checkpoint e (the "expert"; early epochs
are weaker experts), computed once on the un-augmented image and kept fixed under the student's
augmentation; the student minimises soft cross-entropy against it (`student.train_student_on_probs`),
with no hard-label term. Schema "distill_core.expert_labels/1", one file `expert_labels.pt`:

  probs           [N, C] fp16 or fp32, rows of softmax(z / T) (after the named structure transform)
  keep            bool [N]: images of the image set the labels are for (a class-removal transform
                  drops some); probs has keep.sum() rows
  checksum        sha256 of the image set's images (labels refuse other images)
  num_classes, temperature, value_dtype, teacher, expert_epoch, expert_test_acc,
  transform, transform_arg, extra

Label bytes = N * C * dtype bytes (fp16: 2), top-k kept: N * k * (dtype + index bytes): far less than an
FKD store's N * E * (2C + 25).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import check_choices, check_int, knob
from ..device import resolve_device
from ..imageset import ImageSetArtifact, load_image_set
from ..models import predict_logits
from .relabel import VALUE_DTYPES, index_bytes, load_checked_teacher, logit_bytes_per_view
from .structure import apply_transform, check_arg, transform_spec

SCHEMA = "distill_core.expert_labels/1"
LABELS_FILE = "expert_labels.pt"


def expert_label_bytes(num_images: int, num_classes: int, value_bytes: int = 2, topk: int | None = None) -> int:
    """Bytes of fixed soft labels: N * C * dtype bytes (no view metadata: every view shares its image's row).

    With `topk` = k < C only k values + k class indices a row are stored, as in the FKD store
    (`relabel.logit_bytes_per_view`); k = 0 (hard labels) stores one class index a row.
    """
    if topk is None or topk >= num_classes:
        return num_images * num_classes * value_bytes
    return num_images * (logit_bytes_per_view(num_classes, value_bytes, topk) if topk else index_bytes(num_classes))


def check_temperature(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"temperature T must be a finite number > 0 (softmax(z / T); 1 as Qin et al.), got {value!r}")


@dataclass(frozen=True)
class ExpertLabelConfig:
    images: str = knob("", "image run folder (images.pt) to label: random real images or any distilled set")
    teacher: str = knob("", "teacher run whose per-epoch checkpoints are the experts")
    expert_epoch: int = knob(0, "teacher checkpoint epoch used as the expert; 0 = the final teacher")
    temperature: float = knob(1.0, "softmax temperature T of the expert's logits; 1 as Qin et al.")
    value_dtype: str = knob("fp16", "stored precision of the probabilities: fp16 | fp32", choices=tuple(VALUE_DTYPES))
    transform: str = knob("none", "label-structure transform (see `structure.list_transforms()`), e.g. swap, topk")
    transform_arg: int = knob(0, "its argument: k for swap (1..C-1) and topk (0..C), the class for drop/zero_class")
    seed: int = knob(0, "seed of random transforms (shuffle_nontop)")
    device: str = knob("auto", "auto | cpu | cuda[:N]")

    def __post_init__(self):
        check_temperature(self.temperature)
        transform_spec(self.transform)
        check_int("transform_arg", self.transform_arg, minimum=0)
        check_int("expert_epoch", self.expert_epoch, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_choices(self)


@dataclass
class ExpertLabels:
    """Fixed soft labels of an image set (see the module docstring)."""

    probs: torch.Tensor
    keep: torch.Tensor
    checksum: str
    num_classes: int
    temperature: float
    value_dtype: str = "fp16"
    teacher: str = ""
    expert_epoch: int = 0
    expert_test_acc: float | None = None
    transform: str = "none"
    transform_arg: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return int(self.probs.shape[0])

    def label_bytes(self) -> int:
        """N * C * dtype bytes; a top-k transform stores only its k entries (k = 0: a class index a row)."""
        value_bytes = torch.finfo(VALUE_DTYPES[self.value_dtype]).bits // 8
        topk = self.transform_arg if self.transform == "topk" else None
        return expert_label_bytes(self.num_images, self.num_classes, value_bytes, topk)

    def kept_images(self, images: ImageSetArtifact) -> ImageSetArtifact:
        """The image set restricted to the images these labels are for (all, unless a class was dropped)."""
        check_labels_match(self, images)
        if bool(self.keep.all()):
            return images
        return ImageSetArtifact(images.images[self.keep], images.labels[self.keep], images.info, images.method,
                                dict(images.extra))


def check_classes_match(teacher_info, images: ImageSetArtifact) -> None:
    """ValueError when the expert's classes (count or names) are not the images' classes."""
    mine, theirs = teacher_info, images.info
    if mine.num_classes != theirs.num_classes or tuple(mine.class_names) != tuple(theirs.class_names):
        raise ValueError(f"the expert predicts {mine.num_classes} classes ({', '.join(mine.class_names[:5])}, ...) but "
                         f"the images are of {theirs.num_classes} ({', '.join(theirs.class_names[:5])}, ...); use an "
                         f"expert trained on {theirs.name} with the same class order")


def expert_probs(model: torch.nn.Module, images: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(z / T) [N, C] of the model's logits on the un-augmented images [N, C, H, W] (float32)."""
    check_temperature(temperature)
    return torch.softmax(predict_logits(model, images) / temperature, dim=1)


def make_expert_labels(model: torch.nn.Module, images: ImageSetArtifact, temperature: float = 1.0,
                       transform: str = "none", transform_arg: int = 0, value_dtype: str = "fp16",
                       generator: torch.Generator | None = None, **provenance) -> ExpertLabels:
    """The expert's fixed labels of `images`, after `transform` (structure.py); `provenance` fills
    teacher / expert_epoch / expert_test_acc / extra."""
    check_arg(transform, transform_arg, images.info.num_classes)
    probs = expert_probs(model, images.images, temperature).cpu()
    out = apply_transform(transform, probs, images.labels, transform_arg, generator)
    return ExpertLabels(out.probs.to(VALUE_DTYPES[value_dtype]), out.keep, images.checksum, images.info.num_classes,
                        float(temperature), value_dtype, transform=transform, transform_arg=transform_arg, **provenance)


def save_expert_labels(run_dir: Path, labels: ExpertLabels) -> int:
    """Atomically write `expert_labels.pt` into `run_dir`; returns its label bytes (N * C * dtype)."""
    from ..runs import save_tensors

    save_tensors(Path(run_dir) / LABELS_FILE, {
        "schema": SCHEMA, "probs": labels.probs.detach().cpu(), "keep": labels.keep.cpu(),
        "checksum": labels.checksum, "num_classes": labels.num_classes, "temperature": labels.temperature,
        "value_dtype": labels.value_dtype, "teacher": labels.teacher, "expert_epoch": labels.expert_epoch,
        "expert_test_acc": labels.expert_test_acc, "transform": labels.transform,
        "transform_arg": labels.transform_arg, "extra": dict(labels.extra),
    })
    return labels.label_bytes()


def load_expert_labels(run_dir: Path | str, images: ImageSetArtifact | None = None) -> ExpertLabels:
    """Read expert labels from a run folder; with `images`, refuse labels made for other images."""
    from ..runs import load_artifact

    path = Path(run_dir) / LABELS_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no expert labels ({LABELS_FILE}); make them with "
                         "`python -m distill_core expertlabels`")
    raw = load_artifact(path, SCHEMA, "expert-label file")
    names = ("checksum", "num_classes", "temperature", "value_dtype", "teacher", "expert_epoch", "expert_test_acc",
             "transform", "transform_arg")
    labels = ExpertLabels(raw["probs"], raw["keep"], **{k: raw[k] for k in names}, extra=dict(raw.get("extra", {})))
    if images is not None:
        check_labels_match(labels, images)
    return labels


def check_labels_match(labels: ExpertLabels, images: ImageSetArtifact) -> None:
    if labels.checksum != images.checksum:
        raise ValueError("these expert labels were made for a different image set (image checksums differ); "
                         "label these images or pick the image run the labels were made from")
    if labels.num_classes != images.info.num_classes or len(labels.keep) != len(images.labels):
        raise ValueError(f"expert labels are for {len(labels.keep)} images of {labels.num_classes} classes, the "
                         f"image set has {len(images.labels)} of {images.info.num_classes}")


def load_expert(teacher_dir: str | Path, epoch: int, images: ImageSetArtifact, device: torch.device):
    """(model, checkpoint) of expert epoch `epoch` (0 = final) for these images; refuses a missing
    epoch (listing those that exist), other classes, or a near-chance checkpoint. Expert epochs are
    plain ints (a sweep lists several on the command line), so 0 stands for the teacher's None."""
    model, spec, ckpt = load_checked_teacher(teacher_dir, epoch or None, images.info, device)
    check_classes_match(spec.info, images)
    return model, ckpt


def run_expert_labels(cfg: ExpertLabelConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: label an image run with an expert checkpoint into `run_dir` (expert_labels.pt)."""
    from .. import jobs

    if not cfg.images or not cfg.teacher:
        raise ValueError("expertlabels needs --images (an image run) and --teacher (a teacher run)")
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        art = load_image_set(cfg.images)
        model, ckpt = load_expert(cfg.teacher, cfg.expert_epoch, art, device)
        labels = make_expert_labels(model, art, cfg.temperature, cfg.transform, cfg.transform_arg, cfg.value_dtype,
                                    torch.Generator().manual_seed(cfg.seed), teacher=str(cfg.teacher),
                                    expert_epoch=int(ckpt.get("epoch", cfg.expert_epoch)),
                                    expert_test_acc=ckpt.get("test_acc"), extra={"images": str(cfg.images)})
        label_bytes = save_expert_labels(ctx.run_dir, labels)
        ctx.report(1.0, f"{labels.num_images} labels, {label_bytes} bytes")
        return {"num_images": labels.num_images, "num_classes": labels.num_classes, "label_bytes": label_bytes,
                "formula": "N*C*dtype bytes", "expert_epoch": labels.expert_epoch,
                "expert_test_acc": labels.expert_test_acc, "temperature": labels.temperature,
                "transform": labels.transform, "transform_arg": labels.transform_arg, "images": str(cfg.images)}

    return jobs.run_stage("expertlabels", cfg, run_dir, body, device, cfg.seed, resume, overwrite)
