"""Bilevel dataset distillation with learned soft labels (Wang et al. 2018; Sucholutsky & Schonlau,
IJCNN 2021).

M synthetic samples X [M, *input], one unnormalised label vector per sample Y [M, C] (initialised
one-hot, may go negative) and T step sizes η_t = softplus(ρ_t) are learned together. Inner loop:
T unrolled SGD steps from an initialisation θ_0 (fixed, or re-sampled every outer step)
    θ_{t+1} = θ_t − η_t ∇_θ ℓ(f_θt(X), Y),   ℓ(z, Y) = mean_i Σ_c Y_ic · (−log softmax(z_i)_c)
(the reference's `cross_entropy_with_probs`; with `label_softmax` Y is replaced by softmax(Y)).
Outer loss: L = CE(f_θT(x_real), y_real) on a batch of real data, back-propagated through every
inner step by autograd (`torch.func.functional_call` with create_graph=True; no hand-written
gradients), and one Adam step on (X, Y, ρ) (lr 0.01, betas (0.5, 0.999), halved every
`lr_halve_every` outer steps). Images are unconstrained, as in the reference (`clip_pixels` projects
them into [0, 1] after each step instead).

The networks have no BatchNorm (`lenet_nobn`, `textcnn`), so f is a pure function of θ.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..config import check_choices, check_finite, check_int, check_positive, knob

Params = dict[str, torch.Tensor]
ProgressFn = Callable[[float, str], None]
INIT_MODES = ("fixed", "random")


@dataclass(frozen=True)
class BilevelConfig:
    dataset: str = knob("digits", "dataset spec: digits | fashion-mnist[:dir] | mnist | ...")
    model: str = knob("lenet_nobn", "registry model without BatchNorm: lenet_nobn (the reference) or convnet_nobn")
    model_args: dict = knob({}, "model arguments (none for lenet_nobn)")
    num_samples: int = knob(10, "M, learned synthetic samples in total (not per class); may be below the class count")
    init_classes: tuple[int, ...] = knob((), "class whose one-hot label each sample starts from; empty = i mod C")
    learn_labels: bool = knob(True, "learn the label vectors (Sucholutsky); off = fixed one-hot labels (Wang 2018)")
    label_softmax: bool = knob(False, "inner loss targets softmax(Y) instead of the unnormalised Y")
    inner_steps: int = knob(3, "T, unrolled SGD steps of the inner loop; reference MNIST: 1 step x 3 epochs = 3")
    init_lr: float = knob(0.01, "initial inner step size η_t (> 0, through softplus); reference 0.01")
    init: str = knob("fixed", "network initialisation: fixed (one θ_0) or random (re-sampled every outer step)",
                     choices=INIT_MODES)
    clip_pixels: bool = knob(False, "project images into [0, 1] after each outer step; off = unconstrained as in "
                                    "the reference (display clamps; about 15 points better on digits)")
    init_gain: float = knob(1.0, "Xavier-normal gain of θ_0 (biases 0), as the reference's init=xavier")
    outer_steps: int = knob(1000, "outer Adam steps; reference MNIST 350 epochs x 59 batches (~20k)")
    outer_batch: int = knob(1024, "real images in each outer-loss batch; reference 1024")
    lr: float = knob(0.01, "outer Adam learning rate on images, labels and step sizes; reference 0.01")
    beta1: float = knob(0.5, "Adam beta1; reference 0.5")
    beta2: float = knob(0.999, "Adam beta2; reference 0.999")
    lr_halve_every: int = knob(100, "halve the outer lr every this many outer steps (the reference: every tenth of its run)")
    train_subset: int = knob(0, "use only this many real training images for the outer loss (0 = all)")
    max_outer_loss: float = knob(1e4, "an outer loss above this (or not finite) stops the run as diverged")
    eval_nets: int = knob(5, "fresh initialisations each evaluation trains (mean ± std over them)")
    eval_standard_steps: int = knob(300, "full-batch Adam steps of the standard-schedule evaluation")
    eval_standard_lr: float = knob(1e-3, "Adam lr of the standard-schedule evaluation")
    checkpoint_every: int = knob(100, "save a resumable checkpoint every this many outer steps")
    seed: int = knob(0, "seed of θ_0, the synthetic init, the real batches and the evaluation inits")
    device: str = knob("auto", "auto | cpu | cuda[:N]")

    def __post_init__(self):
        for name in ("num_samples", "inner_steps", "outer_steps", "outer_batch", "lr_halve_every", "eval_nets",
                     "eval_standard_steps", "checkpoint_every"):
            check_int(name, getattr(self, name))
        check_int("train_subset", self.train_subset, minimum=0)
        check_int("seed", self.seed, minimum=0)
        for name in ("init_lr", "lr", "init_gain", "max_outer_loss", "eval_standard_lr"):
            check_positive(name, getattr(self, name))
        for name in ("beta1", "beta2"):
            check_finite(name, getattr(self, name))
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.init_classes and len(self.init_classes) != self.num_samples:
            raise ValueError(f"init_classes names {len(self.init_classes)} classes for {self.num_samples} samples; "
                             "give one class per sample or leave it empty")
        check_choices(self)


class Diverged(ValueError):
    """The outer loss became non-finite or exceeded `max_outer_loss`; names the outer step and what to
    lower. A ValueError, so the command line reports it in one line."""


# ---------------------------------------------------------------------------------------------
# the pieces: loss, initialisation, the unrolled inner loop


def inner_loss(logits: torch.Tensor, targets: torch.Tensor, softmax: bool = False) -> torch.Tensor:
    """ℓ(z, Y) = mean_i Σ_c Y_ic · (−log softmax(z_i)_c); logits and targets [M, C].

    Y is used as given (unnormalised, entries may be negative), as in the reference's
    `cross_entropy_with_probs`; `softmax` turns each row into a distribution first."""
    weights = targets.softmax(dim=1) if softmax else targets
    return -(weights * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def init_params(model: nn.Module, generator: torch.Generator, gain: float = 1.0) -> Params:
    """A fresh θ_0 for `model`'s parameters: Xavier-normal weights (tensors with >= 2 dims), zero biases.
    Drawn on the CPU from `generator`, so θ_0 depends on the generator alone."""
    out = {}
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(p)
            std = gain * math.sqrt(2.0 / (fan_in + fan_out))
            value = torch.randn(p.shape, generator=generator, dtype=p.dtype) * std
        else:
            value = torch.zeros(p.shape, dtype=p.dtype)
        out[name] = value.to(p.device)
    return out


def step_sizes(raw_lrs: torch.Tensor) -> torch.Tensor:
    """η = softplus(ρ) [T]."""
    return F.softplus(raw_lrs)


def raw_from_step_size(lr: float, steps: int, dtype=torch.float32) -> torch.Tensor:
    """ρ with softplus(ρ) = lr, repeated [steps]; lr must be a finite number > 0."""
    check_positive("init_lr", lr)
    return torch.full((steps,), lr + math.log(-math.expm1(-lr)), dtype=dtype)  # softplus⁻¹, stable for large lr


def unroll(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor, targets: torch.Tensor,
           lrs: torch.Tensor, softmax: bool = False, create_graph: bool = True) -> Params:
    """θ_T after len(lrs) SGD steps θ_{t+1} = θ_t − η_t ∇ℓ(f_θt(x), targets) from θ_0 = `params`.

    With create_graph the result stays differentiable in x, targets, lrs (and θ_0) through every
    step; without it each step is detached (evaluation)."""
    names = list(params)
    theta = {k: v if v.requires_grad else v.detach().requires_grad_(True) for k, v in params.items()}
    for t in range(len(lrs)):
        with torch.enable_grad():
            loss = inner_loss(functional_call(model, (theta, buffers), (x,)), targets, softmax)
            grads = torch.autograd.grad(loss, [theta[k] for k in names], create_graph=create_graph)
        if create_graph:
            theta = {k: theta[k] - lrs[t] * g for k, g in zip(names, grads)}
        else:
            theta = {k: (theta[k] - lrs[t] * g).detach().requires_grad_(True) for k, g in zip(names, grads)}
    return theta


def outer_loss(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE of the trained network f_θT on a real batch (x, y int64 [B])."""
    return F.cross_entropy(functional_call(model, (params, buffers), (x,)), y)


