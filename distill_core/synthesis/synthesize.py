"""Recover: optimise synthetic images so a BN teacher's batch statistics match target statistics.

Loss of one statistics group X_g (Xiao & He 2024, eq. for class-wise supervision; SRe2L for global):

    L_g = CE(f(A(X_g)), y_g) + alpha * sum_l w_l (||mu_l(A(X_g)) - mu*_l||_2 + ||sigma2_l(A(X_g)) - sigma2*_l||_2)

with mu_l, sigma2_l the mean and biased variance of BN layer l's input over (N, H, W) of the group,
plain (not squared) L2 norms over channels, w_1 = `first_bn_multiplier` and w_l = 1 otherwise,
CE the mean over the group, the teacher in eval mode. A is one random-resized crop + flip + roll
(jitter) shared by the group and redrawn every iteration. Targets mu*, sigma2* are the teacher's
running statistics (`statistics=global`) or the group's class statistics (`statistics=class`).

Groups ("units"): `class_wise` batching makes one unit per class (its IPC images); `cross_class`
(SRe2L) cuts the images in IPC-major order (one image of each class, then the next...) into mixed
batches of `batch_size`. Because the teacher is in eval mode, samples do not interact in the forward
pass, so G units share one forward pass and their statistics come from one reshape to [G, n, ...]:
the same optimisation as one unit per pass. Every unit draws its initial images and its augmentation
from its own generator keyed by (seed, unit), so results do not depend on G, on the class subset or
on how units are sharded over processes. Pixels are optimised as z = (x - mean) / std with Adam
(betas 0.5, 0.9), cosine learning rate to 0, z clipped to the valid pixel range after each step.
The loss of a pass is the sum of its groups' losses, so each image gets exactly its own group's gradient.
The step runs eagerly or compiled (`compile`, `channels_last`, `amp`; see `synthesis.step`).

The run-folder job `run_synthesize` is in `synthesis.run`. A run folder holds images.pt
(imageset schema; method = preset), losses.pt (CE and BN term [units, iterations]) and losses.csv,
grids/class_XXXX.png, partial/unit_XXXXX.pt (each finished unit, written atomically; --resume
skips them) and metrics.json. Scale-out, one process per GPU, units round-robin over ranks:
    torchrun --nproc_per_node=K -m distill_core synthesize --teacher runs/T --preset lpld --run-dir runs/S
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import augment
from ..compiled import CHANNELS_LAST_HELP, COMPILE_HELP, COMPILE_MODES, to_layout
from ..config import check_choices, check_int, check_positive, check_range, check_teacher_epoch, knob
from ..data import DatasetInfo, ImageSet
from ..device import AMP_MODES, autocast
from .bn_stats import MODES as STATS_MODES
from .bn_stats import BNStatistics, check_stats_mode
from .hooks import BNInputCapture
from .step import PixelAdam, RecoverStep, cosine_schedule

PRESETS: dict[str, tuple[str, str] | None] = {
    "sre2l": ("cross_class", "global"), "+C": ("class_wise", "global"), "lpld": ("class_wise", "class"), "custom": None,
}
PRESET_FIELDS = ("batching", "statistics")  # what a preset sets
CUSTOM_DEFAULTS = ("class_wise", "class")  # preset custom: batching and statistics when not given
BATCHING = ("cross_class", "class_wise")
STATISTICS = ("global", "class")
MAX_PASS_IMAGES = 1024  # beyond this a forward pass gains no throughput, only memory
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class SynthesisConfig:
    teacher: str = knob("", "teacher run folder, e.g. runs/digits-teacher")
    teacher_epoch: int | None = knob(None, "teacher checkpoint epoch; None = the final teacher",
                                     label="Teacher checkpoint epoch", advanced=True)
    dataset: str | None = knob(None, "dataset spec of the real images (class statistics, init=real, sanity check); "
                                     "None = the teacher's", label="Real data (default: the teacher's)", advanced=True)
    preset: str = knob("lpld", "sre2l (cross_class + global) | +C (class_wise + global) | lpld (class_wise + class) | "
                               "custom (use batching/statistics as given)", choices=tuple(PRESETS))
    batching: str | None = knob(None, "class_wise (one class per statistics group) or cross_class (SRe2L mixed "
                                      "batches); None = the preset's (custom: class_wise). Every preset but custom "
                                      "sets it and refuses another value", choices=BATCHING,
                                label="Batching", advanced=True)
    statistics: str | None = knob(None, "class (class-conditional BN statistics) or global (running statistics); "
                                        "None = the preset's (custom: class). Every preset but custom sets it and "
                                        "refuses another value", choices=STATISTICS,
                                  label="BN statistics", advanced=True)
    stats_mode: str = knob("exact", "class statistics: exact (true class mean/variance, one pass) | reference (the LPLD "
                                    "reference code's EMA: zeros/ones start, biased variance) | ema_unbiased (EMA from "
                                    "each class's first batch, unbiased variance)", choices=STATS_MODES,
                           label="Class statistics estimator", advanced=True)
    ipc: int = knob(10, "synthetic images per class; typical 10 or 50", label="Images per class (IPC)")
    iterations: int = knob(300, "optimisation steps per image; 300 for digits/Fashion-MNIST, 4000 for ImageNet",
                           label="Iterations per image")
    lr: float = knob(0.25, "Adam learning rate on normalised pixels, cosine-decayed to 0; 0.25 (ImageNet-1K, "
                           "digits, Fashion-MNIST), 0.1 (Tiny-ImageNet)", label="Learning rate (Adam, on pixels)")
    bn_weight: float = knob(0.1, "alpha, weight of the BN term; 0.1 (digits, Fashion-MNIST), 0.01 (ImageNet-1K), "
                                 "0.05 (Tiny-ImageNet)", label="BN loss weight α")
    first_bn_multiplier: float = knob(10.0, "w_1, extra weight of the first BN layer's term; 10",
                                      label="First BN layer weight w₁", advanced=True)
    bn_loss_norm: str = knob("sum", "sum: sum_l w_l(...) as the papers; mean: average over layers of the terms "
                                    "divided by sqrt(channels), so alpha transfers across architectures",
                             choices=("sum", "mean"), label="BN loss over layers", advanced=True)
    jitter: int | None = knob(None, "max roll in pixels per step; None = 32 px scaled to the image size (1 px at 8 px)",
                              label="Jitter, max roll (px; empty = auto)", advanced=True)
    crop_scale: tuple[float, float] = knob((0.5, 1.0), "random-resized-crop area range; (0.08, 1) for ImageNet, "
                                                       "(0.5, 1) for 8-28 px images",
                                           label="Crop area range (min, max)", advanced=True)
    crop_mode: str = knob("continuous", "continuous: boxes anywhere, bilinear grid_sample (differentiable in the box); "
                                        "pixel: whole-pixel boxes and antialiased resize, as torchvision's "
                                        "RandomResizedCrop in the reference code", choices=augment.CROP_MODES,
                          label="Crop sampling", advanced=True)
    flip: bool = knob(True, "random horizontal flip per step (only where the dataset allows flips)",
                      label="Random horizontal flip", advanced=True)
    init: str = knob("noise", "noise: N(0,1) in normalised space; real: random real images of the class",
                     choices=("noise", "real"), label="Initial images", advanced=True)
    classes: tuple[int, ...] | None = knob(None, "class indices to synthesise; None = all",
                                           label="Classes to synthesise (empty = all)", advanced=True)
    group_size: int | None = knob(None, "statistics groups per forward pass (G); None = as many as memory allows",
                                  label="Groups per forward pass G (empty = auto)", advanced=True)
    batch_size: int | None = knob(None, "cross_class only: images per mixed batch; None = min(classes, 100) (SRe2L)",
                                  label="Mixed-batch size (cross-class; empty = auto)", advanced=True)
    compute_stats: bool = knob(True, "compute missing class statistics (one pass over the training set)",
                               label="Compute missing class statistics", advanced=True)
    seed: int = knob(0, "seed of the initial images and every augmentation draw", label="Seed")
    device: str = knob("auto", "auto | cpu | cuda[:N]", label="Device", advanced=True)
    amp: str = knob("off", "mixed precision of the teacher forward pass: off | bf16", choices=AMP_MODES,
                    label="Mixed precision", advanced=True)
    compile: str = knob("off", COMPILE_HELP, choices=COMPILE_MODES, label="Compile the recover step", advanced=True)
    channels_last: bool = knob(False, CHANNELS_LAST_HELP, label="Channels-last layout", advanced=True)

    def __post_init__(self):
        preset = PRESETS.get(self.preset)
        for name, value in zip(PRESET_FIELDS, preset or CUSTOM_DEFAULTS):
            given = getattr(self, name)
            if preset is not None and given is not None and given != value:
                raise ValueError(f"preset {self.preset} sets {name}={value}, but {name}={given} was given; leave "
                                 f"{name} unset or use preset custom")
            if given is None:
                object.__setattr__(self, name, value)
        check_stats_mode(self.stats_mode)
        check_choices(self)
        if self.batching == "cross_class" and self.statistics == "class":
            raise ValueError("cross_class batches mix classes, so they match global statistics; "
                             "use statistics=global or batching=class_wise")
        if self.compile != "off" and self.crop_mode == "pixel":
            raise ValueError("compile needs crop_mode continuous: pixel crops slice each box on the host, which "
                             "torch.compile cannot trace; use compile=off or crop_mode=continuous")
        check_teacher_epoch(self.teacher_epoch)
        check_int("ipc", self.ipc)
        check_int("iterations", self.iterations)
        check_positive("lr", self.lr)
        check_positive("bn_weight", self.bn_weight, allow_zero=True)
        check_positive("first_bn_multiplier", self.first_bn_multiplier, allow_zero=True)
        if self.jitter is not None:
            check_int("jitter", self.jitter, minimum=0)
        check_range("crop_scale", self.crop_scale, 1e-3, 1.0)
        if isinstance(self.classes, (str, int)):  # "0,3,7" or "0 3 7" from a command line
            object.__setattr__(self, "classes", _parse_classes(self.classes))
        if self.classes is not None and (len(self.classes) == 0 or len(set(self.classes)) != len(self.classes)):
            raise ValueError(f"classes must be distinct class indices (or None for all), got {self.classes!r}")
        for name in ("group_size", "batch_size"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)

    @property
    def method(self) -> str:
        """The image set's method name: the preset."""
        return self.preset

    def derived_fields(self) -> dict[str, str]:
        """The fields the preset set ({field: why}); config.yaml marks them."""
        if PRESETS.get(self.preset) is None:
            return {}
        return {name: f"set by preset {self.preset}" for name in PRESET_FIELDS}


