"""Evaluate a distilled set: train a student from scratch on its images and (pruned) soft labels.

Soft-label mode replays every stored view (crop, flip, CutMix/Mixup from the label store) so each view
meets its own teacher logits, and minimises KL(softmax(z_T / T) || softmax(z_S / T)) (x T^2 when
asked), with no hard-label term (SRe2L / LPLD protocol). Hard-label mode is the reference "same images,
hard labels": fresh crops + flips each epoch and cross-entropy. Probability-target mode
(`train_student_on_probs`) is Qin et al.'s (2024) fixed expert labels: one probability row per image,
the same for every fresh crop + flip of it, soft cross-entropy, no hard-label term, no T or T^2.
Top-1 on the real test set is measured every `eval_every` epochs. DD-Ranking's scores (HLR, IOR, LRS)
come from such accuracies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from .. import augment
from ..compiled import CHANNELS_LAST_HELP, COMPILE_HELP, COMPILE_MODES, TrainStep, held_channels_last
from ..config import check_choices, check_int, check_positive, check_range, knob
from ..data import ImageSet
from ..device import AMP_MODES, make_generator, resolve_device
from ..imageset import ImageSetArtifact
from ..models import Classifier, ModelSpec, evaluate
from ..teacher import lr_at, make_optimizer, teacher_dataset_spec
from .prune import STRATEGIES, PrunePlan
from .relabel import VALUE_DTYPES, LabelStore, replay_batch


@dataclass(frozen=True)
class StudentConfig:
    images: str = knob("", "image run folder (images.pt) the student trains on")
    labels: str = knob("", "label run folder: an FKD store (`relabel`) or fixed expert labels (`expertlabels`); "
                           "empty = hard labels on the same images")
    teacher: str = knob("", "teacher run: its dataset's test set and accuracy are the reference")
    dataset: str = knob("", "dataset spec of the real test set; empty = the teacher run's dataset")
    model: str = knob("convnet", "student registry model (may differ from the teacher's)")
    model_args: dict = knob({}, "student model arguments, e.g. {width: 32}")
    epochs: int = knob(0, "student epochs; 0 = the store's label epochs E (hard labels: hard_epochs)")
    batch_size: int = knob(0, "views per step; 0 = the store's batch size (anything else must equal it); "
                              "hard labels: hard_batch_size")
    hard_epochs: int = knob(300, "hard-label students when epochs is 0: epochs; 300 as the LPLD protocol")
    hard_batch_size: int = knob(64, "hard-label students when batch_size is 0: images per step; 64 for IPC 10-50")
    optimizer: str = knob("adamw", "adamw (LPLD ImageNet) or sgd (LPLD Tiny-ImageNet)", choices=("adamw", "sgd"))
    lr: float = knob(1e-3, "peak learning rate; 1e-3 AdamW, 0.2 SGD")
    weight_decay: float = knob(0.01, "weight decay; 0.01 AdamW")
    warmup_epochs: float = knob(0.0, "linear warm-up epochs before the cosine decay to 0; 5 for SGD")
    temperature: float = knob(20.0, "softmax temperature T of teacher and student logits; 20 as LPLD")
    t2: bool = knob(False, "multiply the KL loss by T^2 (LPLD on Tiny-ImageNet)")
    strategy: str = knob("random", "label pruning strategy (see `prune.list_strategies()`)")
    ratio: float = knob(0.0, "pruning ratio r in [0, 1): fraction of stored batches removed; 40x = 0.975")
    topk: int = knob(0, "keep only the top-k logits per view; 0 = all")
    value_dtype: str = knob("fp16", "logit precision used for storage accounting: fp16 | fp32", choices=tuple(VALUE_DTYPES))
    crop_scale: tuple[float, float] = knob((0.08, 1.0), "hard-label mode: random-resized-crop area range")
    eval_every: int = knob(1, "evaluate on the real test set every k epochs (and after the last)")
    seed: int = knob(0, "seed of init, pruning draw and batch order")
    device: str = knob("auto", "auto | cpu | cuda[:N]")
    amp: str = knob("off", "mixed precision: off | bf16", choices=AMP_MODES)
    compile: str = knob("off", COMPILE_HELP, choices=COMPILE_MODES)
    channels_last: bool = knob(False, CHANNELS_LAST_HELP)

    def __post_init__(self):
        check_int("epochs", self.epochs, minimum=0)
        check_int("batch_size", self.batch_size, minimum=0)
        check_int("hard_epochs", self.hard_epochs)
        check_int("hard_batch_size", self.hard_batch_size)
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("warmup_epochs", self.warmup_epochs, allow_zero=True)
        check_positive("temperature", self.temperature)
        if not 0.0 <= self.ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1) (40x = 0.975), got {self.ratio}")
        STRATEGIES.check(self.strategy)
        check_int("topk", self.topk, minimum=0)
        check_range("crop_scale", self.crop_scale, 1e-3, 1.0)
        check_int("eval_every", self.eval_every)
        check_int("seed", self.seed, minimum=0)
        check_choices(self)


@dataclass
class StudentResult:
    model: Classifier
    history: list[dict] = field(default_factory=list)  # per evaluated epoch: epoch, loss, test_acc, lr

    @property
    def accuracy(self) -> float:
        return self.history[-1]["test_acc"] if self.history else float("nan")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, t2: bool) -> torch.Tensor:
    """KL(softmax(z_T/T) || softmax(z_S/T)), mean over the batch, times T^2 when `t2`.

    student_logits, teacher_logits: [B, K]; teacher entries of -inf (dropped by top-k) have p_T = 0.
    """
    log_q = F.log_softmax(student_logits.float() / temperature, dim=1)
    p = F.softmax(teacher_logits.float() / temperature, dim=1)
    loss = F.kl_div(log_q, p, reduction="batchmean")
    return loss * temperature**2 if t2 else loss


def soft_batches(store: LabelStore, plan: PrunePlan, images: torch.Tensor, epoch: int,
                 generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One student epoch of (views, teacher logits) from a pruned store (batch ids are the kept store's).

    Improved pool (`plan.with_replacement`): nb = ceil(N / B) batches drawn with replacement.
    Ordered replay: the kept label epochs in turn, epoch s using kept label epoch s mod k.
    """
    if plan.with_replacement:
        ids = torch.randint(0, store.num_batches, (store.batches_per_epoch,), generator=generator)
    else:
        epochs = torch.unique(store.batch_epoch)
        ids = torch.nonzero(store.batch_epoch == epochs[epoch % len(epochs)]).flatten()
    for b in ids.tolist():
        yield replay_batch(store, images, b)


