"""Bootstrap intervals over classes, for comparing per-class summaries of two runs.

A run's within-class similarity is a mean over its K classes; with one synthesis seed, the spread
that says whether two runs differ is the spread over classes. Percentile bootstrap (Efron &
Tibshirani 1993, ch. 13): resample the K classes with replacement B times, take the mean of each
resample, and report the (1 - level)/2 and (1 + level)/2 quantiles of those B means. For two runs
over the same classes the resampling is paired (the same classes drawn for both), which removes the
between-class variation they share from the interval of their difference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    mean: float  # the plain mean over classes
    low: float
    high: float
    n: int  # classes
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _resampled_means(values: torch.Tensor, resamples: int, generator: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(values), (resamples, len(values)), generator=generator)
    return values[idx].mean(dim=1)


def _interval(values: torch.Tensor, means: torch.Tensor, level: float) -> Interval:
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(means, q).tolist()
    return Interval(float(values.mean()), low, high, len(values), level)


def _check(level: float, resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), e.g. 0.95; got {level!r}")
    if resamples < 100:
        raise ValueError(f"resamples must be >= 100 (typical 2000); got {resamples!r}")


def mean_interval(values, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                  generator: torch.Generator | None = None) -> Interval:
    """Percentile-bootstrap interval of the mean of `values` (one value per class; nan dropped)."""
    _check(level, resamples)
    v = torch.tensor([float(x) for x in values if not math.isnan(float(x))], dtype=torch.float64)
    if len(v) < 2:
        raise ValueError(f"a bootstrap interval needs values for >= 2 classes, got {len(v)}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    return _interval(v, _resampled_means(v, resamples, g), level)


def paired_difference(a: dict, b: dict, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                      generator: torch.Generator | None = None) -> Interval:
    """Interval of mean(a[c] - b[c]) over the classes c both dicts hold (class -> value), paired."""
    _check(level, resamples)
    common = sorted(c for c in set(a) & set(b) if not (math.isnan(float(a[c])) or math.isnan(float(b[c]))))
    if len(common) < 2:
        raise ValueError(f"a paired interval needs >= 2 classes present in both runs, got {len(common)}")
    d = torch.tensor([float(a[c]) - float(b[c]) for c in common], dtype=torch.float64)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    return _interval(d, _resampled_means(d, resamples, g), level)
