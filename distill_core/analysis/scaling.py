"""Data-knowledge scaling of expert soft labels: accuracy against IPC, and accuracy per byte.

Reads the expert-label study's tidy CSV (`expertsweep` results.csv, an artifact). The form fitted
is a saturating power law (Qin et al. 2024 report an empirical scaling law without its form):

    acc(IPC) = a - b * IPC^(-c),   a = accuracy at infinite data, b > 0, c > 0.

For a fixed c the model is linear in (a, b), so the fit solves least squares for (a, b) on a
log-spaced grid of c in [0.05, 4] and refines c by golden-section search: no optimiser state, no
start values. The ceiling a <= 1 holds (accuracy is a fraction).
It is fitted to every seed's point; intervals are percentiles of `boots` bootstrap refits that
resample the points with replacement within each IPC (so they need several seeds per IPC to have
any width). A fit needs at least as many distinct IPCs
as parameters (3). The Pareto frontier keeps the configurations (IPC x expert epoch x top-k) that
no other one beats with fewer or equal total bytes (images + labels).
"""
from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PARAMS = ("a", "b", "c")
FORM = "acc = a - b * IPC^(-c)"


CELL_KEY = ("source", "ipc", "checkpoint_epoch", "expert_test_acc", "temperature", "transform", "transform_arg", "seed")


def read_study_rows(paths: list[str | Path]) -> list[dict]:
    """The ok rows of one or more `expertsweep` results.csv files, numbers parsed; a cell that two
    studies share (same expert, IPC, transform and seed) is kept once."""
    rows, seen = [], set()
    for path in paths:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("status") != "ok":
                    continue
                for k in ("ipc", "expert_epoch", "checkpoint_epoch", "transform_arg", "seed", "label_bytes",
                          "image_bytes", "total_bytes", "num_images"):
                    if r.get(k) not in (None, ""):
                        r[k] = int(r[k])
                for k in ("accuracy", "expert_test_acc", "removed_class_acc", "chance"):
                    r[k] = float(r[k]) if r.get(k) not in (None, "") else None
                key = tuple(str(r.get(k)) for k in CELL_KEY)
                if key not in seen:
                    seen.add(key)
                    rows.append(r)
    return rows


def power_law(ipc, a: float, b: float, c: float):
    return a - b * np.asarray(ipc, dtype=float) ** (-c)


