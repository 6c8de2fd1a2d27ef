"""The expert-label study: expert epochs x IPC x label transforms x seeds on random real images.

`python -m distill_core expertsweep --spec study.yaml --run-dir runs/NAME` draws IPC random real
training images per class (seeded by the cell's seed), labels them once with each expert checkpoint
(softmax(z / T), then the cell's structure transform), trains a student with soft cross-entropy and
appends one tidy row to `results.csv`: the student's accuracy beside the expert's own accuracy on
the same test images, label bytes (N * C * dtype) and image bytes (N * C * H * W, uint8), and for a
class-removal transform the removed class's accuracy on its own (the zero-shot test) against chance
1 / C. Resumable (`--resume` skips finished cells), and a failed cell is a row with its error.
Qin et al. (2024): the best expert epoch grows with IPC; labels carry structured knowledge.
"""
from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..config import check_choices, check_int, config_from_dict, knob
from ..data import ImageSet
from ..device import make_generator, resolve_device
from ..imageset import ImageSetArtifact
from ..models import evaluate, predict_logits
from ..teacher import list_epoch_checkpoints, teacher_dataset_spec
from .expert import check_temperature, load_expert, make_expert_labels
from .grid import RESULTS_FILE, grid_metrics, run_grid
from .grid import read_rows as _read_rows
from .realimages import RealImagesConfig, random_real_images
from .relabel import VALUE_DTYPES
from .structure import check_arg, parse_transform, transform_spec
from .student import StudentConfig, image_bytes, train_student_on_probs
from .sweep import scoring_test_set

COLUMNS = ("source", "ipc", "expert_epoch", "checkpoint_epoch", "expert_test_acc", "temperature", "transform",
           "transform_arg", "seed", "num_images", "label_bytes", "image_bytes", "total_bytes", "accuracy", "removed_class",
           "removed_class_acc", "chance", "status", "error", "seconds")


@dataclass(frozen=True)
class ExpertSweepConfig:
    teacher: str = knob("", "teacher run whose per-epoch checkpoints are the experts")
    dataset: str = knob("", "dataset spec the random real images and the test set come from; empty = the teacher's")
    expert_epochs: tuple[int, ...] = knob((0,), "expert checkpoint epochs; 0 = the final teacher")
    ipcs: tuple[int, ...] = knob((10,), "random real images per class, e.g. [1, 10, 50]")
    transforms: tuple[str, ...] = knob(("none",), "label transforms as name or name:arg, e.g. [none, swap:1, topk:0]")
    seeds: tuple[int, ...] = knob((0,), "seeds of the image draw, student init and batch order (and random transforms)")
    temperature: float = knob(1.0, "softmax temperature T of the experts' logits; 1 as Qin et al.")
    value_dtype: str = knob("fp16", "stored precision of the labels, for the byte count: fp16 | fp32",
                            choices=tuple(VALUE_DTYPES))
    student: dict = knob({}, "StudentConfig fields shared by all cells, e.g. {epochs: 300, model_args: {width: 32}}")
    test_limit: int = knob(0, "score experts and students on the first k real test images; 0 = the whole test set")
    device: str = knob("auto", "auto | cpu | cuda[:N]")
    threads: int = knob(0, "torch CPU threads; 0 = torch's default, 1 avoids oversubscription on a busy machine")

    def __post_init__(self):
        if not self.teacher:
            raise ValueError("expert sweep needs a teacher run (teacher: runs/NAME)")
        check_temperature(self.temperature)
        for name, values, low in (("expert_epochs", self.expert_epochs, 0), ("ipcs", self.ipcs, 1),
                                  ("seeds", self.seeds, 0)):
            if not values:
                raise ValueError(f"{name} must list at least one value")
            for v in values:
                check_int(name, v, minimum=low)
        for t in self.transforms:
            parse_transform(t)
        check_int("test_limit", self.test_limit, minimum=0)
        check_int("threads", self.threads, minimum=0)
        bad = set(self.student) & {"images", "labels", "seed"}
        if bad:
            raise ValueError(f"expert sweep sets {', '.join(sorted(bad))} per cell; remove them from student")
        check_choices(self)


