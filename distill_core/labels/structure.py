"""Label-structure ablations: named transforms of a soft-label matrix (Qin, Deng, Alvarez-Melis 2024).

Each transform takes probabilities P [N, C] (rows of an expert's softmax), the images' classes y [N]
and one integer argument, and returns the new targets [N', C] with the mask [N] of the images kept
(N' = mask.sum()). What each one tests:

  none               P unchanged (the fixed expert labels).
  swap k             swap the k-th largest entry of each row with its smallest (k = 1 .. C-1; k = 1
                     moves the top-1 mass to the least likely class). Entropy is unchanged, so a drop
                     in accuracy means the *order* of the probabilities carries the knowledge.
  topk k             keep the k largest entries, zero the rest, no renormalisation (k = C is P; k = 0
                     is the hard label one-hot(y)). Not the storage top-k of the FKD store, which
                     renormalises the logits it keeps.
  shuffle_nontop     keep each row's largest entry in place, permute the other C-1 at random.
  uniform_nontop     keep each row's largest entry, spread the rest 1 - max uniformly over the others.
  drop_class c       remove the images of class c, keep the other images' labels as they are: class c
                     is learned only from its mass in other classes' labels (the zero-shot test).
  zero_class c       keep every image, zero column c in every label (no renormalisation): the control,
                     where class c appears nowhere in the targets.

`apply_transform(name, P, y, arg, generator)` checks the argument against C and returns a `Transformed`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass
class Transformed:
    probs: torch.Tensor  # float [N', C], the student's targets
    keep: torch.Tensor  # bool [N], images of the input kept (N' = keep.sum())


@dataclass(frozen=True)
class TransformSpec:
    fn: Callable[[torch.Tensor, torch.Tensor, int, torch.Generator], Transformed]
    description: str
    arg: str  # what the integer argument is: "" (none), "k", "class"
    removes_class: bool = False  # the argument is a class scored on its own (zero-shot)


_TRANSFORMS: dict[str, TransformSpec] = {}


def register_transform(name: str, description: str, arg: str = "", removes_class: bool = False):
    def deco(fn):
        _TRANSFORMS[name] = TransformSpec(fn, description, arg, removes_class)
        return fn

    return deco


def list_transforms() -> dict[str, str]:
    """Name -> description of every registered label transform."""
    return {k: v.description for k, v in _TRANSFORMS.items()}


def transform_spec(name: str) -> TransformSpec:
    if name not in _TRANSFORMS:
        raise ValueError(f"unknown label transform {name!r}; choose from {', '.join(_TRANSFORMS)}")
    return _TRANSFORMS[name]


def arg_range(name: str, num_classes: int) -> tuple[int, int] | None:
    """Inclusive range of the transform's argument for C classes, or None when it takes none."""
    kind = transform_spec(name).arg
    if kind == "k":
        return (1, num_classes - 1) if name == "swap" else (0, num_classes)
    if kind == "class":
        return 0, num_classes - 1
    return None


def check_arg(name: str, arg: int | None, num_classes: int) -> int:
    """The argument, validated against C (ValueError saying the valid range); 0 for argument-free ones."""
    bounds = arg_range(name, num_classes)
    if bounds is None:
        if arg not in (None, 0):
            raise ValueError(f"label transform {name!r} takes no argument, got {arg!r}")
        return 0
    kind = transform_spec(name).arg
    if arg is None or isinstance(arg, bool) or not isinstance(arg, int) or not bounds[0] <= arg <= bounds[1]:
        hint = f"classes are 0..{num_classes - 1}" if kind == "class" else f"C = {num_classes} classes"
        raise ValueError(f"label transform {name!r} needs {kind} in {bounds[0]}..{bounds[1]} ({hint}), got {arg!r}")
    return arg


def parse_transform(text: str) -> tuple[str, int]:
    """"swap:3" -> ("swap", 3); "none" -> ("none", 0). The name must be registered."""
    name, _, arg = str(text).partition(":")
    transform_spec(name)
    if not arg:
        return name, 0
    try:
        return name, int(arg)
    except ValueError:
        raise ValueError(f"label transform {text!r}: the argument after ':' must be an integer") from None


def apply_transform(name: str, probs: torch.Tensor, labels: torch.Tensor, arg: int | None = None,
                    generator: torch.Generator | None = None) -> Transformed:
    """Apply transform `name` to P [N, C] with classes y [N]; `generator` seeds the random ones."""
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must be [N, C] with one class each; got {tuple(probs.shape)} and {len(labels)} labels")
    k = check_arg(name, arg, probs.shape[1])
    return transform_spec(name).fn(probs.float(), labels.long(), k, generator or torch.Generator().manual_seed(0))


def _all(p: torch.Tensor) -> torch.Tensor:
    return torch.ones(len(p), dtype=torch.bool)


@register_transform("none", "the expert's probabilities unchanged")
def _none(p, y, k, g) -> Transformed:
    return Transformed(p.clone(), _all(p))


@register_transform("swap", "swap each row's k-th largest probability with its smallest (entropy kept)", "k")
def _swap(p, y, k, g) -> Transformed:
    order = torch.sort(p, dim=1, descending=True, stable=True).indices
    i, j = order[:, k - 1 : k], order[:, -1:]
    out = p.clone()
    out.scatter_(1, i, p.gather(1, j))
    out.scatter_(1, j, p.gather(1, i))
    return Transformed(out, _all(p))


@register_transform("topk", "keep the k largest entries, zero the rest, no renormalisation (k = 0: hard labels)", "k")
def _topk(p, y, k, g) -> Transformed:
    if k == 0:
        return Transformed(F.one_hot(y, p.shape[1]).float(), _all(p))
    idx = torch.sort(p, dim=1, descending=True, stable=True).indices[:, :k]
    out = torch.zeros_like(p).scatter_(1, idx, p.gather(1, idx))
    return Transformed(out, _all(p))


@register_transform("shuffle_nontop", "keep the largest entry, permute the other C-1 at random")
def _shuffle_nontop(p, y, k, g) -> Transformed:
    order = torch.sort(p, dim=1, descending=True, stable=True).indices
    rest = order[:, 1:]
    perm = torch.argsort(torch.rand(rest.shape, generator=g), dim=1)
    out = p.clone()
    out.scatter_(1, rest, p.gather(1, rest.gather(1, perm)))
    return Transformed(out, _all(p))


@register_transform("uniform_nontop", "keep the largest entry, spread the remaining mass uniformly")
def _uniform_nontop(p, y, k, g) -> Transformed:
    top = p.max(dim=1, keepdim=True)
    out = ((1.0 - top.values) / (p.shape[1] - 1)).expand_as(p).clone()
    out.scatter_(1, top.indices, top.values)
    return Transformed(out, _all(p))


@register_transform("drop_class", "remove class c's images, keep its mass in the other labels (zero-shot)",
                    "class", removes_class=True)
def _drop_class(p, y, c, g) -> Transformed:
    keep = y != c
    return Transformed(p[keep].clone(), keep)


@register_transform("zero_class", "keep class c's images, zero column c in every label (the control)",
                    "class", removes_class=True)
def _zero_class(p, y, c, g) -> Transformed:
    out = p.clone()
    out[:, c] = 0.0
    return Transformed(out, _all(p))