# ---------------------------------------------------------------------------------------------
# the outer optimisation


@dataclass
class OuterState:
    """Everything a resumed run needs: the learned tensors, Adam's state, θ_0 and the generator."""

    x: torch.Tensor  # [M, *input] synthetic samples
    labels: torch.Tensor  # [M, C] unnormalised label vectors
    raw_lrs: torch.Tensor  # [T] ρ, η = softplus(ρ)
    theta0: Params  # fixed initialisation (also kept for init=random: the evaluation's first net)
    step: int = 0
    optimizer: dict = field(default_factory=dict)  # torch.optim.Adam state_dict
    generator: torch.Tensor | None = None  # CPU generator state
    history: list = field(default_factory=list)  # rows {step, outer_loss, lr, mean_step_size}

    def to_dict(self) -> dict:
        return {"x": self.x.detach().cpu(), "labels": self.labels.detach().cpu(),
                "raw_lrs": self.raw_lrs.detach().cpu(), "theta0": {k: v.detach().cpu() for k, v in self.theta0.items()},
                "step": self.step, "optimizer": self.optimizer, "generator": self.generator,
                "history": list(self.history)}

    @staticmethod
    def from_dict(d: dict) -> "OuterState":
        return OuterState(d["x"], d["labels"], d["raw_lrs"], dict(d["theta0"]), int(d["step"]), d["optimizer"],
                          d["generator"], list(d["history"]))