@dataclass(frozen=True)
class ExpertCell:
    expert_epoch: int
    ipc: int
    transform: str
    transform_arg: int
    seed: int

    @property
    def key(self) -> tuple[str, ...]:
        return str(self.expert_epoch), str(self.ipc), self.transform, str(self.transform_arg), str(self.seed)


def _row_key(row: dict) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in ("expert_epoch", "ipc", "transform", "transform_arg", "seed"))


def read_rows(path: Path) -> list[dict]:
    """The complete rows of a study's results.csv (a row cut short is left out and runs again)."""
    return _read_rows(path, _row_key)


def plan_cells(cfg: ExpertSweepConfig) -> list[ExpertCell]:
    """All cells, seed-major (a partial sweep already has every configuration once)."""
    return [ExpertCell(e, ipc, *parse_transform(t), seed) for seed in cfg.seeds for ipc in cfg.ipcs
            for e in cfg.expert_epochs for t in cfg.transforms]


def check_plan(cfg: ExpertSweepConfig, num_classes: int) -> None:
    """Refuse expert epochs the teacher run lacks (listing those it has) and transform arguments beyond C."""
    have = list_epoch_checkpoints(cfg.teacher)
    missing = [e for e in cfg.expert_epochs if e and e not in have]
    if missing:
        raise ValueError(f"teacher {cfg.teacher} has no checkpoint for expert epoch(s) {missing}; epochs that exist: "
                         f"{have or 'none (train the teacher first)'} (0 = the final teacher)")
    for t in cfg.transforms:
        check_arg(*parse_transform(t), num_classes)


def class_accuracy(model: torch.nn.Module, test: ImageSet, c: int) -> float:
    """Top-1 accuracy on the test images of class c alone (the zero-shot score of a removed class)."""
    mask = test.labels == c
    if not bool(mask.any()):
        return float("nan")
    return float((predict_logits(model, test.images[mask]).argmax(1).cpu() == c).float().mean())


class _Experts:
    """Expert models and their own test accuracy, loaded once per epoch."""

    def __init__(self, teacher: str, test: ImageSet, device: torch.device):
        self.teacher, self.test, self.device, self.cache = teacher, test, device, {}

    def get(self, epoch: int, images: ImageSetArtifact) -> tuple[torch.nn.Module, dict, float]:
        if epoch not in self.cache:
            model, ckpt = load_expert(self.teacher, epoch, images, self.device)
            self.cache[epoch] = model, ckpt, evaluate(model, self.test.images, self.test.labels)
        return self.cache[epoch]


def run_cell(cfg: ExpertSweepConfig, cell: ExpertCell, images: ImageSetArtifact, experts: _Experts,
             test: ImageSet, device: torch.device) -> dict:
    """Label the cell's images with its expert and transform, train one student; the tidy row."""
    model, ckpt, expert_acc = experts.get(cell.expert_epoch, images)
    labels = make_expert_labels(model, images, cfg.temperature, cell.transform, cell.transform_arg,
                                cfg.value_dtype, make_generator(cell.seed))
    kept = labels.kept_images(images)
    scfg = dataclasses.replace(config_from_dict(StudentConfig, dict(cfg.student)), seed=cell.seed)
    result = train_student_on_probs(scfg, kept, labels.probs.float(), test, device, make_generator(cell.seed))
    removes = transform_spec(cell.transform).removes_class
    k = images.info.num_classes
    return {"source": images.method, "ipc": cell.ipc, "expert_epoch": cell.expert_epoch,
            "checkpoint_epoch": int(ckpt.get("epoch", cell.expert_epoch)), "expert_test_acc": expert_acc,
            "temperature": cfg.temperature, "transform": cell.transform,
            "transform_arg": cell.transform_arg, "seed": cell.seed, "num_images": labels.num_images,
            "label_bytes": labels.label_bytes(), "image_bytes": image_bytes(kept),
            "total_bytes": labels.label_bytes() + image_bytes(kept), "accuracy": result.accuracy,
            "removed_class": cell.transform_arg if removes else "",
            "removed_class_acc": class_accuracy(result.model, test, cell.transform_arg) if removes else "",
            "chance": 1.0 / k, "status": "ok", "error": ""}


