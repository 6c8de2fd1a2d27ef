"""BatchNorm statistics of a teacher: global (running buffers) and class-conditional.

For BN layer l with input a_l (shape [N, C_l, H, W], or [N, C_l] for BatchNorm1d), the class-c
statistics are the mean and the *biased* variance over (N, H, W) of the layer's input on the real
training images of class c (Xiao & He 2024, "class-wise supervision"):

    mu_{l,c}  = E_{x in class c, h, w}[a_l(x)]           sigma2_{l,c} = E[a_l^2] - mu_{l,c}^2

Three ways to get them (`mode`):
  exact         one eval-mode pass over the un-augmented training set, float64 sums of a and a^2 per
                class and channel: the true class mean and variance (the default).
  reference     the estimator of the LPLD reference code (a class-aware BatchNorm filled by one
                eval-mode pass with the teacher's training augmentation): buffers start at mean 0 and
                variance 1; every batch in which class c appears, even with a single image, updates
                stat <- (1 - m) stat + m batch_stat (momentum m = 0.1) with the batch's class mean and
                *biased* variance. With few batches the means stay shrunk towards 0 (six updates leave
                1 - 0.9^6 = 47% of the true mean), and a batch holding one image of a class contributes
                that image's spatial variance only, so the variance misses the between-image spread.
  ema_unbiased  an EMA that avoids the start-up bias: it starts from each class's first batch with at
                least two of its images, uses the unbiased batch variance and skips batches with fewer
                than two images of the class. Per-batch variances still miss the between-batch spread.

Global statistics are the teacher's running_mean / running_var (what SRe2L matches).
Class statistics are saved beside the teacher run as `bn_stats_<mode>.pt` (schema below).
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from ..config import check_choices, check_int, check_teacher_epoch, knob
from ..data import Dataset, DatasetInfo, load_dataset
from ..models import bn_layers
from ..runs import load_artifact, save_tensors
from .hooks import BNInputCapture

SCHEMA = "distill_core.bn_stats/1"
MODES = ("exact", "reference", "ema_unbiased")
RENAMED = {"ema": "use 'reference' (the LPLD reference code's estimator) or 'ema_unbiased' (the former 'ema')"}
ProgressFn = Callable[[float, str], None]


@dataclass
class BNStatistics:
    """Per-layer target statistics: `mean[l]`, `var[l]` are float32 [K, C_l] (K = 1 for global).

    `count[k]` is the number of real images behind row k (0 for global statistics).
    """

    layers: list[str]
    mean: list[torch.Tensor]
    var: list[torch.Tensor]
    kind: str  # "global" | "class"
    mode: str  # "running" (global) | "exact" | "reference" | "ema_unbiased"
    count: torch.Tensor

    @property
    def rows(self) -> int:
        return int(self.mean[0].shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the stored statistics tensors."""
        return sum(t.numel() * t.element_size() for t in [*self.mean, *self.var])

    def to(self, device: torch.device | str) -> "BNStatistics":
        return BNStatistics(self.layers, [m.to(device) for m in self.mean], [v.to(device) for v in self.var],
                            self.kind, self.mode, self.count)


def reduce_dims(a: torch.Tensor) -> tuple[int, ...]:
    """Dimensions of a BN input other than batch and channel: (2, 3) for [N, C, H, W], () for [N, C]."""
    return tuple(range(2, a.ndim))


def global_stats(model: nn.Module) -> BNStatistics:
    """The teacher's running statistics as one row per layer ([1, C_l])."""
    layers = bn_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BatchNorm layers; BN matching needs a BN teacher")
    if any(m.running_mean is None for _, m in layers):
        raise ValueError("a BatchNorm layer of the teacher tracks no running statistics (track_running_stats=False)")
    return BNStatistics(
        [n for n, _ in layers], [m.running_mean.detach().float()[None].clone() for _, m in layers],
        [m.running_var.detach().float()[None].clone() for _, m in layers], "global", "running", torch.zeros(1),
    )


# ---------------------------------------------------------------------------------------------
# class-conditional statistics


