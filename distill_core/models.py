"""Architecture registry and model checkpoints.

Every model takes pixel-space images in [0, 1] ([N, C, H, W]) and normalises them itself with its
dataset's mean/std, so stages never handle normalisation. Each model exposes `features(x)` (the
penultimate representation, [N, D]) and `head` (the last linear layer).

A checkpoint is a plain dict (schema "distill_core.model/1") with the model name, its arguments,
the dataset metadata (classes, size, mean/std, class names) and the state dict: enough to rebuild
the model anywhere, loaded with weights_only=True.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .data import DatasetInfo
from .registry import Registry
from .runs import load_tensors, save_tensors

CHECKPOINT_SCHEMA = "distill_core.model/1"


class Normalize(nn.Module):
    """(x - mean) / std per channel; mean/std are buffers so they travel with the state dict."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """normalize -> body (to a flat feature vector) -> head."""

    def __init__(self, info: DatasetInfo, body: nn.Module, feature_dim: int):
        super().__init__()
        self.normalize = Normalize(info.mean, info.std)
        self.body = body
        self.head = nn.Linear(feature_dim, info.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [N, D] of pixel-space images [N, C, H, W]."""
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS: Registry[Callable[..., Classifier]] = Registry("model")
register_model = MODELS.register  # @register_model("name", "one-line description") on a builder (info, **args)


def list_models() -> dict[str, str]:
    """Registered model names with a one-line description."""
    return MODELS.descriptions()


def build_model(name: str, info: DatasetInfo, **args) -> Classifier:
    """Build registry model `name` for dataset `info`; unknown names or arguments raise ValueError."""
    build = MODELS.get(name)
    try:
        return build(info, **args)
    except TypeError as exc:
        raise ValueError(f"bad arguments {args} for model {name!r}: {exc}") from exc