def expert_sweep(cfg: ExpertSweepConfig, run_dir: Path, device: torch.device,
                 on_progress: Callable[[float, str], None]) -> list[dict]:
    """Run every cell not yet finished into `run_dir/results.csv`; returns all rows."""
    from ..data import load_dataset

    spec = cfg.dataset or teacher_dataset_spec(cfg.teacher)
    data = load_dataset(spec)
    check_plan(cfg, data.info.num_classes)
    test = scoring_test_set(spec, cfg.test_limit)
    experts, images = _Experts(cfg.teacher, test, device), {}

    def run_one(cell: ExpertCell) -> dict:
        key = (cell.ipc, cell.seed)
        if key not in images:
            images[key] = random_real_images(RealImagesConfig(dataset=spec, ipc=cell.ipc, seed=cell.seed), data)
        return run_cell(cfg, cell, images[key], experts, test, device)

    return run_grid(plan_cells(cfg), Path(run_dir) / RESULTS_FILE, COLUMNS, _row_key, run_one,
                    lambda c: f"expert epoch {c.expert_epoch} IPC {c.ipc} {c.transform}:{c.transform_arg} seed {c.seed}",
                    on_progress)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean +- std (sample, over seeds) per (ipc, expert_epoch, transform, transform_arg) of the ok rows."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("status") == "ok":
            groups.setdefault((int(r["ipc"]), int(r["expert_epoch"]), r["transform"], int(r["transform_arg"])),
                              []).append(r)
    out = []
    for (ipc, epoch, transform, arg), rs in sorted(groups.items()):
        row = {"ipc": ipc, "expert_epoch": epoch, "checkpoint_epoch": int(rs[0].get("checkpoint_epoch") or epoch),
               "transform": transform, "transform_arg": arg, "n": len(rs),
               "expert_test_acc": float(rs[0]["expert_test_acc"]), "label_bytes": int(rs[0]["label_bytes"]),
               "total_bytes": int(rs[0]["total_bytes"])}
        for col in ("accuracy", "removed_class_acc"):
            vals = [float(r[col]) for r in rs if r.get(col) not in ("", None)]
            if vals:
                row[f"{col}_mean"] = statistics.fmean(vals)
                row[f"{col}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(row)
    return out


def best_expert_epochs(summary: list[dict]) -> dict[int, int]:
    """IPC -> the expert epoch whose untransformed labels give the highest mean student accuracy."""
    best: dict[int, tuple[float, int]] = {}
    for r in summary:
        if r["transform"] == "none" and (r["ipc"] not in best or r["accuracy_mean"] > best[r["ipc"]][0]):
            best[r["ipc"]] = (r["accuracy_mean"], r["expert_epoch"])
    return {ipc: epoch for ipc, (_, epoch) in sorted(best.items())}


def run_expert_sweep(cfg: ExpertSweepConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: run the study into `run_dir` (results.csv + metrics.json with the summary)."""
    from .. import jobs

    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    def body(ctx: jobs.JobContext) -> dict:
        rows = expert_sweep(cfg, ctx.run_dir, device, ctx.report)
        summary = summarise(rows)
        return grid_metrics(rows, ctx.run_dir, summary) | {"best_expert_epoch": best_expert_epochs(summary)}

    return jobs.run_stage("expertsweep", cfg, run_dir, body, device, None, resume, overwrite)