def hard_batches(images: torch.Tensor, targets: torch.Tensor, batch_size: int, crop_scale: tuple[float, float],
                 flip: bool, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of fresh random-resized-crop (+ flip) views with their image's target: a class [N]
    (hard labels) or a probability row [N, C] (fixed expert labels, the same for every view)."""
    order = torch.randperm(len(images), generator=generator)
    for idx in order.split(batch_size):
        boxes = augment.sample_resized_crops(len(idx), crop_scale, generator=generator)
        flips = augment.sample_flips(len(idx), 0.5, generator) if flip else None
        dev = images.device
        yield augment.apply_crops(images[idx.to(dev)], boxes.to(dev), None if flips is None else flips.to(dev)), \
            targets[idx.to(dev)]


def soft_cross_entropy(student_logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """-sum_c p_c log softmax(z_S)_c, mean over the batch (Qin et al. 2024): no temperature, no T^2.

    student_logits, target_probs: [B, C]. Targets need not sum to 1 (top-k kept without
    renormalisation weighs a row by the mass it keeps).
    """
    return -(target_probs.float() * F.log_softmax(student_logits.float(), dim=1)).sum(dim=1).mean()


def build_student(cfg: StudentConfig, images: ImageSetArtifact, device: torch.device) -> Classifier:
    """The student with its initial weights drawn from `cfg.seed` alone (not from the process's RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return ModelSpec(cfg.model, images.info, dict(cfg.model_args)).build().to(device)


def train_student(
    cfg: StudentConfig,
    images: ImageSetArtifact,
    test: ImageSet,
    device: torch.device,
    generator: torch.Generator,
    store: LabelStore | None = None,
    plan: PrunePlan | None = None,
    on_progress: Callable[[float, str], None] = lambda p, m: None,
) -> StudentResult:
    """Train `cfg.model` from scratch on `images` with the (pruned) `store`, or hard labels when None.

    `generator` must live on the CPU (batch draws); views are rendered on `device`.
    """
    soft = store is not None
    if soft and cfg.batch_size and cfg.batch_size != store.batch_size:
        raise ValueError(f"batch_size {cfg.batch_size} does not match the label store's {store.batch_size}; "
                         "use 0 (the store's) or relabel with this batch size")
    x = images.images.to(device)
    if not soft:
        return _fit(cfg, images, x, images.labels.to(device), F.cross_entropy, test, device, generator, on_progress)
    model = build_student(cfg, images, device)
    epochs = cfg.epochs or store.epochs

    def loss_fn(out, target):
        return kd_loss(out, target, cfg.temperature, cfg.t2)

    return _train_loop(cfg, model, epochs, store.batches_per_epoch,
                       lambda epoch: soft_batches(store, plan, x, epoch, generator), loss_fn, test, device, on_progress)


def train_student_on_probs(
    cfg: StudentConfig,
    images: ImageSetArtifact,
    targets: torch.Tensor,
    test: ImageSet,
    device: torch.device,
    generator: torch.Generator,
    on_progress: Callable[[float, str], None] = lambda p, m: None,
) -> StudentResult:
    """Train `cfg.model` from scratch on `images` with one fixed probability row per image.

    targets: float [N, C] (e.g. an expert's softmax(z / T), possibly transformed); every epoch draws
    fresh crops + flips (`cfg.crop_scale`) and minimises `soft_cross_entropy` against the image's row.
    `cfg.temperature` and `cfg.t2` do not apply (the expert's temperature is inside the targets).
    """
    if targets.ndim != 2 or len(targets) != len(images.labels) or targets.shape[1] != images.info.num_classes:
        raise ValueError(f"targets must be [N, C] = [{len(images.labels)}, {images.info.num_classes}] for these "
                         f"images, got {tuple(targets.shape)}")
    if not torch.isfinite(targets).all() or (targets < 0).any():
        raise ValueError("targets must be finite, non-negative probabilities")
    return _fit(cfg, images, images.images.to(device), targets.float().to(device), soft_cross_entropy, test, device,
                generator, on_progress)


def _fit(cfg, images, x, targets, loss_fn, test, device, generator, on_progress) -> StudentResult:
    """Fresh-view training (hard labels or fixed probability rows): ceil(N / B) steps an epoch."""
    batch_size = cfg.batch_size or cfg.hard_batch_size
    model = build_student(cfg, images, device)

    def batches(epoch):
        return hard_batches(x, targets, batch_size, cfg.crop_scale, images.info.flip, generator)

    return _train_loop(cfg, model, cfg.epochs or cfg.hard_epochs, math.ceil(len(x) / batch_size), batches, loss_fn, test,
                       device, on_progress)


def _train_loop(cfg: StudentConfig, model: Classifier, epochs: int, steps: int,
                batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]],
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], test: ImageSet,
                device: torch.device, on_progress: Callable[[float, str], None]) -> StudentResult:
    """`epochs` epochs of `steps` optimiser steps over `batches(epoch)`, cosine lr with warm-up,
    evaluated on `test` every `cfg.eval_every` epochs and after the last. The step (forward, loss,
    backward, optimiser) is `compiled.TrainStep`: eager or compiled, channels-last or not."""
    with held_channels_last(model, cfg.channels_last):
        opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
        train_step = TrainStep(model, opt, loss_fn, device, cfg.amp, cfg.compile, cfg.channels_last)
        return _epochs(cfg, model, opt, train_step, epochs, steps, batches, test, device, on_progress)