def bn_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """The model's BatchNorm layers in forward order of registration, with their names."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


# ---------------------------------------------------------------------------------------------
# ConvNet-BN (the dataset-distillation ConvNet, with BatchNorm)


@register_model("convnet", "ConvNet-BN: depth x [conv3x3(width) - BN - ReLU - avgpool2]; args width=64, depth=3")
def convnet(info: DatasetInfo, width: int = 64, depth: int = 3) -> Classifier:
    if depth < 1 or width < 1:
        raise ValueError(f"convnet needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
    size, layers, ch = info.image_size, [], info.channels
    for _ in range(depth):
        if size < 2:
            raise ValueError(f"convnet depth {depth} pools {info.image_size}px images below 1px; lower depth")
        layers += [nn.Conv2d(ch, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                   nn.AvgPool2d(2)]
        ch, size = width, size // 2
    layers.append(nn.Flatten())
    return Classifier(info, nn.Sequential(*layers), width * size * size)


# ---------------------------------------------------------------------------------------------
# LeNet with BatchNorm


@register_model("lenet", "LeNet-5 with BatchNorm after each conv and hidden linear layer")
def lenet(info: DatasetInfo) -> Classifier:
    size = info.image_size // 4
    body = nn.Sequential(
        nn.Conv2d(info.channels, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * size * size, 120, bias=False), nn.BatchNorm1d(120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
    )
    return Classifier(info, body, 84)


# ---------------------------------------------------------------------------------------------
# ResNets


class _TorchvisionBody(nn.Module):
    """A torchvision ResNet without its fc layer, returning pooled features."""

    def __init__(self, net: nn.Module):
        super().__init__()
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_model("resnet18", "ResNet-18 with a small-image stem (3x3 conv, stride 1, no max-pool), for <= 64 px")
def resnet18_small(info: DatasetInfo) -> Classifier:
    import torchvision

    net = torchvision.models.resnet18(num_classes=info.num_classes)
    net.conv1 = nn.Conv2d(info.channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return Classifier(info, _TorchvisionBody(net), 512)


def _torchvision_resnet(arch: str, info: DatasetInfo, weights: str) -> Classifier:
    import torchvision

    if weights not in ("none", "imagenet"):
        raise ValueError(f"weights must be 'none' or 'imagenet', got {weights!r}")
    net_weights = None
    if weights == "imagenet":
        net_weights = torchvision.models.get_model_weights(arch).DEFAULT
        if info.num_classes != 1000 or info.channels != 3:
            raise ValueError("imagenet weights need a 3-channel dataset with 1,000 classes")
    try:
        net = torchvision.models.get_model(arch, weights=net_weights, num_classes=info.num_classes)
    except Exception as exc:  # download failures
        raise ValueError(f"could not load {arch} ImageNet weights (offline?): {exc}; use weights=none") from exc
    if info.channels != 3:
        net.conv1 = nn.Conv2d(info.channels, 64, 7, stride=2, padding=3, bias=False)
    dim = net.fc.in_features
    return Classifier(info, _TorchvisionBody(net), dim)


@register_model("tv_resnet18", "torchvision ResNet-18 (ImageNet stem) for 224 px; args weights=none|imagenet")
def tv_resnet18(info: DatasetInfo, weights: str = "none") -> Classifier:
    return _torchvision_resnet("resnet18", info, weights)


@register_model("tv_resnet50", "torchvision ResNet-50 (ImageNet stem) for 224 px; args weights=none|imagenet")
def tv_resnet50(info: DatasetInfo, weights: str = "none") -> Classifier:
    return _torchvision_resnet("resnet50", info, weights)


# ---------------------------------------------------------------------------------------------
# Bilevel dataset distillation networks (Wang et al. 2018; Sucholutsky & Schonlau 2021): no BatchNorm,
# so a network is a pure function of its parameters and can be unrolled with torch.func.functional_call


@register_model("lenet_nobn", "LeNet-5 without BatchNorm (the bilevel-distillation reference network)")
def lenet_nobn(info: DatasetInfo) -> Classifier:
    # conv2 is unpadded from 20 px up (28 px -> 5x5x16 features, as in the reference); small images
    # (8 px digits) pad it so two 2x2 pools still leave a 2x2 map
    pad2 = 0 if info.image_size >= 20 else 2
    size = (info.image_size // 2 - 4 + 2 * pad2) // 2
    if size < 1:
        raise ValueError(f"lenet_nobn needs images of at least 8 px, got {info.image_size}")
    body = nn.Sequential(
        nn.Conv2d(info.channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=pad2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * size * size, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
    )
    return Classifier(info, body, 84)


@register_model("convnet_nobn", "ConvNet without BatchNorm: depth x [conv3x3(width) - ReLU - avgpool2]; "
                                "args width=64, depth=3 (bilevel distillation)")
def convnet_nobn(info: DatasetInfo, width: int = 64, depth: int = 3) -> Classifier:
    if depth < 1 or width < 1:
        raise ValueError(f"convnet_nobn needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
    size, layers, ch = info.image_size, [], info.channels
    for _ in range(depth):
        if size < 2:
            raise ValueError(f"convnet_nobn depth {depth} pools {info.image_size}px images below 1px; lower depth")
        layers += [nn.Conv2d(ch, width, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2)]
        ch, size = width, size // 2
    layers.append(nn.Flatten())
    return Classifier(info, nn.Sequential(*layers), width * size * size)


class _TextConvBody(nn.Module):
    """Kim (2014) text CNN on embedded tokens [N, L, D]: one Conv1d per kernel size over the
    sequence, ReLU, max over time; features [N, filters * len(kernels)]."""

    def __init__(self, dim: int, filters: int, kernels: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, k, padding=k // 2) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # [N, D, L]
        return torch.cat([torch.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=1)


class TextClassifier(nn.Module):
    """body -> head for embedded text [N, L, D]; `features` and `head` as for image classifiers."""

    def __init__(self, info: DatasetInfo, body: nn.Module, feature_dim: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(feature_dim, info.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"textcnn reads embedded text [N, L, D], got a tensor of shape {tuple(x.shape)}; "
                             "choose an image model for image data")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("textcnn", "text CNN on embedded input [N, L, D] (info.channels = D, info.image_size = L); "
                           "args filters=32, kernels=(3, 4, 5)")
def textcnn(info: DatasetInfo, filters: int = 32, kernels: tuple[int, ...] = (3, 4, 5)) -> TextClassifier:
    kernels = tuple(int(k) for k in kernels)
    if filters < 1 or not kernels or min(kernels) < 1:
        raise ValueError(f"textcnn needs filters >= 1 and kernel sizes >= 1, got {filters}, {kernels}")
    return TextClassifier(info, _TextConvBody(info.channels, filters, kernels), filters * len(kernels))


# ---------------------------------------------------------------------------------------------
# checkpoints


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: registry name, arguments and dataset metadata."""

    name: str
    info: DatasetInfo
    args: dict = field(default_factory=dict)

    def build(self, seed: int | None = None) -> Classifier:
        """Build the model; with `seed`, its initial weights depend on the seed alone."""
        if seed is None:
            return build_model(self.name, self.info, **self.args)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(self.name, self.info, **self.args)


