"""Squeeze: train a teacher on the real training set, one checkpoint per epoch.

The per-epoch checkpoints are the "expert epochs" the label-is-worth-a-thousand-images baseline
chooses from (Qin et al. 2024); the last one is the teacher for synthesis and relabeling.
Augmentation follows the image size: small images (<= 64 px) get a random translation of up to
1/8 of the side plus a horizontal flip where the dataset allows it; larger images get a
random-resized crop (scale 0.08-1) plus flip. Optimiser SGD (Nesterov) or AdamW, cosine schedule
with linear warm-up, cross-entropy with optional label smoothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import augment
from .config import check_choices, check_finite, check_int, check_positive, knob
from .data import Dataset, DatasetInfo, load_dataset
from .device import AMP_MODES, autocast, make_generator, resolve_device
from .models import Classifier, ModelSpec, evaluate, load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class TeacherConfig:
    dataset: str = knob("digits", "dataset spec: digits | fashion-mnist[:dir] | mnist | cifar10 | cifar100 | "
                                  "imagefolder:<dir>")
    model: str = knob("convnet", "registry model name (see `python -m distill_core models`)")
    model_args: dict = knob({}, "model arguments, e.g. {width: 64, depth: 3} for convnet")
    epochs: int = knob(30, "training epochs over the real training set; 30 for digits, 15 for Fashion-MNIST", label="Epochs")
    batch_size: int = knob(128, "images per SGD step; typical 128", label="Batch size (images per step)")
    optimizer: str = knob("sgd", "sgd (Nesterov momentum 0.9) or adamw", choices=("sgd", "adamw"),
                          label="Optimiser", advanced=True)
    lr: float = knob(0.05, "peak learning rate; 0.05 for SGD, 1e-3 for AdamW", label="Peak learning rate")
    weight_decay: float = knob(5e-4, "decoupled (AdamW) or L2 (SGD) weight decay; typical 5e-4",
                               label="Weight decay", advanced=True)
    warmup_epochs: float = knob(1.0, "linear warm-up length in epochs before the cosine decay to 0",
                                label="Warm-up (epochs)", advanced=True)
    label_smoothing: float = knob(0.0, "cross-entropy label smoothing in [0, 1); 0 keeps plain CE",
                                  label="Label smoothing", advanced=True)
    augment: bool = knob(True, "use the size-appropriate augmentation (translate/crop + flip)",
                         label="Augmentation", advanced=True)
    seed: int = knob(0, "seed for init, batch order and augmentation", label="Seed")
    device: str = knob("auto", "auto | cpu | cuda[:N]", label="Device", advanced=True)
    amp: str = knob("off", "mixed precision on the device: off | bf16", choices=AMP_MODES,
                    label="Mixed precision", advanced=True)

    def __post_init__(self):
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("warmup_epochs", self.warmup_epochs, allow_zero=True)
        check_finite("label_smoothing", self.label_smoothing)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check_int("seed", self.seed, minimum=0)
        check_choices(self)


@dataclass
class TeacherResult:
    model: Classifier
    spec: ModelSpec
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, train_loss, train_acc, test_acc, lr

    @property
    def test_acc(self) -> float:
        return self.history[-1]["test_acc"] if self.history else float("nan")


def augment_batch(x: torch.Tensor, info: DatasetInfo, generator: torch.Generator) -> torch.Tensor:
    """The teacher's training augmentation of a float batch [B, C, H, W], on x's device."""
    n, size = x.shape[0], x.shape[-1]
    if size <= 64:
        boxes = augment.sample_translations(n, max(1, size // 8), size, generator)
    else:
        boxes = augment.sample_resized_crops(n, (0.08, 1.0), generator=generator)
    flips = augment.sample_flips(n, 0.5, generator) if info.flip else None
    return augment.apply_crops(x, boxes, flips)


def lr_at(step: float, total: float, warmup: float, peak: float) -> float:
    """Linear warm-up over `warmup` steps then cosine decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def train_teacher(
    cfg: TeacherConfig,
    data: Dataset,
    device: torch.device,
    generator: torch.Generator,
    on_progress: Callable[[float, str], None] = lambda p, m: None,
    on_epoch: Callable[[dict, Classifier, dict], None] = lambda row, model, state: None,
    resume_state: dict | None = None,
) -> TeacherResult:
    """Train a teacher on `data.train`, evaluating on `data.test` after every epoch.

    `on_epoch(row, model, state)` receives the epoch's metrics and the full training state (model,
    optimiser, generator, history) so the caller can checkpoint; `resume_state` is such a state.
    """
    spec = ModelSpec(cfg.model, data.info, dict(cfg.model_args))
    model = spec.build(seed=cfg.seed).to(device)
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    x_train = data.train.float_images(device)
    y_train = data.train.labels.to(device)
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    history: list[dict] = []
    start = 0
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        generator.set_state(resume_state["generator"])
        history, start = list(resume_state["history"]), int(resume_state["epoch"])
    for epoch in range(start, cfg.epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=generator, device=device)
        loss_sum = correct = 0.0
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x, y = x_train[idx], y_train[idx]
            if cfg.augment:
                x = augment_batch(x, data.info, generator)
            with autocast(device, cfg.amp):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"teacher loss became {loss.item()} at epoch {epoch + 1}, step {i}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += float((logits.argmax(1) == y).sum())
            on_progress((step + 1) / total, f"epoch {epoch + 1}/{cfg.epochs}")
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / len(y_train),
            "train_acc": correct / len(y_train),
            "test_acc": evaluate(model, data.test.images, data.test.labels),
            "lr": opt.param_groups[0]["lr"],
        }
        history.append(row)
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": generator.get_state(),
                 "history": history, "epoch": epoch + 1}
        on_epoch(row, model, state)
        on_progress((epoch + 1) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}: test acc {row['test_acc']:.3f}")
    model.eval()
    return TeacherResult(model, spec, history)


