import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distill_core import runs
from distill_core.models import evaluate
from distill_core.teacher import TeacherConfig, list_epoch_checkpoints, load_teacher, lr_at, run_teacher

ROOT = Path(__file__).resolve().parents[1]


def test_teacher_run_learns_digits_and_keeps_every_epoch(digits_teacher_dir, digits):
    model, spec, ckpt = load_teacher(digits_teacher_dir)
    assert spec.info == digits.info
    assert list_epoch_checkpoints(digits_teacher_dir) == list(range(1, 13))
    acc = evaluate(model, digits.test.images, digits.test.labels)
    assert acc == pytest.approx(ckpt["test_acc"], abs=1e-6) and acc > 0.9
    history = runs.read_json(digits_teacher_dir / "history.json")
    assert [r["epoch"] for r in history] == list(range(1, 13))
    first, _, _ = load_teacher(digits_teacher_dir, epoch=1)
    assert evaluate(first, digits.test.images, digits.test.labels) < acc  # expert epochs differ
    assert runs.read_status(digits_teacher_dir)["state"] == "done"
    prov = runs.read_json(digits_teacher_dir / "provenance.json")
    assert prov["seed"] == 0 and prov["torch"] == torch.__version__


def test_same_seed_same_teacher(tmp_path):
    cfg = TeacherConfig(model_args={"width": 8, "depth": 2}, epochs=2, seed=3, device="cpu")
    a = run_teacher(cfg, tmp_path / "a")
    b = run_teacher(cfg, tmp_path / "b")
    assert a["test_acc"] == b["test_acc"]
    wa = load_teacher(tmp_path / "a")[0].state_dict()
    wb = load_teacher(tmp_path / "b")[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


class _Stop(Exception):
    pass


def test_resume_from_a_saved_state_gives_the_same_weights(digits):
    """Stopping after epoch 2 and resuming from its saved state matches an uninterrupted run exactly."""
    import copy

    from distill_core.device import make_generator
    from distill_core.teacher import train_teacher

    cfg = TeacherConfig(model_args={"width": 8, "depth": 2}, epochs=3, seed=1, device="cpu")
    cpu = torch.device("cpu")
    full = train_teacher(cfg, digits, cpu, make_generator(cfg.seed))
    saved = {}

    def stop_after_two(row, model, state):
        if row["epoch"] == 2:
            saved.update(copy.deepcopy(state))
            raise _Stop

    with pytest.raises(_Stop):
        train_teacher(cfg, digits, cpu, make_generator(cfg.seed), on_epoch=stop_after_two)
    resumed = train_teacher(cfg, digits, cpu, make_generator(99), resume_state=saved)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_killed_process_leaves_a_resumable_run(tmp_path):
    """SIGKILL mid-run: the run reads `interrupted`, its last checkpoint loads, --resume finishes it."""
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "distill_core", "teacher", "--model-args", "width=8,depth=2", "--epochs", "12",
           "--device", "cpu", "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list_epoch_checkpoints(run_dir)) < 2:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert runs.read_status(run_dir)["state"] == "interrupted"
    last = list_epoch_checkpoints(run_dir)[-1]
    model, _, ckpt = load_teacher(run_dir, epoch=last)
    assert ckpt["epoch"] == last
    out = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert runs.read_status(run_dir)["state"] == "done"
    assert list_epoch_checkpoints(run_dir) == list(range(1, 13))


def test_lr_schedule_warms_up_then_decays_to_zero():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(100, 100, 10, 1.0) == pytest.approx(0.0)
    assert not any(math.isnan(v) for v in lrs)


def test_existing_run_dir_is_refused_and_kept(digits_teacher_dir):
    before = sorted(p.name for p in digits_teacher_dir.iterdir())
    with pytest.raises(ValueError, match="already exists"):
        run_teacher(TeacherConfig(epochs=1, device="cpu"), digits_teacher_dir)
    assert sorted(p.name for p in digits_teacher_dir.iterdir()) == before


def test_cuda_requested_without_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        run_teacher(TeacherConfig(epochs=1, device="cuda"), tmp_path / "c")
