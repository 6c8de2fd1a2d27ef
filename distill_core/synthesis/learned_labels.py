"""The learned-label artifact of a bilevel run: `learned_labels.pt`, schema "distill_core.learned_labels/1".

Beside the run's samples (an image set `images.pt`, or `text.pt` for text), it holds what the
image-set schema cannot: the unnormalised label vector of every sample and the learned step sizes.
  labels         float32 [M, C], as learned (unnormalised; entries may be negative)
  label_softmax  bool: the inner loss used softmax(labels) as targets
  step_sizes     float32 [T], η_t = softplus(ρ_t), in inner-step order
  class_names    the dataset's class names (C of them)
  samples_checksum  sha256 of the samples this belongs to (imageset.images_checksum)
  learn_labels   False for the one-hot baseline (labels stayed one-hot)
  init           "fixed" | "random", the network initialisation they were learned for
  extra          plain metadata (dataset, seed, ...)
The image set's hard labels are argmax(labels), so pages that read only image sets work unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..runs import load_artifact, save_tensors, write_text_atomic

SCHEMA = "distill_core.learned_labels/1"
FILE = "learned_labels.pt"


@dataclass
class LearnedLabels:
    labels: torch.Tensor  # float32 [M, C]
    step_sizes: torch.Tensor  # float32 [T]
    class_names: tuple[str, ...]
    samples_checksum: str
    label_softmax: bool = False
    learn_labels: bool = True
    init: str = "fixed"
    extra: dict = field(default_factory=dict)

    @property
    def hard_labels(self) -> torch.Tensor:
        """argmax class of each sample, int64 [M]."""
        return self.labels.argmax(dim=1)

    def targets(self) -> torch.Tensor:
        """The inner loss's targets [M, C]: softmax(labels) when label_softmax, else the labels."""
        return self.labels.softmax(dim=1) if self.label_softmax else self.labels


def save_learned_labels(run_dir: Path, art: LearnedLabels) -> None:
    """Atomically write `learned_labels.pt` (and `learned_labels.csv`, samples x classes) in run_dir."""
    labels = art.labels.detach().cpu().float()
    if labels.ndim != 2 or labels.shape[1] != len(art.class_names):
        raise ValueError(f"labels must be [M, C] with C = {len(art.class_names)} class names, got {tuple(labels.shape)}")
    if not (torch.isfinite(labels).all() and torch.isfinite(art.step_sizes).all()):
        raise ValueError("learned labels or step sizes are not finite; refusing to save them as a result")
    run_dir = Path(run_dir)
    save_tensors(run_dir / FILE, {
        "schema": SCHEMA, "labels": labels, "step_sizes": art.step_sizes.detach().cpu().float(),
        "class_names": list(art.class_names), "samples_checksum": art.samples_checksum,
        "label_softmax": bool(art.label_softmax), "learn_labels": bool(art.learn_labels), "init": art.init,
        "extra": dict(art.extra),
    })
    header = "sample," + ",".join(n.replace(",", " ") for n in art.class_names)
    rows = [f"{i}," + ",".join(f"{float(v):.6g}" for v in row) for i, row in enumerate(labels)]
    write_text_atomic(run_dir / "learned_labels.csv", "\n".join([header, *rows]) + "\n")


def load_learned_labels(path: Path | str) -> LearnedLabels:
    """Read `learned_labels.pt` from a file or a run folder; checks the schema."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE
    raw = load_artifact(path, SCHEMA, "learned-label artifact")
    return LearnedLabels(raw["labels"], raw["step_sizes"], tuple(raw["class_names"]), raw["samples_checksum"],
                         bool(raw["label_softmax"]), bool(raw["learn_labels"]), raw["init"], dict(raw["extra"]))
