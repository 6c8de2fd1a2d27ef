"""Feature extraction for the analyses: a chosen model and layer, batched, cached on disk.

By default the features are a classifier's penultimate representation `model.features(x)`
([N, D]). A named module (see `list_layers`) is read through a forward hook that lives in a
context manager and is always removed, even when the forward pass raises. A 4-D activation
[N, C, H, W] is reduced to [N, C] by global average pooling (`pool="avg"`) or kept whole
(`pool="flatten"`, [N, C*H*W]).

Features are cached per (image-set checksum, model checkpoint, layer, pool) as
`<cache_dir>/features-<key>.pt`; the key is a sha256 over those four, so a changed image set,
checkpoint or layer never reuses stale features.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..imageset import images_checksum
from ..models import Classifier, ModelSpec, load_checkpoint
from ..runs import load_tensors, save_tensors

PENULTIMATE = ""  # layer name meaning model.features(x)
POOLS = ("avg", "flatten")
FEATURES_SCHEMA = "distill_core.features/1"


@dataclass
class FeatureModel:
    """A model to read features from, with a key that identifies its weights."""

    model: Classifier
    spec: ModelSpec
    key: str  # sha256 of the checkpoint's state dict (identifies the weights)
    source: str = ""  # where it was loaded from (run folder or checkpoint file)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def state_dict_key(model: nn.Module) -> str:
    """sha256 over the names and float32 bytes of a model's state dict (its weights' identity)."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def wrap_model(model: Classifier, spec: ModelSpec, source: str = "") -> FeatureModel:
    """A FeatureModel of an in-memory classifier (eval mode)."""
    return FeatureModel(model.eval(), spec, state_dict_key(model), source)


def load_feature_model(path: Path | str, epoch: int | None = None, device: torch.device | str = "cpu") -> FeatureModel:
    """Load a feature model from a teacher-style run folder (its final or given epoch) or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        from ..teacher import load_teacher

        model, spec, _ = load_teacher(path, epoch=epoch, device=device)
    elif path.is_file():
        model, spec, _ = load_checkpoint(path, device)
    else:
        raise ValueError(f"feature model not found: {path}; give a teacher run folder or a checkpoint .pt file")
    return wrap_model(model, spec, str(path))


def list_layers(model: nn.Module) -> list[str]:
    """Names of the modules a hook can read (leaves and containers), in registration order."""
    return [name for name, _ in model.named_modules() if name]


@contextlib.contextmanager
def capture_output(model: nn.Module, layer: str) -> Iterator[list[torch.Tensor]]:
    """Context manager: a list that receives the output of module `layer` on each forward pass.

    The hook is removed on exit, whatever happens inside the block.
    """
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(list_layers(model))}")
    store: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        store.append(output.detach() if isinstance(output, torch.Tensor) else output[0].detach())

    handle = modules[layer].register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def _reduce(act: torch.Tensor, pool: str) -> torch.Tensor:
    """[N, C, H, W] -> [N, C] (avg) or [N, C*H*W] (flatten); [N, D] stays; returns float32."""
    if act.ndim > 2 and pool == "avg":
        act = act.flatten(2).mean(2)
    return act.flatten(1).float()


@torch.no_grad()
def extract_features(
    fm: FeatureModel, images: torch.Tensor, layer: str = PENULTIMATE, pool: str = "avg", batch_size: int = 512
) -> torch.Tensor:
    """Features [N, D] (float32, CPU) of pixel-space images [N, C, H, W] in [0, 1] (or uint8).

    layer "" = `model.features(x)` (penultimate); otherwise the named module's output, pooled.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    model, device, outs = fm.model.eval(), fm.device, []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if not layer:
            outs.append(_reduce(model.features(x), pool).cpu())
            continue
        with capture_output(model, layer) as store:
            model(x)
        outs.append(_reduce(store[-1], pool).cpu())
    return torch.cat(outs) if outs else torch.empty(0, 0)


def feature_key(images_sha: str, model_key: str, layer: str, pool: str) -> str:
    """Cache key of (image-set checksum, model weights, layer, pool): 16 hex digits of a sha256."""
    text = "|".join([images_sha, model_key, layer or "penultimate", pool])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_features(
    fm: FeatureModel, images: torch.Tensor, cache_dir: Path | str | None, layer: str = PENULTIMATE,
    pool: str = "avg", batch_size: int = 512, images_sha: str | None = None,
) -> torch.Tensor:
    """`extract_features`, read from / written to `<cache_dir>/features-<key>.pt` (no cache when None).

    A corrupt or mismatching cache file is recomputed and replaced; an unwritable cache folder
    only disables caching.
    """
    if cache_dir is None:
        return extract_features(fm, images, layer, pool, batch_size)
    sha = images_sha or images_checksum(images)
    path = Path(cache_dir) / f"features-{feature_key(sha, fm.key, layer, pool)}.pt"
    if path.is_file():
        try:
            raw = load_tensors(path)
            if raw.get("schema") == FEATURES_SCHEMA and raw.get("images_sha") == sha and len(raw["features"]) == len(images):
                return raw["features"]
        except ValueError:
            pass  # corrupt cache: recompute below
    feats = extract_features(fm, images, layer, pool, batch_size)
    try:
        save_tensors(path, {"schema": FEATURES_SCHEMA, "features": feats, "images_sha": sha, "model_key": fm.key,
                            "layer": layer, "pool": pool, "model": fm.spec.name, "model_source": fm.source})
    except OSError:
        pass  # read-only run folder: features still returned, just not cached
    return feats
