"""The synthesis job appends its reported loss points to the run folder while it runs, so the app's
live curve survives a reload (it used to live in the browser session)."""
from __future__ import annotations

import shutil

import pytest

from appkit import runs_view, synth_view
from distill_core.synthesis.live import LIVE_FILE
from distill_core.synthesis.run import run_synthesize
from distill_core.synthesis.synthesize import SynthesisConfig


def test_losses_are_appended_to_the_run_folder_as_the_job_reports_them(tmp_path, digits_teacher_dir):
    teacher = tmp_path / "teacher"  # a copy: class statistics are cached in the teacher's folder
    shutil.copytree(digits_teacher_dir, teacher)
    cfg = SynthesisConfig(teacher=str(teacher), preset="lpld", ipc=2, iterations=50, device="cpu",
                          group_size=10)
    run_synthesize(cfg, tmp_path / "s")
    live = runs_view.read_csv_rows(tmp_path / "s" / LIVE_FILE)
    assert len(live) >= 10  # reported every iterations // 50 steps
    assert [r["progress"] for r in live] == sorted(r["progress"] for r in live)
    last = live[-1]
    assert last["iteration"] == 50 and last["progress"] == pytest.approx(1.0)
    # one pass over all 10 classes: the live point is the mean over classes of the final losses.csv rows
    final = [r for r in runs_view.read_csv_rows(tmp_path / "s" / "losses.csv") if r["iteration"] == 50]
    assert len(final) == 10
    assert last["ce"] == pytest.approx(sum(r["ce"] for r in final) / 10, abs=1e-3)
    assert last["bn"] == pytest.approx(sum(r["bn"] for r in final) / 10, abs=1e-3)
    # the page's live curve reads the same file (x = progress in %)
    rows = synth_view.live_rows(tmp_path / "s")
    assert rows[-1]["progress"] == pytest.approx(100.0) and len(rows) == len(live)