def _class_sums(a: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 per-class sums of a and a^2 over (N, H, W): two [K, C] tensors."""
    a = a.detach().double()
    dims = reduce_dims(a)
    s1 = a.sum(dims) if dims else a
    s2 = (a * a).sum(dims) if dims else a * a
    zeros = torch.zeros(k, a.shape[1], dtype=torch.float64, device=a.device)
    return zeros.index_add(0, y, s1), zeros.clone().index_add(0, y, s2)


def _moments(s1: torch.Tensor, s2: torch.Tensor, n: torch.Tensor, unbiased: bool = False):
    """Mean and variance [K, C] from sums over n elements per class (rows with n = 0 give 0 / 0)."""
    n = n.double().clamp(min=1)[:, None]
    mean = s1 / n
    var = (s2 / n - mean * mean).clamp(min=0)
    if unbiased:
        var = var * n / (n - 1).clamp(min=1)
    return mean, var


def compute_class_stats(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    mode: str = "exact",
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    info: DatasetInfo | None = None,
    momentum: float = 0.1,
    epochs: int = 1,
    on_progress: ProgressFn = lambda p, m: None,
) -> BNStatistics:
    """Class statistics by `mode` name (as a config gives it): `exact_class_stats`, `reference_class_stats`
    or `ema_unbiased_class_stats`.

    The two EMA modes need `info` and `generator` (they augment like teacher training); mode "exact" reads
    neither (nor momentum and epochs).
    """
    check_stats_mode(mode)
    if mode == "exact":
        return exact_class_stats(model, images, labels, num_classes, batch_size, on_progress)
    if info is None or generator is None:
        raise ValueError(f"mode {mode!r} augments like teacher training: pass the dataset info and a generator")
    estimate = reference_class_stats if mode == "reference" else ema_unbiased_class_stats
    return estimate(model, images, labels, num_classes, info, generator, batch_size, momentum, epochs, on_progress)


def check_stats_mode(mode: str) -> None:
    """ValueError naming the valid modes (and the new names of a renamed one) unless `mode` is one of MODES."""
    if mode in RENAMED:
        raise ValueError(f"class statistics mode {mode!r} was renamed: {RENAMED[mode]}")
    if mode not in MODES:
        raise ValueError(f"class statistics mode must be one of {MODES}, got {mode!r}")


def exact_class_stats(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                      batch_size: int = 256, on_progress: ProgressFn = lambda p, m: None) -> BNStatistics:
    """True class mean and biased variance of every BN layer's input: one eval-mode pass over the
    un-augmented `images` (pixel-space [N, C, H, W], uint8 or float in [0, 1]; labels int64 [N]),
    float64 sums of a and a^2 per class and channel. Returns [K, C_l] rows."""
    _check_images(images, labels, num_classes)
    with _eval_capture(model) as cap:
        mean, var = _exact_pass(model, cap, images, labels, num_classes, batch_size, on_progress)
    return BNStatistics(cap.names, mean, var, "class", "exact", _counts(labels, num_classes))


def reference_class_stats(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                          info: DatasetInfo, generator: torch.Generator, batch_size: int = 256,
                          momentum: float = 0.1, epochs: int = 1,
                          on_progress: ProgressFn = lambda p, m: None) -> BNStatistics:
    """The LPLD reference code's estimate: `epochs` shuffled eval-mode passes with the teacher's training
    augmentation; buffers start at mean 0, variance 1, and every batch in which a class appears updates
    them with that batch's class mean and biased variance (EMA with `momentum`). Returns [K, C_l] rows."""
    _check_images(images, labels, num_classes)
    means: list[torch.Tensor] = []
    variances: list[torch.Tensor] = []
    with _eval_capture(model) as cap:
        for inputs, y, n in _augmented_batches(model, cap, images, labels, num_classes, batch_size, generator, info,
                                               epochs, "reference EMA class statistics", on_progress):
            present = (n >= 1)[:, None]
            for l, a in enumerate(inputs):
                m, v = _moments(*_class_sums(a, y, num_classes), n * (a[0].numel() // a.shape[1]))
                if len(means) <= l:
                    means.append(torch.zeros_like(m))
                    variances.append(torch.ones_like(v))
                means[l] = torch.where(present, (1 - momentum) * means[l] + momentum * m, means[l])
                variances[l] = torch.where(present, (1 - momentum) * variances[l] + momentum * v, variances[l])
    return BNStatistics(cap.names, [m.float().cpu() for m in means], [v.float().cpu() for v in variances], "class",
                        "reference", _counts(labels, num_classes))


def ema_unbiased_class_stats(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                             info: DatasetInfo, generator: torch.Generator, batch_size: int = 256,
                             momentum: float = 0.1, epochs: int = 1,
                             on_progress: ProgressFn = lambda p, m: None) -> BNStatistics:
    """An EMA without the start-up bias: `epochs` shuffled eval-mode passes with the teacher's training
    augmentation; each batch holding >= 2 images of a class updates its EMA with the batch's class mean and
    unbiased variance, the EMA starting from the class's first such batch. Returns [K, C_l] rows."""
    _check_images(images, labels, num_classes)
    means: list[torch.Tensor] = []
    variances: list[torch.Tensor] = []
    seen = None
    with _eval_capture(model) as cap:
        for inputs, y, n in _augmented_batches(model, cap, images, labels, num_classes, batch_size, generator, info,
                                               epochs, "EMA class statistics", on_progress):
            present = (n > 1)[:, None]
            seen = torch.zeros_like(present) if seen is None else seen
            first, upd = present & ~seen, present & seen
            for l, a in enumerate(inputs):
                m, v = _moments(*_class_sums(a, y, num_classes), n * (a[0].numel() // a.shape[1]), unbiased=True)
                if len(means) <= l:
                    means.append(m.clone())
                    variances.append(v.clone())
                means[l] = torch.where(first, m, torch.where(upd, (1 - momentum) * means[l] + momentum * m, means[l]))
                variances[l] = torch.where(first, v, torch.where(upd, (1 - momentum) * variances[l] + momentum * v,
                                                                 variances[l]))
            seen |= present
    return BNStatistics(cap.names, [m.float().cpu() for m in means], [v.float().cpu() for v in variances], "class",
                        "ema_unbiased", _counts(labels, num_classes))


def _check_images(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if len(images) != len(labels) or len(labels) == 0:
        raise ValueError(f"need one label per image and at least one image; got {len(images)} and {len(labels)}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}); got range [{int(labels.min())}, {int(labels.max())}]")


def _counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(labels.cpu(), minlength=num_classes)


@contextmanager
def _eval_capture(model: nn.Module) -> Iterator[BNInputCapture]:
    """The model in eval mode without gradients, its BN inputs captured; its train/eval mode restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), BNInputCapture(model) as cap:
            yield cap
    finally:
        model.train(was_training)


def _batches(images: torch.Tensor, labels: torch.Tensor, order: torch.Tensor, batch_size: int,
             device: torch.device) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        x = images[idx].to(device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        yield i, x, labels[idx].to(device)


def _exact_pass(model: nn.Module, cap: BNInputCapture, images: torch.Tensor, labels: torch.Tensor, k: int,
                batch_size: int, on_progress: ProgressFn) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    device = next(model.parameters()).device
    sums: list[list[torch.Tensor]] | None = None
    elems = torch.zeros(k, dtype=torch.float64, device=device)
    for i, x, y in _batches(images, labels, torch.arange(len(labels)), batch_size, device):
        model(x)
        parts = [_class_sums(a, y, k) for a in cap.captured()]
        sums = [list(p) for p in parts] if sums is None else [[s[0] + p[0], s[1] + p[1]] for s, p in zip(sums, parts)]
        elems += torch.bincount(y, minlength=k).double()
        on_progress(min(1.0, (i + len(y)) / len(labels)), f"exact class statistics: {i + len(y)}/{len(labels)} images")
    means, variances = [], []
    for (s1, s2), a in zip(sums, cap.captured()):
        spatial = a[0].numel() // a.shape[1]
        m, v = _moments(s1, s2, elems * spatial)
        means.append(m.float().cpu())
        variances.append(v.float().cpu())
    return means, variances


def _augmented_batches(model: nn.Module, cap: BNInputCapture, images: torch.Tensor, labels: torch.Tensor, k: int,
                       batch_size: int, generator: torch.Generator, info: DatasetInfo, epochs: int, what: str,
                       on_progress: ProgressFn) -> Iterator[tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]]:
    """`epochs` shuffled passes of augmented batches through `model`: yields (BN inputs, labels [B], images
    per class in the batch [K]) for each batch."""
    from ..teacher import augment_batch

    device = next(model.parameters()).device
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=generator, device=generator.device).cpu()
        for i, x, y in _batches(images, labels, order, batch_size, device):
            model(augment_batch(x, info, generator))
            yield cap.captured(), y, torch.bincount(y, minlength=k)
            cap.clear()
            done = (epoch * len(labels) + i + len(y)) / (epochs * len(labels))
            on_progress(done, f"{what}: epoch {epoch + 1}/{epochs}, {i + len(y)}/{len(labels)} images")


# ---------------------------------------------------------------------------------------------
# files beside a teacher run


def stats_path(teacher_dir: Path | str, mode: str, epoch: int | None = None) -> Path:
    """`<teacher>/bn_stats_<mode>.pt` (final teacher) or `bn_stats_<mode>_epoch0005.pt`."""
    suffix = "" if epoch is None else f"_epoch{epoch:04d}"
    return Path(teacher_dir) / f"bn_stats_{mode}{suffix}.pt"


def model_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's parameters and buffers (to tie statistics to the exact weights)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_bn_stats(path: Path, stats: BNStatistics, **meta) -> None:
    save_tensors(Path(path), {
        "schema": SCHEMA, "layers": list(stats.layers), "mean": [m.cpu() for m in stats.mean],
        "var": [v.cpu() for v in stats.var], "kind": stats.kind, "mode": stats.mode, "count": stats.count.cpu(),
        **meta,
    })


def load_bn_stats(path: Path | str) -> tuple[BNStatistics, dict]:
    """(statistics, the file's metadata) from a `bn_stats_*.pt` file."""
    raw = load_artifact(Path(path), SCHEMA, "BN-statistics file")
    stats = BNStatistics(list(raw["layers"]), list(raw["mean"]), list(raw["var"]), raw["kind"], raw["mode"],
                         raw["count"])
    meta = {k: v for k, v in raw.items() if k not in ("layers", "mean", "var", "count")}
    return stats, meta


def load_or_compute_class_stats(
    teacher_dir: Path | str,
    model: nn.Module,
    data: Dataset | None,
    mode: str = "exact",
    epoch: int | None = None,
    compute: bool = True,
    seed: int = 0,
    batch_size: int = 256,
    on_progress: ProgressFn = lambda p, m: None,
) -> tuple[BNStatistics, Path]:
    """Class statistics of `model` (the teacher of run `teacher_dir`), from its cache file or computed.

    A cache file made for other weights (fingerprint mismatch) is recomputed. With `compute=False`
    a missing file raises ValueError naming the command that makes it. `data` may be None when the
    file exists. The statistics' size is `stats.nbytes`.
    """
    path = stats_path(teacher_dir, mode, epoch)
    fingerprint = model_fingerprint(model)
    if path.is_file():
        stats, meta = load_bn_stats(path)
        if meta.get("fingerprint") == fingerprint:
            return stats, path
    if not compute:
        flag = "" if epoch is None else f" --teacher-epoch {epoch}"
        raise ValueError(
            f"class statistics ({mode}) for teacher {teacher_dir} are missing or stale ({path.name}); compute them "
            f"with `python -m distill_core bnstats --teacher {teacher_dir}{flag} --mode {mode} --run-dir runs/<name>`, "
            "or allow computing them (compute_stats: true)"
        )
    if data is None:
        raise ValueError(f"{path} is missing: pass the training data to compute class statistics")
    from ..device import make_generator

    device = next(model.parameters()).device
    stats = compute_class_stats(model, data.train.images, data.train.labels, data.info.num_classes, mode,
                                batch_size, make_generator(seed, device), data.info, on_progress=on_progress)
    save_bn_stats(path, stats, fingerprint=fingerprint, dataset=data.info.name, teacher_epoch=epoch)
    return stats, path


# ---------------------------------------------------------------------------------------------
# the `bnstats` stage


@dataclass(frozen=True)
class BNStatsConfig:
    teacher: str = knob("", "teacher run folder, e.g. runs/digits-teacher")
    teacher_epoch: int | None = knob(None, "teacher checkpoint epoch (>= 1); None = the final teacher")
    mode: str = knob("exact", "exact (true class mean/variance, one pass) | reference (the LPLD reference code's "
                              "EMA: zeros/ones start, biased variance, momentum 0.1) | ema_unbiased (EMA from each "
                              "class's first batch, unbiased variance)", choices=MODES)
    dataset: str | None = knob(None, "dataset spec of the real images; None = the one the teacher was trained on")
    batch_size: int = knob(256, "images per forward pass; typical 256")
    seed: int = knob(0, "seed of the EMA modes' shuffling and augmentation")
    device: str = knob("auto", "auto | cpu | cuda[:N]")

    def __post_init__(self):
        check_teacher_epoch(self.teacher_epoch)
        check_int("batch_size", self.batch_size)
        check_int("seed", self.seed, minimum=0)
        check_stats_mode(self.mode)
        check_choices(self)


def run_bnstats(cfg: BNStatsConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: compute class statistics beside the teacher run; the job record goes to `run_dir`."""
    from .. import jobs
    from ..device import resolve_device
    from ..teacher import check_teacher_sanity, load_teacher, teacher_dataset_spec

    if not cfg.teacher:
        raise ValueError("teacher must name a teacher run folder, e.g. --teacher runs/digits-teacher")
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        model, spec, _ = load_teacher(cfg.teacher, cfg.teacher_epoch, device)
        data = load_dataset(cfg.dataset or teacher_dataset_spec(cfg.teacher))
        check_teacher_sanity(model, data)
        stats, path = load_or_compute_class_stats(cfg.teacher, model, data, cfg.mode, cfg.teacher_epoch, True,
                                                  cfg.seed, cfg.batch_size, ctx.report)
        return {"path": str(path), "mode": cfg.mode, "bytes": stats.nbytes, "layers": len(stats.layers),
                "classes": stats.rows, "images": int(stats.count.sum())}

    return jobs.run_stage("bnstats", cfg, run_dir, body, device, cfg.seed, resume, overwrite)
