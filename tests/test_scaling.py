"""Scaling-law fit, bootstrap intervals, refusal with too few IPCs, and the Pareto frontier."""
from __future__ import annotations

import csv

import pytest

from distill_core.analysis.scaling import (
    config_label,
    configurations,
    fit_groups,
    fit_scaling,
    pareto_frontier,
    read_study_rows,
)

# a = 0.9, b = 0.5, c = 0.5 worked out by hand: 0.9 - 0.5 / sqrt(IPC)
EXACT = {1: 0.4, 4: 0.65, 16: 0.775, 100: 0.85}


def test_fit_recovers_a_saturating_power_law():
    fit = fit_scaling(list(EXACT), list(EXACT.values()), boots=20)
    assert fit.params["a"] == pytest.approx(0.9, abs=1e-3)
    assert fit.params["b"] == pytest.approx(0.5, abs=1e-3)
    assert fit.params["c"] == pytest.approx(0.5, abs=1e-3)
    assert fit.rmse < 1e-4 and all(abs(r["residual"]) < 1e-3 for r in fit.residuals)
    assert float(fit.predict(25)) == pytest.approx(0.8, abs=1e-3)  # 0.9 - 0.5 / 5


def test_bootstrap_intervals_cover_the_truth_and_widen_with_noise():
    noise = [0.02, -0.02, 0.01]
    ipcs = [v for v in EXACT for _ in noise]
    accs = [acc + e for acc in EXACT.values() for e in noise]
    fit = fit_scaling(ipcs, accs, boots=100)
    lo, hi = fit.intervals["a"]
    assert lo <= 0.9 <= hi and hi - lo > 1e-3
    assert fit.points == 12 and fit.ipcs == [1, 4, 16, 100]
    band = fit.band
    assert band[0]["ipc"] == 1 and band[-1]["ipc"] == pytest.approx(100)
    assert all(b["lo"] <= b["fitted"] + 1e-9 and b["fitted"] <= b["hi"] + 1e-9 for b in band)


def test_fewer_ipcs_than_parameters_is_refused_not_fitted():
    with pytest.raises(ValueError, match=r"3 parameters\) to 2 distinct IPC value\(s\) \[1, 10\]"):
        fit_scaling([1, 1, 10, 10], [0.3, 0.32, 0.7, 0.71])
    with pytest.raises(ValueError, match="IPC values must be > 0"):
        fit_scaling([0, 1, 2], [0.1, 0.2, 0.3])


def test_pareto_frontier_keeps_only_undominated_points():
    pts = [{"total_bytes": 100, "accuracy_mean": 0.5, "id": "a"}, {"total_bytes": 200, "accuracy_mean": 0.4, "id": "b"},
           {"total_bytes": 200, "accuracy_mean": 0.6, "id": "c"}, {"total_bytes": 300, "accuracy_mean": 0.6, "id": "d"},
           {"total_bytes": 50, "accuracy_mean": 0.2, "id": "e"}, {"total_bytes": 400, "accuracy_mean": 0.7, "id": "f"}]
    assert [p["id"] for p in pareto_frontier(pts)] == ["e", "a", "c", "f"]


def _write(path, rows):
    cols = ["ipc", "expert_epoch", "checkpoint_epoch", "transform", "transform_arg", "seed", "accuracy",
            "label_bytes", "image_bytes", "total_bytes", "expert_test_acc", "removed_class_acc", "status"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        w.writerows(rows)


def test_study_csv_to_groups_fits_and_configurations(tmp_path):
    rows = []
    for ipc, acc in EXACT.items():
        for seed, e in enumerate((0.01, -0.01)):
            rows.append({"ipc": ipc, "expert_epoch": 0, "checkpoint_epoch": 12, "transform": "none",
                         "transform_arg": 0, "seed": seed, "accuracy": acc + e, "label_bytes": ipc * 200,
                         "image_bytes": ipc * 640, "total_bytes": ipc * 840, "expert_test_acc": 0.9,
                         "removed_class_acc": "", "status": "ok"})
    rows.append({"ipc": 1, "expert_epoch": 0, "checkpoint_epoch": 12, "transform": "topk", "transform_arg": 0,
                 "seed": 0, "accuracy": 0.2, "label_bytes": 20, "image_bytes": 640, "total_bytes": 660,
                 "expert_test_acc": 0.9, "removed_class_acc": "", "status": "ok"})
    rows.append({"ipc": 4, "status": "failed"})
    _write(tmp_path / "r.csv", rows)
    _write(tmp_path / "again.csv", rows[:2])  # a second study sharing two cells
    parsed = read_study_rows([tmp_path / "r.csv", tmp_path / "again.csv"])
    assert len(parsed) == 9 and parsed[0]["ipc"] == 1 and parsed[0]["removed_class_acc"] is None
    fits = fit_groups(parsed, boots=10)
    assert fits["expert 12, full labels"]["params"]["a"] == pytest.approx(0.9, abs=0.02)
    assert "distinct IPC" in fits["hard labels"]["error"]
    confs = configurations(parsed)
    first = next(c for c in confs if c["ipc"] == 1 and c["config"] == "expert 12, full labels")
    assert first["n"] == 2 and first["accuracy_mean"] == pytest.approx(0.4)
    assert config_label({"transform": "topk", "transform_arg": 2, "checkpoint_epoch": 8}) == "expert 8, top-2"


def test_the_asymptote_never_exceeds_100_percent():
    # a straight line in IPC has no plateau: a free fit would put a far above 1
    fit = fit_scaling([1, 2, 3, 4], [0.2, 0.4, 0.6, 0.8], boots=10)
    assert fit.params["a"] <= 1.0 and fit.intervals["a"][1] <= 1.0
