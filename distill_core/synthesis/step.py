"""The recover step, eager or compiled: the losses of one iteration and the projected Adam update.

`RecoverStep` (a context manager, one per synthesis call) owns the teacher's BN input hooks and runs
the loss function it is given, `synthesize.recover_losses` (views, teacher forward, CE and grouped
BN terms), eagerly or compiled once for the whole call (`compiled.compile_fn`): compiled, the
augmentation, the forward pass, the per-group statistics (sum x and sum x² of each BN input in one
fused pass) and the backward of all of them become fused kernels. `PixelAdam` is the pixel update;
compiled, it is one kernel over the images. With compile=off both are the reference eager path.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch
from torch import nn

from ..compiled import check_compile, compile_fn, held_channels_last
from .hooks import BNInputCapture


class RecoverStep:
    """`losses(*args)` = `loss_fn(teacher, capture, *args)`, with the teacher's BN hooks held open.

    Inside the block the teacher is channels-last when asked; hooks and layout are undone on exit.
    The compiled function is built once here, so every pass of one synthesis reuses it (one
    compilation per pass shape).
    """

    def __init__(self, teacher: nn.Module, loss_fn: Callable, device: torch.device, compile: str = "off",
                 channels_last: bool = False):
        check_compile(compile, device)
        self.teacher, self.compile = teacher, compile
        self.capture = BNInputCapture(teacher)
        self._losses = compile_fn(loss_fn, compile)
        self._held = contextlib.ExitStack()
        self._channels_last = channels_last

    def __enter__(self) -> "RecoverStep":
        self._held.enter_context(held_channels_last(self.teacher, self._channels_last))
        self._held.enter_context(self.capture)
        return self

    def __exit__(self, *exc) -> None:
        self._held.close()

    def losses(self, *args) -> tuple[torch.Tensor, torch.Tensor]:
        return self._losses(self.teacher, self.capture, *args)


def cosine_schedule(lr: float, steps: int) -> torch.Tensor:
    """lr_t = lr/2 (1 + cos(pi t / T)) for t = 0..T-1, float64 [T]: cosine decay towards 0."""
    return torch.tensor([0.5 * lr * (1.0 + math.cos(math.pi * t / steps)) for t in range(steps)], dtype=torch.float64)


def _adam_update(z: torch.Tensor, m: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, a: torch.Tensor,
                 c: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, b1: float, b2: float, eps: float) -> None:
    m.mul_(b1).add_(grad, alpha=1 - b1)
    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    z.sub_(a * m / ((v / c).sqrt() + eps))
    z.copy_(torch.max(torch.min(z, hi), lo))


class PixelAdam:
    """Adam on normalised pixels z [N, C, H, W], then z clipped to [lo, hi] (lo, hi broadcast to z).

    As torch.optim.Adam without amsgrad or decay (Kingma & Ba), betas (0.5, 0.9), eps 1e-8:
        m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  z <- clip(z - a_t m / (sqrt(v / c_t) + eps), lo, hi)
    with a_t = lr_t / (1 - b1^t), c_t = 1 - b2^t at step t = 1, 2, ... The learning rates lr [T] are
    fixed up front, so a_t and c_t live on the device with the step counter: a step never waits for
    the host, and the update is a few in-place ops on z (one kernel compiled, whatever T is).
    Written out rather than torch.optim.Adam for that, and because importing torch's optimiser
    machinery costs seconds of a short CLI run.
    """

    def __init__(self, z: torch.Tensor, lr: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, compile: str = "off",
                 betas: tuple[float, float] = (0.5, 0.9), eps: float = 1e-8):
        steps = torch.arange(1, len(lr) + 1, dtype=torch.float64)
        self.step_size = (lr.double() / (1 - betas[0] ** steps)).float().to(z.device)
        self.v_correction = (1 - betas[1] ** steps).float().to(z.device)
        self.m, self.v = torch.zeros_like(z), torch.zeros_like(z)
        self.t = torch.zeros(1, dtype=torch.long, device=z.device)
        self.lo, self.hi = lo.to(z.device), hi.to(z.device)
        self.b1, self.b2, self.eps = betas[0], betas[1], eps
        self._update = compile_fn(_adam_update, "off" if compile == "off" else "default")  # mutates: no CUDA graph

    def step(self, z: torch.Tensor, grad: torch.Tensor) -> None:
        """One update of z in place (at most T of them: the schedule's length)."""
        a, c = self.step_size.index_select(0, self.t), self.v_correction.index_select(0, self.t)  # [1] each
        self.t.add_(1)
        self._update(z, self.m, self.v, grad, a, c, self.lo, self.hi, self.b1, self.b2, self.eps)