def one_hot_init(num_samples: int, num_classes: int, init_classes: tuple[int, ...] = ()) -> torch.Tensor:
    """[M, C] one-hot rows: sample i starts as class init_classes[i] (default i mod C)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    classes = list(init_classes) or [i % num_classes for i in range(num_samples)]
    bad = [c for c in classes if not 0 <= int(c) < num_classes]
    if bad:
        raise ValueError(f"init_classes {bad} are not classes of a {num_classes}-class dataset (0..{num_classes - 1})")
    return F.one_hot(torch.tensor(classes, dtype=torch.long), num_classes).float()


def initial_state(cfg: BilevelConfig, model: nn.Module, x0: torch.Tensor, num_classes: int,
                  generator: torch.Generator) -> OuterState:
    """The outer state before step 1: given synthetic init x0, one-hot labels, η_t = init_lr, θ_0."""
    labels = one_hot_init(cfg.num_samples, num_classes, cfg.init_classes)
    return OuterState(x0.clone(), labels, raw_from_step_size(cfg.init_lr, cfg.inner_steps),
                      init_params(model, generator, cfg.init_gain))


def _halved_lr(cfg: BilevelConfig, step: int) -> float:
    return cfg.lr * 0.5 ** (step // cfg.lr_halve_every)


def distill(cfg: BilevelConfig, model: nn.Module, real_x: torch.Tensor, real_y: torch.Tensor, state: OuterState,
            device: torch.device, generator: torch.Generator, on_progress: ProgressFn | None = None,
            on_checkpoint: Callable[[OuterState], None] | None = None,
            bounds: tuple[float, float] | None = (0.0, 1.0)) -> OuterState:
    """Run outer steps state.step+1 .. cfg.outer_steps; returns the final state.

    real_x [N, *input] float (pixel space for images), real_y int64 [N], on `device` or CPU.
    `bounds` projects the samples into a range after each step (None for free text embeddings).
    Raises Diverged naming the outer step when the loss is non-finite or above max_outer_loss;
    the state handed to `on_checkpoint` is always finite."""
    model = model.to(device)
    buffers = {k: v.to(device) for k, v in model.named_buffers()}
    x = state.x.to(device).requires_grad_(True)
    labels = state.labels.to(device).requires_grad_(cfg.learn_labels)
    raw = state.raw_lrs.to(device).requires_grad_(True)
    theta0 = {k: v.to(device) for k, v in state.theta0.items()}
    opt = torch.optim.Adam([x, labels, raw] if cfg.learn_labels else [x, raw], lr=cfg.lr,
                           betas=(cfg.beta1, cfg.beta2))
    if state.optimizer:
        opt.load_state_dict(state.optimizer)
    if state.generator is not None:
        generator.set_state(state.generator)
    n, start, t0 = len(real_y), time.perf_counter(), state.step
    history = list(state.history)

    def snapshot(step: int) -> OuterState:
        return OuterState(x.detach().clone(), labels.detach().clone(), raw.detach().clone(), state.theta0, step,
                          opt.state_dict(), generator.get_state(), list(history))

    for step in range(state.step + 1, cfg.outer_steps + 1):
        for group in opt.param_groups:
            group["lr"] = _halved_lr(cfg, step - 1)
        idx = torch.randint(n, (min(cfg.outer_batch, n),), generator=generator)
        init = theta0 if cfg.init == "fixed" else {k: v.to(device) for k, v in
                                                   init_params(model, generator, cfg.init_gain).items()}
        theta = unroll(model, init, buffers, x, labels, step_sizes(raw), cfg.label_softmax)
        loss = outer_loss(model, theta, buffers, real_x[idx].to(device), real_y[idx].to(device))
        value = float(loss.detach())
        if not math.isfinite(value) or value > cfg.max_outer_loss:
            raise Diverged(f"outer loss diverged at outer step {step} of {cfg.outer_steps} (loss {value:.4g} > "
                           f"{cfg.max_outer_loss:g} or not finite); lower lr ({cfg.lr}) or init_lr ({cfg.init_lr}), "
                           "or fewer inner_steps. Checkpoints before this step are kept.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            if bounds is not None:
                x.clamp_(*bounds)
        if not all(torch.isfinite(t).all() for t in (x, labels, raw)):
            raise Diverged(f"images, labels or step sizes became NaN/inf at outer step {step}; lower lr ({cfg.lr})")
        history.append({"step": step, "outer_loss": value, "lr": _halved_lr(cfg, step - 1),
                        "mean_step_size": float(step_sizes(raw.detach()).mean())})
        if on_progress is not None:
            rate = (step - t0) / max(time.perf_counter() - start, 1e-9)
            on_progress(step / cfg.outer_steps, f"outer step {step}/{cfg.outer_steps}, loss {value:.4f}, "
                                                f"{rate:.1f} steps/s")
        if on_checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == cfg.outer_steps):
            on_checkpoint(snapshot(step))
    return snapshot(cfg.outer_steps)


# ---------------------------------------------------------------------------------------------
# the entry function


@dataclass
class BilevelInputs:
    """What the method distils: real train/test tensors, the model, how synthetic samples start."""

    model: nn.Module  # no BatchNorm; its parameters' values are ignored (θ_0 comes from init_params)
    train_x: torch.Tensor  # [N, *input] float (images in [0, 1]; text: embedded [N, L, D])
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    sample_init: Callable[[int, torch.Generator], torch.Tensor]  # (M, generator) -> [M, *input]
    bounds: tuple[float, float] | None = (0.0, 1.0)  # projection range of the samples; None = free


@dataclass
class BilevelResult:
    state: OuterState  # final learned tensors (x, labels, raw_lrs, θ_0) and the loss history
    evaluation: dict  # see bilevel_eval.evaluate
    wall_s: float

    @property
    def step_sizes(self) -> torch.Tensor:
        return step_sizes(self.state.raw_lrs)


def bilevel_distill(cfg: BilevelConfig, inputs: BilevelInputs, device: torch.device, generator: torch.Generator,
                    on_progress: ProgressFn | None = None, resume: OuterState | None = None,
                    on_checkpoint: Callable[[OuterState], None] | None = None) -> BilevelResult:
    """Learn M samples, their labels and T step sizes, then evaluate them on fresh networks.

    `resume` continues from a checkpointed OuterState (same config); `on_checkpoint` receives one
    every `checkpoint_every` outer steps. Raises Diverged (with the outer step) on a diverging loss."""
    from .bilevel_eval import evaluate

    start = time.perf_counter()
    if len(inputs.train_y) == 0:
        raise ValueError("the real training set is empty; the outer loss needs real data")
    eval_seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    train_x, train_y = inputs.train_x, inputs.train_y
    if cfg.train_subset and cfg.train_subset < len(train_y):
        keep = torch.randperm(len(train_y), generator=generator)[: cfg.train_subset]
        train_x, train_y = train_x[keep], train_y[keep]
    state = resume
    if state is None:
        x0 = inputs.sample_init(cfg.num_samples, generator)
        state = initial_state(cfg, inputs.model, x0, inputs.num_classes, generator)
    if state.step < cfg.outer_steps:
        state = distill(cfg, inputs.model, train_x, train_y, state, device, generator, on_progress, on_checkpoint,
                        inputs.bounds)
    if on_progress is not None:
        on_progress(1.0, "evaluating on fresh networks")
    evaluation = evaluate(cfg, inputs, state, device, torch.Generator().manual_seed(eval_seed))
    return BilevelResult(state, evaluation, time.perf_counter() - start)