# ---------------------------------------------------------------------------------------------
# run folder layout of a teacher run

CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "train_state.pt"
TEACHER_FILE = "teacher.pt"


def epoch_checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{epoch:04d}.pt"


def list_epoch_checkpoints(run_dir: Path) -> list[int]:
    """Epochs that have a checkpoint in a teacher run, ascending."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(int(p.stem.split("_")[1]) for p in folder.glob("epoch_*.pt")) if folder.is_dir() else []


def load_teacher(run_dir: Path | str, epoch: int | None = None, device: torch.device | str = "cpu"):
    """(model in eval mode, ModelSpec, checkpoint dict) of a teacher run's final or given epoch."""
    run_dir = Path(run_dir)
    path = run_dir / TEACHER_FILE if epoch is None else epoch_checkpoint_path(run_dir, epoch)
    if epoch is None and not path.is_file():
        epochs = list_epoch_checkpoints(run_dir)
        if not epochs:
            raise ValueError(f"{run_dir} holds no teacher checkpoint; train one with `python -m distill_core teacher`")
        path = epoch_checkpoint_path(run_dir, epochs[-1])
    elif not path.is_file():
        raise ValueError(f"{run_dir} has no checkpoint for epoch {epoch}; available: {list_epoch_checkpoints(run_dir)}")
    return load_checkpoint(path, device)


# ---------------------------------------------------------------------------------------------
# what every stage asks of a teacher run: its dataset, and whether it is near chance


def teacher_dataset_spec(teacher_dir: Path | str) -> str:
    """The dataset spec a teacher run was trained with (its config.yaml, which keeps a data path),
    else the dataset name its checkpoint records."""
    from .config import load_yaml

    cfg_path = Path(teacher_dir) / "config.yaml"
    if cfg_path.is_file():
        spec = (load_yaml(cfg_path) or {}).get("dataset")
        if spec:
            return str(spec)
    return load_teacher(teacher_dir)[1].info.name


def near_chance_threshold(num_classes: int) -> float:
    """Top-1 accuracy below which a teacher of K classes counts as near chance:
    min(2 / K, chance + 0.25 (1 - chance)), 20% for K = 10. Such a teacher almost surely uses
    another class order than the dataset, or the wrong data."""
    chance = 1.0 / num_classes
    return min(2.0 * chance, chance + 0.25 * (1 - chance))


def near_chance_message(accuracy: float, num_classes: int, what: str) -> str:
    return (f"the teacher classifies only {100 * accuracy:.1f}% of {what} correctly (chance "
            f"{100 / num_classes:.1f}%, threshold {100 * near_chance_threshold(num_classes):.1f}%): its class "
            "order or input data probably differ from the dataset's; check the teacher run and the dataset spec "
            "before synthesising or relabeling")


def check_teacher_sanity(
    model: nn.Module, data: Dataset, sample: int = 2000, min_accuracy: float | None = None, seed: int = 0
) -> float:
    """Top-1 accuracy of `model` on up to `sample` random real test images; ValueError below
    `near_chance_threshold` (or `min_accuracy` when given)."""
    k = data.info.num_classes
    threshold = near_chance_threshold(k) if min_accuracy is None else min_accuracy
    n = len(data.test)
    if n == 0:
        raise ValueError(f"dataset {data.info.name} has no test images to check the teacher on")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=g)[: min(sample, n)]
    acc = evaluate(model, data.test.images[idx], data.test.labels[idx])
    if acc < threshold:
        raise ValueError(near_chance_message(acc, k, f"{len(idx)} real {data.info.name} test images"))
    return acc


def run_teacher(cfg: TeacherConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: train a teacher into `run_dir` (checkpoint per epoch, resumable). Returns its metrics."""
    from . import jobs, runs

    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        data = load_dataset(cfg.dataset)
        state_path = ctx.run_dir / RESUME_FILE
        resume_state = runs.load_tensors(state_path) if ctx.resume and state_path.is_file() else None
        spec = ModelSpec(cfg.model, data.info, dict(cfg.model_args))

        def on_epoch(row: dict, model: Classifier, state: dict) -> None:
            save_checkpoint(epoch_checkpoint_path(ctx.run_dir, row["epoch"]), model, spec, **row)
            runs.save_tensors(state_path, state)
            runs.write_json_atomic(ctx.run_dir / "history.json", state["history"])

        result = train_teacher(cfg, data, device, make_generator(cfg.seed, device), ctx.report, on_epoch, resume_state)
        save_checkpoint(ctx.run_dir / TEACHER_FILE, result.model, spec, **result.history[-1])
        return {
            "dataset": data.info.name, "model": cfg.model, "epochs": len(result.history),
            "test_acc": result.test_acc, "best_test_acc": max(r["test_acc"] for r in result.history),
            "num_train": len(data.train), "num_test": len(data.test),
        }

    return jobs.run_stage("teacher", cfg, run_dir, body, device, cfg.seed, resume, overwrite)