def _parse_classes(text: str | int) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in str(text).replace(",", " ").split())
    except ValueError:
        raise ValueError(f"classes must be integers like '0,3,7', got {text!r}") from None


# ---------------------------------------------------------------------------------------------
# units: the statistics groups, and their deterministic random draws


@dataclass(frozen=True)
class Unit:
    """One statistics group: `slots` index the output images (class-major order); `key` seeds its draws."""

    key: int  # class index (class_wise) or mixed-batch index (cross_class)
    slots: torch.Tensor  # int64 [n]
    labels: torch.Tensor  # int64 [n]
    target_row: int  # row of the BN statistics it matches (class index, or 0 for global)


@dataclass
class UnitResult:
    key: int
    slots: torch.Tensor  # int64 [n]
    labels: torch.Tensor  # int64 [n]
    images: torch.Tensor  # float32 [n, C, H, W] in [0, 1]
    ce: torch.Tensor  # float32 [T] cross-entropy per iteration
    bn: torch.Tensor  # float32 [T] BN term (before alpha) per iteration


@dataclass
class SynthesisResult:
    images: torch.Tensor  # float32 [N, C, H, W] in [0, 1], class-major order, of the finished units
    labels: torch.Tensor  # int64 [N]
    units: list[UnitResult] = field(default_factory=list)
    group_size: int = 1
    wall_s: float = 0.0
    image_iterations: int = 0  # images optimised x iterations, in this call


