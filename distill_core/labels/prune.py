"""Label pruning: which stored batches a student may use, and what that saves (LPLD, Xiao & He 2024).

The unit is one stored batch (a set of views with their CutMix partners). A store has E label epochs
of nb = ceil(N / B) batches, so E * nb batches in all. Pruning at ratio r (compression 1 / (1 - r);
40x = r 0.975) keeps floor((1 - r) * E * nb) of them. Strategies (a registry, `list_strategies()`):

- `random`: a uniform random subset; the student draws each epoch's nb batches **with replacement**
  from this pool (the improved label pool, "+ILP").
- `epoch`: keep floor((1 - r) * E) whole label epochs, replayed in order (the naive pool).
- `first`: the first floor((1 - r) * E * nb) batches generated (label epoch by label epoch, so every image is
  covered once k >= nb), drawn like `random`: what the reference code keeps.
- `<rule>_easy` / `<rule>_hard`: keep the batches with the highest / lowest mean score, then draw
  from the pool like `random`. Rules: `confidence` (teacher max probability), `margin` (top-1 minus
  top-2 probability), `correct` (teacher top-1 equals the image's class), `cutmix` (max(lam, 1 - lam):
  how much of the view one image fills).

At r = 0 every strategy keeps the full store, replayed epoch by epoch. Storage reductions compose with
any strategy: top-k logits and fp16/fp32 values (`LabelStore.reduced`). Every plan reports its
compression against the full store.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry
from .relabel import LabelStore

ScoreFn = Callable[[LabelStore, torch.Tensor], torch.Tensor]


@dataclass
class PrunePlan:
    """Kept batches of a store and how a student draws from them."""

    strategy: str
    ratio: float  # fraction of batches removed, in [0, 1)
    kept: torch.Tensor  # int64 [K] batch ids into the full store
    with_replacement: bool  # True: each student epoch draws nb batches from `kept` with replacement
    full_bytes: int  # bytes of the full store (as relabeled)
    bytes: int  # bytes of the kept batches (after storage reductions)

    @property
    def compression(self) -> float:
        return self.full_bytes / self.bytes

    def summary(self) -> dict:
        return {"strategy": self.strategy, "ratio": self.ratio, "kept_batches": len(self.kept),
                "with_replacement": self.with_replacement, "full_bytes": self.full_bytes, "label_bytes": self.bytes,
                "compression": self.compression}


def ratio_from_factor(factor: float) -> float:
    """Compression factor (1, 10, 40, ...) -> pruning ratio r = 1 - 1/factor."""
    if not factor >= 1.0:
        raise ValueError(f"compression factor must be >= 1, got {factor}")
    return 1.0 - 1.0 / factor


def kept_count(store: LabelStore, ratio: float) -> int:
    """floor((1 - r) * E * nb): batches kept at ratio r; ValueError outside [0, 1) or when none is left."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    total = store.num_batches
    keep = math.floor((1.0 - ratio) * total + 1e-9)
    if keep < 1:
        raise ValueError(f"pruning ratio {ratio} leaves no batch of the {total} stored; lower the ratio or relabel "
                         "with more label epochs")
    return keep


# ---------------------------------------------------------------------------------------------
# batch scores for the rules (higher = easier)


def _per_batch_mean(store: LabelStore, per_view: torch.Tensor) -> torch.Tensor:
    batch_of_view = torch.repeat_interleave(torch.arange(store.num_batches), store.batch_len.long())
    sums = torch.zeros(store.num_batches).index_add_(0, batch_of_view, per_view.float())
    return sums / store.batch_len.float()


def _probs(store: LabelStore) -> torch.Tensor:
    return torch.softmax(store.dense_logits(slice(None)), dim=1)


def score_confidence(store: LabelStore, image_labels: torch.Tensor) -> torch.Tensor:
    return _per_batch_mean(store, _probs(store).max(1).values)


def score_margin(store: LabelStore, image_labels: torch.Tensor) -> torch.Tensor:
    top2 = _probs(store).topk(2, dim=1).values
    return _per_batch_mean(store, top2[:, 0] - top2[:, 1])


