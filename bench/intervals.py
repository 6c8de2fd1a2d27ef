"""Shared by the bench tables: sweep rows grouped by cell and seed, and the 95% t interval of a mean over a few
seeds."""
from __future__ import annotations

import math
import statistics

T95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}  # two-sided 95% t quantiles for n values (n - 1 degrees of freedom)


def t95(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t interval of the mean of `values`; exact quantiles for n = 2..5, the
    normal 1.96 beyond; low = high = nan for a single value."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, math.nan, math.nan
    h = T95.get(len(values), 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - h, m + h


def mean_std(values: list[float], digits: int) -> str:
    """'mean ± std' (sample std; 0 for one value) with `digits` decimals."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def seed_cells(rows: list[dict]) -> dict[tuple, dict[str, dict]]:
    """A sweep's finished rows grouped as {(source, strategy, ratio as a float, 0 for none): {seed: row}}."""
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            cells.setdefault((r["source"], r["strategy"], float(r["ratio"] or 0)), {})[r["seed"]] = r
    return cells
