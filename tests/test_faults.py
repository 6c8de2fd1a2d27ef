"""Fault injection, kill -9: every stage killed at several points, then --resume, equals an uninterrupted run.

The job kills itself with SIGKILL at the first progress report at or past a chosen fraction
(`jobs.FAULT_ENV`, "stage:fraction"), so each point is reproducible. The killed run is a real
`python -m distill_core` process; the uninterrupted reference and the resume run here, all on one
CPU thread so that the numbers are bitwise comparable.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from distill_core import jobs, runs

ROOT = Path(__file__).resolve().parent.parent


def _killed(args: list[str], at: str) -> None:
    """Run `python -m distill_core <args>` with a SIGKILL injected at `at`; it must die of that signal."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), jobs.FAULT_ENV: at}
    out = subprocess.run([sys.executable, "-m", "distill_core", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == -9, f"expected a SIGKILL at {at}, got exit {out.returncode}: {out.stderr[-2000:]}"


def _assert_interrupted_then_locked_stale(run_dir: Path) -> None:
    assert runs.read_status(run_dir)["state"] == "interrupted"
    assert (run_dir / runs.LOCK_FILE).is_file() and runs.lock_holder(run_dir) is None  # left behind, not held


def _tensors_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("at", ["teacher:0.3", "teacher:0.8"])
def test_teacher_killed_then_resumed_equals_uninterrupted(tmp_path, at, one_thread, capfd):
    from distill_core.teacher import TeacherConfig, run_teacher

    cfg = TeacherConfig(model_args={"width": 8, "depth": 2}, epochs=4, device="cpu")
    run_teacher(cfg, tmp_path / "ref")
    run_dir = tmp_path / "killed"
    _killed(["teacher", "--model-args", "width=8,depth=2", "--epochs", "4", "--device", "cpu",
             "--run-dir", str(run_dir)], at)
    _assert_interrupted_then_locked_stale(run_dir)
    capfd.readouterr()
    run_teacher(cfg, run_dir, resume=True)
    assert "recovered the stale lock of pid" in capfd.readouterr().err
    assert not (run_dir / runs.LOCK_FILE).exists()
    ref, got = (runs.load_tensors(d / "teacher.pt")["state_dict"] for d in (tmp_path / "ref", run_dir))
    _tensors_equal(ref, got)


@pytest.fixture(scope="module")
def own_teacher(tmp_path_factory, digits_teacher_dir) -> Path:
    """A copy of the session's teacher: class-wise synthesis saves class statistics beside its teacher."""
    import shutil

    path = tmp_path_factory.mktemp("faults-teacher") / "teacher"
    shutil.copytree(digits_teacher_dir, path)
    return path


@pytest.mark.parametrize("at", ["synthesize:0.3", "synthesize:0.7"])
def test_synthesis_killed_then_resumed_equals_uninterrupted(tmp_path, own_teacher, at, one_thread):
    from distill_core.synthesis.run import PARTIAL_DIR, run_synthesize
    from distill_core.synthesis.synthesize import SynthesisConfig

    digits_teacher_dir = own_teacher

    cfg = SynthesisConfig(teacher=str(digits_teacher_dir), preset="lpld", ipc=2, iterations=6, group_size=2,
                          device="cpu")
    run_synthesize(cfg, tmp_path / "ref")
    run_dir = tmp_path / "killed"
    _killed(["synthesize", "--teacher", str(digits_teacher_dir), "--preset", "lpld", "--ipc", "2", "--iterations",
             "6", "--group-size", "2", "--device", "cpu", "--run-dir", str(run_dir)], at)
    _assert_interrupted_then_locked_stale(run_dir)
    kept = len(list((run_dir / PARTIAL_DIR).glob("unit_*.pt")))
    assert 0 < kept < 10  # killed between units: some classes done, some not
    run_synthesize(cfg, run_dir, resume=True)
    _tensors_equal(runs.load_tensors(tmp_path / "ref" / "images.pt"), runs.load_tensors(run_dir / "images.pt"))


@pytest.fixture(scope="module")
def real_images(tmp_path_factory) -> Path:
    from distill_core.labels.realimages import RealImagesConfig, run_realimages

    path = tmp_path_factory.mktemp("faults") / "rr"
    run_realimages(RealImagesConfig(dataset="digits", ipc=3, seed=0), path)
    return path


@pytest.mark.parametrize("at,finished", [("relabel:0.4", 3), ("relabel:0.8", 5)])
def test_relabel_killed_then_resumed_continues_and_equals_uninterrupted(tmp_path, digits_teacher_dir, real_images,
                                                                       at, finished, one_thread):
    from distill_core.labels.relabel import LOGITS_FILE, PARAMS_FILE, RelabelConfig, run_relabel

    cfg = RelabelConfig(images=str(real_images), teacher=str(digits_teacher_dir), epochs=6, batch_size=10,
                        crop_scale=(0.25, 1.0), device="cpu")
    run_relabel(cfg, tmp_path / "ref")
    run_dir = tmp_path / "killed"
    _killed(["relabel", "--images", str(real_images), "--teacher", str(digits_teacher_dir), "--epochs", "6",
             "--batch-size", "10", "--crop-scale", "0.25", "1.0", "--device", "cpu", "--run-dir", str(run_dir)], at)
    _assert_interrupted_then_locked_stale(run_dir)
    metrics = run_relabel(cfg, run_dir, resume=True)
    # 6 epochs report 1/6 .. 6/6; the first report at or past 0.4 (0.8) comes after epoch 3 (5) was saved
    assert metrics["resumed_after_epoch"] == finished
    for name in (PARAMS_FILE, LOGITS_FILE):
        _tensors_equal(runs.load_tensors(tmp_path / "ref" / name), runs.load_tensors(run_dir / name))
    assert not (run_dir / "label_epochs").exists()


def _sweep_spec(tmp_path: Path, teacher: Path, images: Path) -> tuple[Path, dict]:
    spec = {"teacher": str(teacher), "sources": {"rr": str(images)}, "ratios": [1, 2], "seeds": [0],
            "relabel": {"epochs": 4, "batch_size": 10, "crop_scale": [0.25, 1.0]},
            "student": {"model_args": {"width": 8, "depth": 2}, "epochs": 3, "eval_every": 1000,
                        "crop_scale": [0.25, 1.0]},
            "test_limit": 100, "device": "cpu"}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, spec


@pytest.mark.parametrize("at", ["relabel:0.5", "sweep:0.5"])
def test_sweep_killed_then_resumed_equals_uninterrupted(tmp_path, digits_teacher_dir, real_images, at, one_thread):
    from distill_core.config import config_from_dict
    from distill_core.labels.sweep import RESULTS_FILE, SweepConfig, read_rows, run_sweep

    spec_path, spec = _sweep_spec(tmp_path, digits_teacher_dir, real_images)
    cfg = config_from_dict(SweepConfig, spec)
    run_sweep(cfg, tmp_path / "ref")
    run_dir = tmp_path / "killed"
    _killed(["sweep", "--spec", str(spec_path), "--run-dir", str(run_dir)], at)  # in relabel, or between cells
    assert runs.read_status(run_dir)["state"] == "interrupted"
    run_sweep(cfg, run_dir, resume=True)
    ref, got = read_rows(tmp_path / "ref" / RESULTS_FILE), read_rows(run_dir / RESULTS_FILE)
    assert [(r["source"], r["ratio"], r["status"], r["accuracy"]) for r in got] == \
        [(r["source"], r["ratio"], r["status"], r["accuracy"]) for r in ref]
    assert all(r["status"] == "ok" for r in got)
