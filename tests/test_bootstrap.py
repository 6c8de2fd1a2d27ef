"""Bootstrap intervals over classes (distill_core.analysis.bootstrap)."""
from __future__ import annotations

import math

import pytest
import torch

from distill_core.analysis.bootstrap import mean_interval, paired_difference


def test_equal_values_give_a_point_interval():
    iv = mean_interval([0.5] * 6)
    assert (iv.low, iv.mean, iv.high) == pytest.approx((0.5, 0.5, 0.5))


def test_interval_of_a_half_and_half_sample_matches_the_normal_approximation():
    # 20 classes, half 0 and half 1: mean 0.5, standard error sqrt(0.25 / 20) = 0.1118, so the 95%
    # interval is about 0.5 -/+ 1.96 * 0.1118 = [0.28, 0.72]
    iv = mean_interval([0.0, 1.0] * 10, resamples=4000)
    assert iv.mean == 0.5 and iv.n == 20
    assert iv.low == pytest.approx(0.28, abs=0.05) and iv.high == pytest.approx(0.72, abs=0.05)


def test_pairing_removes_the_spread_the_runs_share():
    base = {c: 0.8 + 0.02 * c for c in range(10)}  # classes differ a lot
    shifted = {c: v + 0.01 for c, v in base.items()}  # the other run is 0.01 higher in every class
    d = paired_difference(shifted, base)
    assert (d.low, d.mean, d.high) == pytest.approx((0.01, 0.01, 0.01))
    unpaired_a, unpaired_b = mean_interval(list(shifted.values())), mean_interval(list(base.values()))
    assert unpaired_a.contains(unpaired_b.mean)  # unpaired intervals overlap: pairing is what shows it


def test_nan_classes_are_dropped_and_bad_arguments_refused():
    assert mean_interval([0.1, math.nan, 0.3]).n == 2
    with pytest.raises(ValueError, match=">= 2 classes"):
        mean_interval([0.1, math.nan])
    with pytest.raises(ValueError, match="level"):
        mean_interval([0.1, 0.2], level=1.5)
    with pytest.raises(ValueError, match="both runs"):
        paired_difference({0: 0.1}, {1: 0.2})


def test_the_generator_makes_it_reproducible():
    vals = [0.1, 0.4, 0.35, 0.8, 0.2]
    one = mean_interval(vals, generator=torch.Generator().manual_seed(3))
    two = mean_interval(vals, generator=torch.Generator().manual_seed(3))
    assert (one.low, one.high) == (two.low, two.high)
