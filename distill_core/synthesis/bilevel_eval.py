"""Evaluation of a learned set: train networks on it, measure real test accuracy.

Two protocols, each on several initialisations (mean ± std):
  learned steps  the T learned step sizes on the learned samples and labels (the inner loop as
                 trained), from the fixed θ_0 it was learned for (init=fixed) and from fresh θ_0;
  standard       fresh θ_0, `eval_standard_steps` full-batch Adam steps (lr `eval_standard_lr`) on
                 the same inner loss, ignoring the learned step sizes.
"""
from __future__ import annotations

import statistics

import torch
from torch import nn
from torch.func import functional_call

from .bilevel import BilevelConfig, BilevelInputs, OuterState, Params, init_params, inner_loss, step_sizes, unroll


@torch.no_grad()
def accuracy(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 2048) -> float:
    """Top-1 accuracy (fraction) of f_params on (x [N, ...], y [N])."""
    if len(y) == 0:
        return float("nan")
    device = next(iter(params.values())).device
    hits = 0
    for i in range(0, len(y), batch_size):
        logits = functional_call(model, (params, buffers), (x[i : i + batch_size].to(device),))
        hits += int((logits.argmax(1).cpu() == y[i : i + batch_size].cpu()).sum())
    return hits / len(y)


def train_standard(model: nn.Module, theta0: Params, buffers: Params, x: torch.Tensor, targets: torch.Tensor,
                   steps: int, lr: float, softmax: bool) -> Params:
    """θ after `steps` full-batch Adam steps on ℓ(f_θ(x), targets) from θ_0."""
    theta = {k: v.detach().clone().requires_grad_(True) for k, v in theta0.items()}
    opt = torch.optim.Adam(theta.values(), lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            loss = inner_loss(functional_call(model, (theta, buffers), (x,)), targets, softmax)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return theta


def _summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "values": values}


def evaluate(cfg: BilevelConfig, inputs: BilevelInputs, state: OuterState, device: torch.device,
             generator: torch.Generator) -> dict:
    """Test accuracy of networks trained on the learned set (see the module docstring).

    Returns {"learned_steps_same_init": {mean, std, values} (init=fixed only),
             "learned_steps_fresh_init": {...}, "standard_fresh_init": {...}} with fractions in [0, 1]."""
    model = inputs.model.to(device)
    buffers = {k: v.to(device) for k, v in model.named_buffers()}
    x, labels = state.x.to(device), state.labels.to(device)
    lrs = step_sizes(state.raw_lrs.to(device))
    fresh = [{k: v.to(device) for k, v in init_params(model, generator, cfg.init_gain).items()}
             for _ in range(cfg.eval_nets)]

    def learned(theta0: Params) -> float:
        theta = unroll(model, theta0, buffers, x, labels, lrs, cfg.label_softmax, create_graph=False)
        return accuracy(model, theta, buffers, inputs.test_x, inputs.test_y)

    def standard(theta0: Params) -> float:
        theta = train_standard(model, theta0, buffers, x, labels, cfg.eval_standard_steps, cfg.eval_standard_lr,
                               cfg.label_softmax)
        return accuracy(model, theta, buffers, inputs.test_x, inputs.test_y)

    out = {"learned_steps_fresh_init": _summary([learned(t) for t in fresh]),
           "standard_fresh_init": _summary([standard(t) for t in fresh])}
    if cfg.init == "fixed":
        theta0 = {k: v.to(device) for k, v in state.theta0.items()}
        out["learned_steps_same_init"] = _summary([learned(theta0)])
    return out