def resolve_classes(cfg: SynthesisConfig, info: DatasetInfo) -> list[int]:
    classes = list(range(info.num_classes)) if cfg.classes is None else sorted(cfg.classes)
    bad = [c for c in classes if not 0 <= c < info.num_classes]
    if bad:
        raise ValueError(f"classes {bad} are outside the dataset's {info.num_classes} classes (0..{info.num_classes - 1})")
    return classes


def plan_units(cfg: SynthesisConfig, info: DatasetInfo) -> list[Unit]:
    """The statistics groups of a synthesis, in processing order (pure and deterministic)."""
    classes, n = resolve_classes(cfg, info), cfg.ipc
    labels = torch.tensor(classes).repeat_interleave(n)
    if cfg.batching == "class_wise":
        return [Unit(c, torch.arange(i * n, (i + 1) * n), labels[i * n : (i + 1) * n],
                     c if cfg.statistics == "class" else 0) for i, c in enumerate(classes)]
    order = torch.arange(len(labels)).view(len(classes), n).t().reshape(-1)  # IPC-major: one image per class
    size = cfg.batch_size or min(len(classes), 100)
    return [Unit(b, order[i : i + size], labels[order[i : i + size]], 0)
            for b, i in enumerate(range(0, len(order), size))]


def unit_generator(base: int, tag: str, key: int | str) -> torch.Generator:
    """A CPU generator for (base seed, tag, key): draws independent of G, sharding and device."""
    digest = hashlib.sha256(f"{base}:{tag}:{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def auto_jitter(cfg: SynthesisConfig, size: int) -> int:
    return cfg.jitter if cfg.jitter is not None else max(1, round(size * 32 / 224))


@dataclass
class _Draws:
    """A unit's augmentation for all T iterations: boxes [T, 4], flips [T] bool, shifts [T, 2] int."""

    boxes: torch.Tensor
    flips: torch.Tensor
    shifts: torch.Tensor


def draw_augmentation(cfg: SynthesisConfig, info: DatasetInfo, g: torch.Generator) -> _Draws:
    t, j = cfg.iterations, auto_jitter(cfg, info.image_size)
    boxes = augment.sample_crops_by_mode(cfg.crop_mode, t, info.image_size, tuple(cfg.crop_scale), g)
    flips = augment.sample_flips(t, 0.5, g) if cfg.flip and info.flip else torch.zeros(t, dtype=torch.bool)
    shifts = torch.randint(-j, j + 1, (t, 2), generator=g)
    return _Draws(boxes, flips, shifts)


def initial_image(cfg: SynthesisConfig, info: DatasetInfo, c: int, j: int, base: int,
                  real: ImageSet | None) -> torch.Tensor:
    """Starting point [C, H, W] (normalised space, before clipping) of image j of class c."""
    if cfg.init == "noise":
        g = unit_generator(base, "init", f"{c}:{j}")
        return torch.randn(info.channels, info.image_size, info.image_size, generator=g)
    if real is None:
        raise ValueError("init=real needs the real training images")
    idx = real.class_indices(c)
    if cfg.ipc > len(idx):
        raise ValueError(f"init=real needs {cfg.ipc} images of class {c}, which has {len(idx)}; lower ipc or use noise")
    pick = idx[torch.randperm(len(idx), generator=unit_generator(base, "init", c))[j]]
    x = real.images[pick].float() / 255.0
    return (x - _channel(info.mean)[0]) / _channel(info.std)[0]


def _channel(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------------
# the loss of G groups in one forward pass


def batched_roll(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """torch.roll of each image [N, C, H, W] by its own (dy, dx) in shifts [N, 2] (circular)."""
    n, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None] - shifts[:, :1]) % h  # [N, H]
    cols = (torch.arange(w, device=x.device)[None] - shifts[:, 1:]) % w  # [N, W]
    x = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def group_bn_loss(inputs: list[torch.Tensor], mean: list[torch.Tensor], var: list[torch.Tensor], groups: int,
                  first_multiplier: float, norm: str = "sum") -> torch.Tensor:
    """BN term per group [G]: sum_l w_l (||mu_l,g - mu*_l,g||_2 + ||sigma2_l,g - sigma2*_l,g||_2).

    inputs[l]: BN input [G*n, C_l, ...] with group g's samples contiguous; mean[l], var[l]: targets [G, C_l].
    Statistics are over (n, H, W) of each group; variance biased. norm "mean" divides each layer's term
    by sqrt(C_l) and averages over layers instead of summing.
    """
    total = torch.zeros(groups, device=inputs[0].device)
    for l, a in enumerate(inputs):
        c = a.shape[1]
        a, dims = _group_view(a.float(), groups)
        count = a.numel() // (groups * c)
        m = a.sum(dims) / count  # [G, C]; contiguous sums are ~5x faster than var_mean's backward on CPU
        v = (a * a).sum(dims) / count - m * m
        term = torch.linalg.vector_norm(m - mean[l], dim=1) + torch.linalg.vector_norm(v - var[l], dim=1)
        if norm == "mean":
            term = term / math.sqrt(c)
        total = total + (first_multiplier if l == 0 else 1.0) * term
    return total / len(inputs) if norm == "mean" else total


def _group_view(a: torch.Tensor, groups: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """BN input [G*n, C, ...] as a view [G, n, C, HW], or [G, n, HW, C] when it is channels-last, and the
    dims the statistics sum over: so they read it once, in its own layout, without a copy."""
    n, c = a.shape[0] // groups, a.shape[1]
    if a.ndim == 4 and a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous():
        return a.permute(0, 2, 3, 1).reshape(groups, n, -1, c), (1, 2)
    return a.reshape(groups, n, c, -1), (1, 3)


def recover_losses(teacher: nn.Module, capture: BNInputCapture, z: torch.Tensor, draws: tuple[torch.Tensor, ...],
                   y: torch.Tensor, t_mean: list[torch.Tensor], t_var: list[torch.Tensor], mean: torch.Tensor,
                   std: torch.Tensor, cfg: SynthesisConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """CE [G] and BN term [G] of one iteration of G groups (the module docstring's L_g without alpha).

    z: normalised images [G*n, C, H, W]; draws: this iteration's crop boxes [G*n, 4], flips [G*n]
    and rolls [G*n, 2]; y: labels [G*n]; t_mean/t_var: per layer the targets [G, C_l]; mean/std:
    [1, C, 1, 1]. `RecoverStep` runs it with the hooks of `capture` open, eagerly or compiled.
    """
    boxes, flips, shifts = draws
    views = batched_roll(augment.apply_crops_by_mode(cfg.crop_mode, z, boxes, flips), shifts) * std + mean
    with autocast(z.device, cfg.amp):
        logits = teacher(to_layout(views, cfg.channels_last))
    g = t_mean[0].shape[0]
    ce = F.cross_entropy(logits.float(), y, reduction="none").view(g, -1).mean(1)
    bn = group_bn_loss(capture.captured(), t_mean, t_var, g, cfg.first_bn_multiplier, cfg.bn_loss_norm)
    capture.clear()
    return ce, bn


@dataclass
class _Pass:
    """G units of n images each, optimised together; draws stacked as boxes [G, T, 4], flips [G, T], shifts [G, T, 2]."""

    units: list[Unit]
    z0: torch.Tensor  # [G*n, C, H, W] normalised-space start
    draws: _Draws

    def to(self, device: torch.device) -> _Draws:
        return _Draws(self.draws.boxes.to(device), self.draws.flips.to(device), self.draws.shifts.to(device))


def _run_pass(cfg: SynthesisConfig, step: RecoverStep, stats: BNStatistics, info: DatasetInfo, p: _Pass,
              device: torch.device, report: Callable[[int, torch.Tensor, torch.Tensor], None]):
    """Optimise one pass; returns (pixel images [G*n, ...] on CPU, ce [G, T], bn [G, T])."""
    g, n, t_max = len(p.units), len(p.units[0].slots), cfg.iterations
    mean, std = _channel(info.mean).to(device), _channel(info.std).to(device)
    lo, hi = (0 - mean) / std, (1 - mean) / std
    z = p.z0.to(device).clamp(lo, hi).requires_grad_(True)
    y = torch.cat([u.labels for u in p.units]).to(device)
    rows = torch.tensor([u.target_row for u in p.units], device=device)
    t_mean = [m.to(device).index_select(0, rows) for m in stats.mean]
    t_var = [v.to(device).index_select(0, rows) for v in stats.var]
    adam = PixelAdam(z, cosine_schedule(cfg.lr, t_max), lo, hi, step.compile)
    ce_hist = torch.zeros(g, t_max, device=device)
    bn_hist = torch.zeros(g, t_max, device=device)
    check_every = 1 if device.type == "cpu" else 25
    draws = p.to(device)  # one host-to-device copy per pass, not per step
    with step:
        for it in range(t_max):
            drawn = tuple(d[:, it].repeat_interleave(n, 0) for d in (draws.boxes, draws.flips, draws.shifts))
            ce, bn = step.losses(z, drawn, y, t_mean, t_var, mean, std, cfg)
            loss = (ce + cfg.bn_weight * bn).sum()
            (grad,) = torch.autograd.grad(loss, z)
            with torch.no_grad():
                adam.step(z, grad)
                ce_hist[:, it], bn_hist[:, it] = ce.detach(), bn.detach()
            if (it + 1) % check_every == 0 or it + 1 == t_max:
                _check_finite(ce_hist, bn_hist, it + 1, p.units)
                report(it + 1, ce_hist[:, it], bn_hist[:, it])
    images = (z.detach() * std + mean).clamp(0, 1).float().cpu()
    return images, ce_hist.cpu(), bn_hist.cpu()


def _check_finite(ce: torch.Tensor, bn: torch.Tensor, upto: int, units: list[Unit]) -> None:
    bad = ~(torch.isfinite(ce[:, :upto]) & torch.isfinite(bn[:, :upto]))
    if bad.any():
        g, it = [int(v) for v in torch.nonzero(bad)[0]]
        raise FloatingPointError(f"synthesis loss became NaN/inf at iteration {it + 1} (unit {units[g].key}); "
                                 "lower lr or bn_weight")


# ---------------------------------------------------------------------------------------------
# G from memory


def available_memory(device: torch.device) -> int:
    """Free bytes usable for a pass: 80% of free GPU memory, or half of MemAvailable on CPU."""
    if device.type == "cuda":
        return int(0.8 * torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
        return int(0.5 * info["MemAvailable"])
    except (OSError, KeyError, ValueError):
        return 4 << 30


def bytes_per_image(teacher: nn.Module, info: DatasetInfo, device: torch.device, amp: str) -> int:
    """Estimated bytes one image costs in a synthesis step: every module output, 3 times (kept, grad, stats)."""
    total = 0

    def count(module, args, out):
        nonlocal total
        if isinstance(out, torch.Tensor) and not list(module.children()):
            total += out.numel() * out.element_size()

    handles = [m.register_forward_hook(count) for m in teacher.modules()]
    try:
        with torch.no_grad(), autocast(device, amp):
            teacher(torch.zeros(1, info.channels, info.image_size, info.image_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return 3 * total + 16 * info.channels * info.image_size ** 2


def choose_group_size(cfg: SynthesisConfig, teacher: nn.Module, info: DatasetInfo, n: int, units: int,
                      device: torch.device) -> int:
    """G: cfg.group_size, or as many n-image groups as fit in memory (at most MAX_PASS_IMAGES images)."""
    per_image = bytes_per_image(teacher, info, device, cfg.amp)
    budget = available_memory(device)
    if n * per_image > budget:
        raise ValueError(f"one group of {n} images needs about {n * per_image / 2**30:.2f} GiB but only "
                         f"{budget / 2**30:.2f} GiB is available on {device}; lower ipc (or batch_size)")
    if cfg.group_size is not None:
        return min(cfg.group_size, units)
    return max(1, min(units, budget // (n * per_image), MAX_PASS_IMAGES // n))


# ---------------------------------------------------------------------------------------------
# the entry function


def synthesize(
    cfg: SynthesisConfig,
    teacher: nn.Module,
    stats: BNStatistics,
    device: torch.device,
    generator: torch.Generator,
    on_progress: ProgressFn = lambda p, m: None,
    real: ImageSet | None = None,
    info: DatasetInfo | None = None,
) -> SynthesisResult:
    """Synthesise cfg.ipc images per class with `teacher` (moved to `device`, kept in eval mode).

    stats: target statistics (K rows for statistics=class, 1 row for global). real: training images
    (init=real only). info: the teacher's dataset metadata (`spec.info`; required). The generator
    gives one base seed (`base_seed`); every unit's draws come from CPU generators keyed by (base
    seed, unit), so results are the same for any G, and initial images and augmentations the same on
    CPU and CUDA. Returns all images in class-major order with their per-iteration losses.
    A job that runs a subset of the units (one rank's shard, what a resume still lacks) calls
    `synthesize_units` with the same base seed.
    """
    if info is None:
        raise ValueError("pass the dataset info (spec.info of the teacher) to synthesize")
    return synthesize_units(cfg, teacher, stats, info, plan_units(cfg, info), device, base_seed(generator),
                            on_progress, real)


def base_seed(generator: torch.Generator) -> int:
    """The one number drawn from a synthesis's generator; every unit's draws derive from it."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def synthesize_units(
    cfg: SynthesisConfig,
    teacher: nn.Module,
    stats: BNStatistics,
    info: DatasetInfo,
    units: list[Unit],
    device: torch.device,
    base: int,
    on_progress: ProgressFn = lambda p, m: None,
    real: ImageSet | None = None,
    on_unit: Callable[[UnitResult], None] = lambda r: None,
) -> SynthesisResult:
    """Optimise `units` (any subset of `plan_units(cfg, info)`) with draws keyed by `base`.

    Units of one size share passes of G units (`choose_group_size`); `on_unit` gets each finished
    unit as soon as its pass ends (the job saves it). Returns the images of these units in
    class-major order; image_iterations counts this call's work.
    """
    _check_stats(cfg, stats, info)
    teacher = teacher.to(device).eval()
    flags = [p.requires_grad for p in teacher.parameters()]
    start, finished, group = time.perf_counter(), [], 1
    total = sum(len(u.slots) for u in units)
    try:
        teacher.requires_grad_(False)
        step = RecoverStep(teacher, recover_losses, device, cfg.compile, cfg.channels_last)
        for size in sorted({len(u.slots) for u in units}, reverse=True):
            same = [u for u in units if len(u.slots) == size]
            group = choose_group_size(cfg, teacher, info, size, len(same), device)
            for i in range(0, len(same), group):
                chunk = same[i : i + group]
                report = _pass_reporter(on_progress, chunk, sum(len(r.slots) for r in finished), total, cfg)
                images, ce, bn = _run_pass(cfg, step, stats, info, _prepare_pass(cfg, info, chunk, base, real),
                                           device, report)
                for j, u in enumerate(chunk):
                    r = UnitResult(u.key, u.slots, u.labels, images[j * size : (j + 1) * size], ce[j], bn[j])
                    finished.append(r)
                    on_unit(r)
    finally:
        for p, flag in zip(teacher.parameters(), flags):
            p.requires_grad_(flag)
    images, labels = assemble(finished)
    return SynthesisResult(images, labels, sorted(finished, key=lambda r: int(r.slots[0])), group,
                           time.perf_counter() - start, total * cfg.iterations)


def _check_stats(cfg: SynthesisConfig, stats: BNStatistics, info: DatasetInfo) -> None:
    if cfg.statistics == "class" and (stats.kind != "class" or stats.rows != info.num_classes):
        raise ValueError(f"statistics=class needs class statistics with {info.num_classes} rows; got {stats.kind} "
                         f"statistics with {stats.rows} row(s): compute them with bn_stats.compute_class_stats")
    if cfg.statistics == "global" and stats.rows != 1:
        raise ValueError(f"statistics=global matches one row of statistics (bn_stats.global_stats); got {stats.rows}")


def _prepare_pass(cfg: SynthesisConfig, info: DatasetInfo, units: list[Unit], base: int,
                  real: ImageSet | None) -> _Pass:
    z0 = [initial_image(cfg, info, c, slot % cfg.ipc, base, real)
          for u in units for slot, c in zip(u.slots.tolist(), u.labels.tolist())]
    tag = "aug-class" if cfg.batching == "class_wise" else "aug-batch"
    draws = [draw_augmentation(cfg, info, unit_generator(base, tag, u.key)) for u in units]
    stacked = _Draws(*(torch.stack([getattr(d, f) for d in draws]) for f in ("boxes", "flips", "shifts")))
    return _Pass(units, torch.stack(z0), stacked)


def _pass_reporter(on_progress: ProgressFn, units: list[Unit], before: int, total: int, cfg: SynthesisConfig):
    n = sum(len(u.slots) for u in units)
    what = "classes" if cfg.batching == "class_wise" else "batches"
    keys = f"{units[0].key}..{units[-1].key}" if len(units) > 1 else str(units[0].key)

    def report(it: int, ce: torch.Tensor, bn: torch.Tensor) -> None:
        if it % max(1, cfg.iterations // 50) and it != cfg.iterations:
            return
        frac = (before + n * it / cfg.iterations) / max(total, 1)
        on_progress(frac, f"{what} {keys}: iteration {it}/{cfg.iterations}, CE {float(ce.mean()):.3f}, "
                          f"BN {float(bn.mean()):.3f}")

    return report


def assemble(results: list[UnitResult]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [N, C, H, W] and labels [N] of finished units, in slot (class-major) order."""
    if not results:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    slots = torch.cat([r.slots for r in results])
    order = torch.argsort(slots)
    return torch.cat([r.images for r in results])[order], torch.cat([r.labels for r in results])[order]