def _lstsq_ab(x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float, float]:
    """(a, b, sum of squared residuals) of the least-squares fit y = a - b x^-c for this c, with the
    accuracy ceiling a <= 1 (when the free fit overshoots it, a = 1 and b is fitted alone)."""
    u = x ** (-c)
    design = np.stack([np.ones_like(x), -u], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    if a > 1.0:
        a, b = 1.0, float(u @ (1.0 - y) / (u @ u))
    resid = y - (a - b * u)
    return float(a), float(b), float(resid @ resid)


def _fit_params(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    grid = np.geomspace(0.05, 4.0, 120)
    sse = [_lstsq_ab(x, y, c)[2] for c in grid]
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(40):  # golden-section search for c inside the grid's best bracket
        m1, m2 = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if _lstsq_ab(x, y, m1)[2] < _lstsq_ab(x, y, m2)[2]:
            hi = m2
        else:
            lo = m1
    c = (lo + hi) / 2
    a, b, _ = _lstsq_ab(x, y, c)
    return a, b, float(c)


@dataclass
class ScalingFit:
    params: dict  # a, b, c
    intervals: dict  # name -> (2.5%, 97.5%) bootstrap percentiles
    points: int
    ipcs: list[int]
    residuals: list[dict] = field(default_factory=list)  # per IPC: mean acc, fitted, mean residual
    rmse: float = float("nan")
    band: list[dict] = field(default_factory=list)  # per IPC on a grid: fitted, lo, hi
    form: str = FORM

    def predict(self, ipc) -> np.ndarray:
        return power_law(ipc, *(self.params[k] for k in PARAMS))

    def to_dict(self) -> dict:
        return {"form": self.form, "params": self.params, "intervals": self.intervals, "points": self.points,
                "ipcs": self.ipcs, "rmse": self.rmse, "residuals": self.residuals, "band": self.band}


def fit_scaling(ipcs: list[float], accs: list[float], boots: int = 200, seed: int = 0,
                band_points: int = 40) -> ScalingFit:
    """Fit `FORM` to (IPC, accuracy) points, one per seed; bootstrap 95% intervals and a band."""
    x, y = np.asarray(ipcs, dtype=float), np.asarray(accs, dtype=float)
    if len(x) != len(y) or not len(x):
        raise ValueError("give one accuracy per IPC point (equal, non-empty lists)")
    if np.any(x <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("IPC values must be > 0 and accuracies finite")
    distinct = sorted(set(x.tolist()))
    if len(distinct) < len(PARAMS):
        raise ValueError(f"cannot fit {FORM} ({len(PARAMS)} parameters) to {len(distinct)} distinct IPC value(s) "
                         f"{[int(v) for v in distinct]}: run the study at {len(PARAMS)} or more IPCs")
    a, b, c = _fit_params(x, y)
    rng = np.random.default_rng(seed)
    groups = [np.nonzero(x == v)[0] for v in distinct]
    grid = np.geomspace(min(distinct), max(distinct), band_points)
    samples, curves = [], []
    for _ in range(boots):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        p = _fit_params(x[idx], y[idx])
        samples.append(p)
        curves.append(power_law(grid, *p))
    samples, curves = np.array(samples), np.array(curves)
    fit = ScalingFit({"a": a, "b": b, "c": c}, {}, len(x), [int(v) for v in distinct])
    for i, name in enumerate(PARAMS):
        fit.intervals[name] = (float(np.percentile(samples[:, i], 2.5)), float(np.percentile(samples[:, i], 97.5)))
    pred = fit.predict(x)
    fit.rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    for v, g in zip(distinct, groups):
        mean = float(y[g].mean())
        fitted = float(fit.predict(v))
        fit.residuals.append({"ipc": int(v), "accuracy_mean": mean, "fitted": fitted, "residual": mean - fitted})
    fit.band = [{"ipc": float(g), "fitted": float(fit.predict(g)), "lo": float(np.percentile(curves[:, j], 2.5)),
                 "hi": float(np.percentile(curves[:, j], 97.5))} for j, g in enumerate(grid)]
    return fit


def config_label(row: dict) -> str:
    """"expert 8, top-2" / "expert 24, full labels" / "hard labels" for a study row or summary."""
    if row.get("transform") == "topk" and int(row.get("transform_arg", 0)) == 0:
        return "hard labels"
    labels = f"top-{row['transform_arg']}" if row.get("transform") == "topk" else "full labels"
    return f"expert {row.get('checkpoint_epoch') or row.get('expert_epoch')}, {labels}"


def scaling_groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows of the IPC curves: untransformed or top-k labels, grouped by `config_label`."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r["transform"] in ("none", "topk"):
            out.setdefault(config_label(r), []).append(r)
    return out


def fit_groups(rows: list[dict], boots: int = 200) -> dict[str, dict]:
    """`fit_scaling` of every group with enough IPCs; groups with too few carry the refusal instead."""
    out = {}
    for name, rs in sorted(scaling_groups(rows).items()):
        try:
            out[name] = fit_scaling([r["ipc"] for r in rs], [r["accuracy"] for r in rs], boots).to_dict()
        except ValueError as exc:
            out[name] = {"error": str(exc)}
    return out


def configurations(rows: list[dict]) -> list[dict]:
    """Mean +- std accuracy over seeds of every (IPC, expert epoch, top-k) with its total bytes."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["transform"] in ("none", "topk"):
            groups.setdefault((r["ipc"], config_label(r)), []).append(r)
    out = []
    for (ipc, label), rs in sorted(groups.items()):
        accs = [r["accuracy"] for r in rs]
        out.append({"ipc": ipc, "config": label, "expert_epoch": rs[0].get("checkpoint_epoch"),
                    "transform": rs[0]["transform"], "transform_arg": rs[0]["transform_arg"], "n": len(accs),
                    "accuracy_mean": statistics.fmean(accs), "accuracy_std": statistics.stdev(accs) if len(accs) > 1
                    else 0.0, "label_bytes": rs[0]["label_bytes"], "image_bytes": rs[0]["image_bytes"],
                    "total_bytes": rs[0]["total_bytes"]})
    return out


def pareto_frontier(points: list[dict], x: str = "total_bytes", y: str = "accuracy_mean") -> list[dict]:
    """The points no other point beats (higher y at no more x), sorted by x ascending."""
    best, out = -math.inf, []
    for p in sorted(points, key=lambda p: (p[x], -p[y])):
        if p[y] > best:
            out.append(p)
            best = p[y]
    return out
