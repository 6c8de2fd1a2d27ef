"""The expert-label study: tidy rows, zero-shot scores, resume, a failing cell, bad specs."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from distill_core.labels import expert_sweep
from distill_core.labels.expert_sweep import ExpertSweepConfig, best_expert_epochs, read_rows, run_expert_sweep, summarise
from distill_core.labels.grid import run_grid


def _cfg(teacher, **kw) -> ExpertSweepConfig:
    base = dict(teacher=str(teacher), expert_epochs=(3, 0), ipcs=(2,), transforms=("none", "drop_class:3"),
                seeds=(0,), student={"model_args": {"width": 8, "depth": 2}, "epochs": 2, "batch_size": 10},
                device="cpu")
    return ExpertSweepConfig(**(base | kw))


def test_sweep_rows_hold_expert_and_student_accuracy_bytes_and_zero_shot(digits_teacher_dir, tmp_path):
    metrics = run_expert_sweep(_cfg(digits_teacher_dir), tmp_path / "s")
    rows = read_rows(tmp_path / "s" / "results.csv")
    assert metrics["cells"] == 4 and metrics["failed"] == 0 and len(rows) == 4
    by = {(r["expert_epoch"], r["transform"]): r for r in rows}
    full = by[("0", "none")]
    assert full["checkpoint_epoch"] == "12"  # epoch 0 = the final teacher of the 12-epoch fixture
    assert int(full["label_bytes"]) == 20 * 10 * 2 and int(full["image_bytes"]) == 20 * 64
    assert int(full["total_bytes"]) == 400 + 1280
    drop = by[("3", "drop_class")]
    assert int(drop["num_images"]) == 18 and int(drop["label_bytes"]) == 18 * 10 * 2
    assert drop["removed_class"] == "3" and 0.0 <= float(drop["removed_class_acc"]) <= 1.0
    assert float(drop["chance"]) == 0.1 and full["removed_class_acc"] == ""
    assert by[("3", "none")]["expert_test_acc"] == drop["expert_test_acc"]  # one expert, scored once
    assert float(by[("3", "none")]["expert_test_acc"]) < float(full["expert_test_acc"])  # epoch 3 is weaker


def test_resume_skips_finished_cells(digits_teacher_dir, tmp_path):
    cfg = _cfg(digits_teacher_dir, transforms=("none",), expert_epochs=(0,))
    run_expert_sweep(cfg, tmp_path / "s")
    first = read_rows(tmp_path / "s" / "results.csv")
    bigger = _cfg(digits_teacher_dir, transforms=("none",), expert_epochs=(0,), seeds=(0, 1))
    with pytest.raises(ValueError, match="different config"):
        run_expert_sweep(bigger, tmp_path / "s", resume=True)
    run_expert_sweep(cfg, tmp_path / "s", resume=True)
    assert read_rows(tmp_path / "s" / "results.csv") == first  # same row, same seconds: not rerun


@dataclass(frozen=True)
class _Cell:
    name: str
    seed: int

    @property
    def key(self):
        return self.name, str(self.seed)


def test_run_grid_records_a_failed_cell_goes_on_and_retries_it(tmp_path):
    cols = ("name", "seed", "accuracy", "status", "error", "seconds")
    cells = [_Cell("a", 0), _Cell("bad", 0), _Cell("c", 0)]
    calls = []

    def run_one(cell):
        calls.append(cell.name)
        if cell.name == "bad" and len(calls) < 4:
            raise RuntimeError("boom")
        return {"name": cell.name, "seed": cell.seed, "accuracy": 0.5, "status": "ok", "error": ""}

    def key(r):
        return r["name"], str(r["seed"])

    rows = run_grid(cells, tmp_path / "r.csv", cols, key, run_one, str, lambda p, m: None)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"] and "boom" in rows[1]["error"]
    rows = run_grid(cells, tmp_path / "r.csv", cols, key, run_one, str, lambda p, m: None)
    assert calls == ["a", "bad", "c", "bad"] and [r["status"] for r in rows] == ["ok"] * 3


def test_a_missing_expert_epoch_is_refused_before_any_cell(digits_teacher_dir, tmp_path):
    with pytest.raises(ValueError, match=r"expert epoch\(s\) \[40\]; epochs that exist: \[1, 2, 3"):
        run_expert_sweep(_cfg(digits_teacher_dir, expert_epochs=(3, 40)), tmp_path / "s")


@pytest.mark.parametrize("kw, match", [
    ({"temperature": 0.0}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"transforms": ("swap",)}, None), ({"ipcs": ()}, "at least one"), ({"student": {"seed": 3}}, "per cell"),
])
def test_bad_specs(digits_teacher_dir, kw, match):
    if match is None:  # swap without k parses; its range is checked against C when the sweep starts
        assert _cfg(digits_teacher_dir, **kw).transforms == ("swap",)
        return
    with pytest.raises(ValueError, match=match):
        _cfg(digits_teacher_dir, **kw)


@pytest.mark.parametrize("transform, match", [("topk:11", r"k in 0\.\.10"), ("drop_class:10", r"class in 0\.\.9"),
                                              ("swap", r"k in 1\.\.9")])
def test_transform_arguments_are_checked_against_c_up_front(digits_teacher_dir, transform, match):
    with pytest.raises(ValueError, match=match):
        expert_sweep.check_plan(_cfg(digits_teacher_dir, transforms=(transform,)), 10)


def test_summary_and_best_expert_per_ipc():
    def row(ipc, e, acc, seed):
        return {"status": "ok", "ipc": ipc, "expert_epoch": e, "checkpoint_epoch": e, "transform": "none",
                "transform_arg": 0, "accuracy": acc, "expert_test_acc": 0.9, "label_bytes": 20, "total_bytes": 80,
                "removed_class_acc": "", "seed": seed}

    rows = [row(1, 2, 0.5, 0), row(1, 2, 0.7, 1), row(1, 9, 0.4, 0), row(10, 2, 0.6, 0), row(10, 9, 0.8, 0),
            {"status": "failed", "ipc": 10, "expert_epoch": 2}]
    s = summarise(rows)
    first = next(r for r in s if r["ipc"] == 1 and r["expert_epoch"] == 2)
    assert first["n"] == 2 and first["accuracy_mean"] == pytest.approx(0.6)
    assert first["accuracy_std"] == pytest.approx(0.1414214, abs=1e-6)
    assert best_expert_epochs(s) == {1: 2, 10: 9}


def test_cli_verbs_refuse_bad_input_with_exit_code_2(digits_teacher_dir, tmp_path, capsys):
    from distill_core.cli import main

    code = main(["expertlabels", "--images", str(tmp_path), "--teacher", str(digits_teacher_dir),
                 "--temperature", "0", "--run-dir", str(tmp_path / "l")])
    assert code == 2 and "temperature T must be a finite number > 0" in capsys.readouterr().err
    spec = tmp_path / "s.yaml"
    spec.write_text(f"teacher: {digits_teacher_dir}\nexpert_epochs: [99]\nipcs: [1]\ndevice: cpu\n")
    assert main(["expertsweep", "--spec", str(spec), "--run-dir", str(tmp_path / "s")]) == 2
    assert "epochs that exist: [1, 2" in capsys.readouterr().err
