"""torch.compile and memory layout for the stages' hot loops: the recover step, the relabel forward
pass and the student's training step.

Every `compile` knob takes one of COMPILE_MODES:

    off              eager PyTorch: the reference path each compiled path is tested against
    default          torch.compile (TorchDynamo + Inductor) of the whole step as one graph
                     (fullgraph=True) with static shapes (dynamic=False)
    reduce-overhead  the same plus CUDA graphs (CUDA only): pays where a step is short and bound by
                     kernel launches, e.g. one class of 10 images per forward pass

A compiled function is built once per job and reused by every call; each distinct input shape
compiles once. A call that would need more shapes than TorchDynamo's recompile limit raises
instead of quietly running eager. `channels_last` knobs hold a model's 4-D weights and its inputs
in NHWC layout, the one cuDNN's bf16 tensor-core convolutions work in; values are unchanged.
bench/gpu.py times every path against its eager one.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from .device import autocast

COMPILE_MODES = ("off", "default", "reduce-overhead")
COMPILE_HELP = ("torch.compile of the step: off (eager) | default (Inductor, static shapes) | reduce-overhead "
                "(adds CUDA graphs; CUDA only). The first step of each input shape compiles (tens of seconds)")
CHANNELS_LAST_HELP = "hold the model's weights and its inputs in channels-last (NHWC) layout, as bf16 GPU convolutions use"


def check_compile(mode: str, device: torch.device) -> None:
    """ValueError for an unknown mode, or CUDA graphs asked for on a device that has none."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {mode!r}")
    if mode == "reduce-overhead" and torch.device(device).type != "cuda":
        raise ValueError(f"compile=reduce-overhead adds CUDA graphs, which need a CUDA device, not {device}; "
                         "use compile=default there")


def compile_fn(fn: Callable, mode: str) -> Callable:
    """`fn` itself for mode off; else fn compiled whole (fullgraph) for static shapes.

    A reduce-overhead call first marks a new CUDA-graph step, so outputs of the previous call that
    the caller still holds are not overwritten under it. A call past the recompile limit raises
    RuntimeError naming the function.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {mode!r}")
    if mode == "off":
        return fn
    compiled = torch.compile(fn, mode=mode, fullgraph=True, dynamic=False)
    name = getattr(fn, "__qualname__", repr(fn))

    def call(*args, **kwargs):
        if mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        try:
            with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
                return compiled(*args, **kwargs)
        except torch._dynamo.exc.FailOnRecompileLimitHit:
            limit = torch._dynamo.config.recompile_limit
            raise RuntimeError(f"compiled {name} met more than {limit} input shapes or models in this process; "
                               "run with compile=off, or one job per process") from None

    return call


@contextlib.contextmanager
def held_channels_last(model: nn.Module, enabled: bool) -> Iterator[nn.Module]:
    """Inside the block `model`'s 4-D weights are channels-last (when `enabled`); contiguous again after."""
    if not enabled:
        yield model
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


def to_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A 4-D batch [N, C, H, W] in channels-last memory when asked (same values); anything else as it is."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


def _logits(model: nn.Module, x: torch.Tensor, amp: str, channels_last: bool) -> torch.Tensor:
    with autocast(x.device, amp):
        return model(to_layout(x, channels_last)).float()


class StaticForward:
    """Logits float32 [n, K] of an eval-mode `model` on inputs [n, ...] with n <= rows, under `amp`.

    compile=off runs the model as it is. Otherwise the forward pass is compiled once for exactly
    `rows` inputs and a smaller batch is padded with zeros whose outputs are dropped: in eval mode
    samples do not interact, so padding changes no logit, and every call reuses one graph (one CUDA
    graph with reduce-overhead). A context manager: the model is channels-last while it is open.
    """

    def __init__(self, model: nn.Module, device: torch.device, rows: int, amp: str = "off", compile: str = "off",
                 channels_last: bool = False):
        check_compile(compile, device)
        self.model, self.rows, self.amp, self.compile, self.channels_last = model, rows, amp, compile, channels_last
        self._fn = compile_fn(_logits, compile)
        self._layout = contextlib.ExitStack()

    def __enter__(self) -> "StaticForward":
        self._layout.enter_context(held_channels_last(self.model, self.channels_last))
        return self

    def __exit__(self, *exc) -> None:
        self._layout.close()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        if n > self.rows:
            raise ValueError(f"a forward pass takes at most {self.rows} inputs, got {n}")
        if self.compile == "off":
            return self._fn(self.model, x, self.amp, self.channels_last)
        if n < self.rows:
            x = torch.cat([x, x.new_zeros((self.rows - n, *x.shape[1:]))])
        return self._fn(self.model, x, self.amp, self.channels_last)[:n].clone()  # clone: CUDA-graph memory is reused


class TrainStep:
    """One optimiser step on a batch: loss_fn(model(views), targets), backward, `opt.step()`.

    compile != off compiles the model's forward pass (and, through AOTAutograd, its backward) once
    per batch shape; the loss on the float32 logits [B, K] and the optimiser stay eager (small next
    to the network). The model must be channels-last already when `channels_last` (see
    `held_channels_last`); views are converted per step.
    """

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], device: torch.device,
                 amp: str = "off", compile: str = "off", channels_last: bool = False):
        check_compile(compile, device)
        self.model, self.opt, self.loss_fn = model, opt, loss_fn
        self.amp, self.channels_last = amp, channels_last
        self._forward = compile_fn(_logits, compile)

    def __call__(self, views: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch's loss (a detached 0-dim tensor) after the step."""
        loss = self.loss_fn(self._forward(self.model, views, self.amp, self.channels_last), targets)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()