def _epochs(cfg: StudentConfig, model: Classifier, opt: torch.optim.Optimizer, train_step: TrainStep, epochs: int,
            steps: int, batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]], test: ImageSet,
            device: torch.device, on_progress: Callable[[float, str], None]) -> StudentResult:
    """The epochs of `_train_loop` with its optimiser and step."""
    total, warmup = epochs * steps, cfg.warmup_epochs * steps
    result, step = StudentResult(model), 0
    for epoch in range(epochs):
        model.train()
        loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync per step
        for views, target in batches(epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            loss_sum, step = loss_sum + train_step(views, target), step + 1
        loss_sum = float(loss_sum)
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"student loss became NaN/inf in epoch {epoch + 1}; lower lr (now {cfg.lr})")
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == epochs:
            acc = evaluate(model, test.images, test.labels)
            result.history.append({"epoch": epoch + 1, "loss": loss_sum / max(steps, 1), "test_acc": acc,
                                   "lr": opt.param_groups[0]["lr"]})
            on_progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}: test acc {acc:.3f}")
        else:
            on_progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}")
    model.eval()
    return result


def dd_ranking(real_hard: float, syn_hard: float, syn_soft: float, random_soft: float, weight: float = 0.5) -> dict:
    """DD-Ranking scores (Li et al. 2025) from accuracies given as fractions in [0, 1].

    HLR = real-data hard-label acc - synthetic hard-label acc; IOR = synthetic acc - random-real acc (same
    protocol); LRS = (e^a - e^-1) / (e - e^-1) with a = w IOR - (1 - w) HLR (w = 0.5: a = (IOR - HLR) / 2),
    which lies in [0, 1].
    """
    for name, v in (("real_hard", real_hard), ("syn_hard", syn_hard), ("syn_soft", syn_soft),
                    ("random_soft", random_soft), ("weight", weight)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {v}")
    hlr, ior = real_hard - syn_hard, syn_soft - random_soft
    a = weight * ior - (1.0 - weight) * hlr
    lrs = (math.exp(a) - math.exp(-1.0)) / (math.e - math.exp(-1.0))
    return {"HLR": hlr, "IOR": ior, "LRS": lrs}


# ---------------------------------------------------------------------------------------------
# job


def pruned_labels(cfg: StudentConfig, images: ImageSetArtifact, store: LabelStore) -> tuple[LabelStore, PrunePlan]:
    """Apply the config's pruning strategy, ratio and storage reductions to `store` (seeded by cfg.seed)."""
    from .prune import prune
    from .relabel import check_store_matches

    check_store_matches(store, images)
    return prune(store, cfg.strategy, cfg.ratio, make_generator(cfg.seed), images.labels, cfg.topk, cfg.value_dtype)


def image_bytes(images: ImageSetArtifact) -> int:
    """Bytes of the images stored as uint8 pixels (N * C * H * W)."""
    return images.images.numel()


def _expert_student(cfg: StudentConfig, art: ImageSetArtifact, test: ImageSet, device: torch.device,
                    on_progress: Callable[[float, str], None]) -> tuple[StudentResult, dict]:
    """A student on fixed expert labels (an `expertlabels` run): soft cross-entropy, fresh views."""
    from .expert import load_expert_labels

    labels = load_expert_labels(cfg.labels, art)
    result = train_student_on_probs(cfg, labels.kept_images(art), labels.probs.float(), test, device,
                                    make_generator(cfg.seed), on_progress)
    return result, {"labels": "expert", "label_bytes": labels.label_bytes(), "expert_epoch": labels.expert_epoch,
                    "expert_test_acc": labels.expert_test_acc, "transform": labels.transform,
                    "transform_arg": labels.transform_arg}


def run_student(cfg: StudentConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: train and evaluate a student; metrics hold accuracy, label bytes and compression."""
    from .. import jobs, runs
    from ..data import load_dataset
    from ..imageset import load_image_set
    from .expert import LABELS_FILE as EXPERT_LABELS_FILE
    from .relabel import load_store

    if not cfg.images:
        raise ValueError("student needs --images (an image run)")
    if not (cfg.dataset or cfg.teacher):
        raise ValueError("student needs --teacher or --dataset to find the real test set")
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        art = load_image_set(cfg.images)
        test = load_dataset(cfg.dataset or teacher_dataset_spec(cfg.teacher)).test
        store = plan = None
        if cfg.labels and (Path(cfg.labels) / EXPERT_LABELS_FILE).is_file():  # an `expertlabels` run
            result, metrics = _expert_student(cfg, art, test, device, ctx.report)
        else:
            if cfg.labels:
                store, plan = pruned_labels(cfg, art, load_store(cfg.labels, art))
            result = train_student(cfg, art, test, device, make_generator(cfg.seed), store, plan, ctx.report)
            metrics = {"labels": "soft" if store is not None else "hard"}
        runs.write_json_atomic(ctx.run_dir / "history.json", result.history)
        metrics = {"accuracy": result.accuracy, **metrics, "method": art.method, "ipc": art.ipc,
                   "image_bytes": image_bytes(art)}
        if plan is not None:
            metrics |= plan.summary()
        if cfg.teacher:
            metrics["teacher_test_acc"] = runs.read_json(Path(cfg.teacher) / "metrics.json", {}).get("test_acc")
        return metrics

    return jobs.run_stage("student", cfg, run_dir, body, device, cfg.seed, resume, overwrite)