def save_checkpoint(path: Path, model: nn.Module, spec: ModelSpec, **extra) -> None:
    """Atomically save a model checkpoint; `extra` holds plain values (epoch, accuracy...)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_tensors(path, {
        "schema": CHECKPOINT_SCHEMA, "model": spec.name, "model_args": dict(spec.args),
        "data_info": spec.info.to_dict(), "state_dict": state, **extra,
    })


def check_checkpoint(ckpt: Any, path: Path | str = "checkpoint") -> ModelSpec:
    """The ModelSpec of a loaded checkpoint dict after checking its structure, without allocating a model.

    Checks the schema, the types of `model` / `model_args` / `data_info` / `state_dict`, and every
    tensor's name and shape against the declared model built on the meta device (no memory), so a
    small file declaring a huge model is refused before anything is allocated.
    """
    if not isinstance(ckpt, dict) or ckpt.get("schema") != CHECKPOINT_SCHEMA:
        raise ValueError(f"{path} is not a distill_core model checkpoint (schema {CHECKPOINT_SCHEMA})")
    name, args, info, state = (ckpt.get(k) for k in ("model", "model_args", "data_info", "state_dict"))
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"{path}: model {name!r} is not registered; known: {', '.join(MODELS.names())}")
    if not isinstance(args, dict) or not all(isinstance(k, str) and isinstance(v, (int, float, str, bool))
                                             for k, v in args.items()):
        raise ValueError(f"{path}: model_args must map names to numbers or strings, got {type(args).__name__}")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ValueError(f"{path}: state_dict must map parameter names to tensors")
    try:
        spec = ModelSpec(name, DatasetInfo.from_dict(info), dict(args))
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in spec.build().state_dict().items()}
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise ValueError(f"{path}: data_info or model_args do not describe a buildable {name} "
                         f"({type(exc).__name__}: {exc})") from None
    if set(expected) != set(state):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ValueError(f"{path}: weights do not fit model {name} {args}: missing {missing[:5]}, unexpected {extra[:5]}")
    wrong = [k for k in expected if tuple(state[k].shape) != expected[k]]
    if wrong:
        k = wrong[0]
        raise ValueError(f"{path}: weights do not fit model {name} {args}: {k} has shape {tuple(state[k].shape)}, "
                         f"the model needs {expected[k]} ({len(wrong)} tensors differ)")
    return spec


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[Classifier, ModelSpec, dict]:
    """Rebuild a model from a checkpoint; returns (model in eval mode, spec, the raw dict).

    The structure is checked first (`check_checkpoint`), so a malformed file is a ValueError naming it.
    """
    ckpt = load_tensors(path)
    spec = check_checkpoint(ckpt, path)
    model = spec.build()
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit model {spec.name} {spec.args}: {exc}") from exc
    return model.to(device).eval(), spec, ckpt


# ---------------------------------------------------------------------------------------------
# inference


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits [N, K] of pixel-space images [N, C, H, W] (uint8 or float in [0, 1]), in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        outs.append(model(x).float())
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) of `model` on (images, labels)."""
    logits = predict_logits(model, images, batch_size)
    return float((logits.argmax(1).cpu() == labels.cpu()).float().mean()) if len(labels) else float("nan")