def score_correct(store: LabelStore, image_labels: torch.Tensor) -> torch.Tensor:
    pred = store.dense_logits(slice(None)).argmax(1)
    return _per_batch_mean(store, pred == image_labels[store.image_index.long()])


def score_cutmix(store: LabelStore, image_labels: torch.Tensor) -> torch.Tensor:
    return torch.maximum(store.lam, 1.0 - store.lam).float()


RULES: dict[str, ScoreFn] = {"confidence": score_confidence, "margin": score_margin, "correct": score_correct,
                             "cutmix": score_cutmix}


# ---------------------------------------------------------------------------------------------
# strategies: (store, ratio, generator, image labels) -> (kept batch ids, with_replacement)

Strategy = Callable[[LabelStore, float, torch.Generator, torch.Tensor], tuple[torch.Tensor, bool]]
STRATEGIES: Registry[Strategy] = Registry("pruning strategy")
register_strategy = STRATEGIES.register  # @register_strategy("name", "one-line description") on a Strategy


def list_strategies() -> dict[str, str]:
    """Registered pruning strategies with a one-line description."""
    return STRATEGIES.descriptions()


@register_strategy("random", "uniform random batches; students draw with replacement from the pool (LPLD +ILP)")
def _random(store: LabelStore, ratio: float, generator: torch.Generator, labels: torch.Tensor):
    perm = torch.randperm(store.num_batches, generator=generator)
    return perm[: kept_count(store, ratio)].sort().values, True


@register_strategy("epoch", "whole label epochs replayed in order (the naive label pool)")
def _epoch(store: LabelStore, ratio: float, generator: torch.Generator, labels: torch.Tensor):
    kept_count(store, ratio)
    epochs = math.floor((1.0 - ratio) * store.epochs + 1e-9)
    if epochs < 1:
        raise ValueError(f"ratio {ratio} keeps no whole label epoch of {store.epochs}; use `random` or a lower ratio")
    return torch.nonzero(store.batch_epoch < epochs).flatten(), False


@register_strategy("first", "the first batches generated (whole label epochs, every image covered), as the "
                           "reference code keeps; students draw with replacement from the pool")
def _first(store: LabelStore, ratio: float, generator: torch.Generator, labels: torch.Tensor):
    order = torch.argsort(store.batch_epoch.long() * store.num_batches + torch.arange(store.num_batches), stable=True)
    return order[: kept_count(store, ratio)].sort().values, True


def _rule_strategy(score: ScoreFn, easy: bool) -> Strategy:
    def strategy(store: LabelStore, ratio: float, generator: torch.Generator, labels: torch.Tensor):
        s = score(store, labels)
        noise = torch.rand(len(s), generator=generator) * 1e-6  # random order among ties
        order = torch.argsort(s + noise, descending=easy)
        return order[: kept_count(store, ratio)].sort().values, True
    return strategy


for _rule, _fn in RULES.items():
    register_strategy(f"{_rule}_easy", f"keep batches with the highest {_rule} score")(_rule_strategy(_fn, True))
    register_strategy(f"{_rule}_hard", f"keep batches with the lowest {_rule} score")(_rule_strategy(_fn, False))


def prune(store: LabelStore, strategy: str, ratio: float, generator: torch.Generator, image_labels: torch.Tensor,
          topk: int = 0, value_dtype: str | None = None) -> tuple[LabelStore, PrunePlan]:
    """Apply `strategy` at `ratio` plus storage reductions; returns (kept store, plan).

    The kept store holds only the kept batches (renumbered); `plan.kept` indexes the full store.
    `image_labels` [N] int64 are the classes of the store's images (used by the `correct` rule).
    """
    choose = STRATEGIES.get(strategy)
    if ratio == 0.0:
        kept, with_replacement = torch.arange(store.num_batches), False
    else:
        kept, with_replacement = choose(store, ratio, generator, image_labels)
    value_dtype = value_dtype or ("fp16" if store.value_bytes() == 2 else "fp32")
    small = store.subset(kept).reduced(topk or store.topk, value_dtype)
    plan = PrunePlan(strategy, ratio, kept, with_replacement, store.nbytes(), small.nbytes())
    return small, plan
