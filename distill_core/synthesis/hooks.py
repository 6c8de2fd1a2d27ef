"""Forward hooks on BatchNorm layers, held in a context manager that always removes them.

SRe2L-style code registers BN hooks once and never removes them, which leaks references (and
slows every later forward pass) in a long-lived process such as the app. Here the hooks live only
inside a `with` block, as in torchdistill's `ForwardHookManager`:

    with BNInputCapture(model) as cap:
        model(x)
        first_layer_input = cap.inputs[0]   # [N, C, H, W] (or [N, C] for BatchNorm1d)

The captured tensors are the layers' *inputs* (what BN normalises), still attached to the graph,
so statistics computed from them are differentiable in the images.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..models import bn_layers


class BNInputCapture:
    """Context manager recording the input of each BatchNorm layer on the latest forward pass.

    `inputs[l]` is layer l's input (in `bn_layers(model)` order) or None before a forward pass.
    `names` are the layers' module names. Raises ValueError when the model has no BatchNorm.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None):
        found = bn_layers(model)
        if layers is not None:
            by_name = dict(found)
            missing = [n for n in layers if n not in by_name]
            if missing:
                raise ValueError(f"model has no BatchNorm layer(s) {missing}; it has {list(by_name)}")
            found = [(n, by_name[n]) for n in layers]
        if not found:
            raise ValueError(
                f"{type(model).__name__} has no BatchNorm layers; BN-statistics matching needs a teacher "
                "with BatchNorm (e.g. convnet, lenet, resnet18)"
            )
        self.names: list[str] = [n for n, _ in found]
        self.modules: list[nn.Module] = [m for _, m in found]
        self.inputs: list[torch.Tensor | None] = [None] * len(found)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, index: int):
        def record(module: nn.Module, args: tuple) -> None:
            self.inputs[index] = args[0]

        return record

    def __enter__(self) -> "BNInputCapture":
        self._handles = [m.register_forward_pre_hook(self._hook(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook and drop the captured tensors (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.inputs = [None] * len(self.modules)

    def clear(self) -> None:
        """Forget the captured inputs (frees their graph) but keep the hooks."""
        self.inputs = [None] * len(self.modules)

    def captured(self) -> list[torch.Tensor]:
        """The captured inputs; ValueError if some layer did not run in the last forward pass."""
        if any(t is None for t in self.inputs):
            skipped = [n for n, t in zip(self.names, self.inputs) if t is None]
            raise ValueError(f"BatchNorm layer(s) {skipped} saw no input; run a forward pass inside the block")
        return list(self.inputs)  # type: ignore[arg-type]


def count_hooks(model: nn.Module) -> int:
    """Number of forward and forward-pre hooks registered on the model's modules (for leak checks)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
