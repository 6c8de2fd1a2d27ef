"""Sweep: tidy rows per cell, a failed cell recorded without stopping, finished cells kept on resume."""
import pytest
import torch

from distill_core.labels.realimages import RealImagesConfig, run_realimages
from distill_core.labels.sweep import COLUMNS, RESULTS_FILE, SweepConfig, plan_cells, read_rows, run_sweep, summarise


def _config(images, teacher, seeds=(0,)):
    return SweepConfig(teacher=str(teacher), sources={"random_real": str(images)}, ratios=(1, 4, 1000),
                       rules=("confidence_easy",), rule_ratios=(4,), hard_labels=True, seeds=seeds, device="cpu",
                       threads=1, relabel={"epochs": 4, "batch_size": 25, "crop_scale": [0.25, 1.0]},
                       student={"model_args": {"width": 8, "depth": 2}, "eval_every": 100, "temperature": 4.0})


def test_plan_cells_counts():
    cfg = SweepConfig(sources={"a": "x", "b": "y"}, ratios=(1, 10, 40), rules=("margin_easy", "random"),
                      rule_ratios=(10, 40), hard_labels=True, seeds=(0, 1))
    # per source and seed: 1 hard + 3 random + 2 margin (random at 10/40 already in the grid)
    assert len(plan_cells(cfg)) == 2 * 2 * 6
    with pytest.raises(ValueError, match="unknown pruning strategy 'nope'"):
        SweepConfig(sources={"a": "x"}, strategies=("nope",))
    with pytest.raises(ValueError, match="per cell"):
        SweepConfig(sources={"a": "x"}, student={"ratio": 0.5})


def test_sweep_writes_tidy_rows_and_resumes(tmp_path, digits_teacher_dir):
    run_realimages(RealImagesConfig(dataset="digits", ipc=5, seed=0), tmp_path / "rr")
    run_dir = tmp_path / "sweep"
    metrics = run_sweep(_config(tmp_path / "rr", digits_teacher_dir, seeds=(0, 1)), run_dir)
    rows = read_rows(run_dir / RESULTS_FILE)
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 2 * 5
    assert [r["seed"] for r in rows] == ["0"] * 5 + ["1"] * 5  # seed-major: every cell once before any repeat
    by = {(r["strategy"], float(r["ratio"]), r["seed"]): r for r in rows}
    for seed in ("0", "1"):
        assert by[("random", 1000.0, seed)]["status"] == "failed" and "no batch" in by[("random", 1000.0, seed)]["error"]
        assert float(by[("random", 4.0, seed)]["label_bytes"]) < float(by[("random", 1.0, seed)]["label_bytes"])
        assert float(by[("hard_labels", 0.0, seed)]["label_bytes"]) == 0
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 2 * 4 and metrics["failed"] == 2
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in ok)
    # resume with the same spec: the finished rows are kept verbatim (their seconds too: nothing reran)
    run_sweep(_config(tmp_path / "rr", digits_teacher_dir, seeds=(0, 1)), run_dir, resume=True)
    again = read_rows(run_dir / RESULTS_FILE)
    assert [r for r in again if r["status"] == "ok"] == ok
    summary = summarise(again)
    assert {(s["strategy"], s["ratio"]) for s in summary} == {("hard_labels", 0.0), ("random", 1.0),
                                                             ("random", 4.0), ("confidence_easy", 4.0)}
    assert {s["n"] for s in summary} == {2}  # both seeds in every mean


def test_summarise_mean_and_std():
    rows = [{"source": "a", "ipc": "10", "strategy": "random", "ratio": "10", "accuracy": str(a), "status": "ok",
             "label_bytes": "5", "image_bytes": "7"} for a in (0.5, 0.7)]
    (s,) = summarise(rows + [dict(rows[0], status="failed")])
    assert s["n"] == 2 and s["accuracy_mean"] == pytest.approx(0.6) and s["accuracy_std"] == pytest.approx(0.1414, 1e-3)



def test_a_source_whose_labels_fail_fails_each_of_its_cells_with_its_own_error(tmp_path, digits_teacher_dir):
    """Relabeling fails (a teacher of another dataset): every cell of that source reports the real cause."""
    from distill_core.data import DatasetInfo
    from distill_core.imageset import ImageSetArtifact, save_image_set

    info = DatasetInfo("other", 3, 1, 8, (0.5,), (0.25,), ("a", "b", "c"), flip=False)
    save_image_set(tmp_path / "other", ImageSetArtifact(torch.rand(6, 1, 8, 8), torch.tensor([0, 0, 1, 1, 2, 2]),
                                                        info, "random_real"))
    cfg = SweepConfig(teacher=str(digits_teacher_dir), sources={"other": str(tmp_path / "other")}, ratios=(1, 4),
                      rules=(), hard_labels=False, seeds=(0,), device="cpu", threads=1)
    metrics = run_sweep(cfg, tmp_path / "sweep")
    rows = read_rows(tmp_path / "sweep" / RESULTS_FILE)
    assert metrics["failed"] == 2 and [r["status"] for r in rows] == ["failed", "failed"]
    assert rows[0]["error"] == rows[1]["error"] and "KeyError" not in rows[1]["error"], rows[1]["error"]


def test_rows_record_actual_compression_views_per_image_and_images_covered(tmp_path, digits_teacher_dir):
    run_realimages(RealImagesConfig(dataset="digits", ipc=5, seed=0), tmp_path / "rr")
    cfg = SweepConfig(teacher=str(digits_teacher_dir), sources={"rr": str(tmp_path / "rr")}, strategies=("random", "first"),
                      ratios=(1, 4), seeds=(0,), device="cpu", threads=1, test_limit=100,
                      relabel={"epochs": 4, "batch_size": 25}, student={"model_args": {"width": 8, "depth": 2}})
    run_sweep(cfg, tmp_path / "sweep")
    by = {(r["strategy"], float(r["ratio"])): r for r in read_rows(tmp_path / "sweep" / RESULTS_FILE)}
    # 50 images, B 25: 2 batches a label epoch, 8 stored; 4x keeps floor(8 / 4) = 2 batches = 50 views
    full, first = by[("random", 1.0)], by[("first", 4.0)]
    assert (float(full["views_per_image"]), float(full["images_covered"]), float(full["compression"])) == (4.0, 1.0, 1.0)
    assert int(first["kept_batches"]) == 2 and float(first["views_per_image"]) == 1.0
    assert float(first["images_covered"]) == 1.0  # the first label epoch labels every image once
    assert float(first["compression"]) == pytest.approx(4.0)
    assert 0.0 < float(by[("random", 4.0)]["images_covered"]) <= 1.0


def test_dd_ranking_rows_per_seed_worked_by_hand():
    from distill_core.labels.sweep import dd_ranking_rows

    def row(source, strategy, ratio, seed, acc):
        return {"source": source, "strategy": strategy, "ratio": ratio, "seed": seed, "accuracy": acc, "status": "ok"}

    rows = [row("real_data", "real_hard", 0, 0, 0.9), row("real_data", "real_hard", 0, 1, 0.8),
            row("syn", "hard_labels", 0, 0, 0.5), row("syn", "hard_labels", 0, 1, 0.4),
            row("syn", "random", 10, 0, 0.7), row("syn", "random", 10, 1, 0.6),
            row("random_real", "random", 10, 0, 0.6), row("random_real", "random", 10, 1, 0.65),
            row("syn", "random", 40, 0, 0.5)]  # no random-real cell at 40x: not ranked
    (r,) = dd_ranking_rows(rows)
    assert (r["source"], r["strategy"], r["ratio"], r["n"]) == ("syn", "random", 10.0, 2)
    assert r["HLR_mean"] == pytest.approx(0.4) and r["HLR_std"] == pytest.approx(0.0, abs=1e-12)
    assert r["IOR_mean"] == pytest.approx(0.025) and r["IOR_std"] == pytest.approx(0.10607, abs=1e-5)
    # seed 0: a = (0.1 - 0.4) / 2 = -0.15, LRS = (0.860708 - 0.367879) / 2.350402 = 0.209679;
    # seed 1: a = (-0.05 - 0.4) / 2 = -0.225, LRS = (0.798516 - 0.367879) / 2.350402 = 0.183218
    assert r["LRS_mean"] == pytest.approx((0.209679 + 0.183218) / 2, abs=1e-5)
    (w1,) = dd_ranking_rows(rows, weight=1.0)  # a = IOR: seed 0 (1.105171 - 0.367879) / 2.350402 = 0.313688
    assert w1["LRS_mean"] == pytest.approx((0.313688 + (0.951229 - 0.367879) / 2.350402) / 2, abs=1e-5)


def test_dd_ranking_references_real_data_student_fresh_random_real_and_tuned_hard_lr(tmp_path, digits_teacher_dir):
    from distill_core.imageset import load_image_set

    run_realimages(RealImagesConfig(dataset="digits", ipc=3, seed=7), tmp_path / "fixed")
    cfg = SweepConfig(teacher=str(digits_teacher_dir), sources={"fixed": str(tmp_path / "fixed")}, ratios=(1,),
                      hard_labels=True, seeds=(0, 1), random_real_ipc=3, real_hard_epochs=1, hard_lrs=(1e-4, 1e-2),
                      val_images=60, test_limit=200, device="cpu", threads=1,
                      relabel={"epochs": 2, "batch_size": 30}, student={"model_args": {"width": 8, "depth": 2}})
    assert [c.source for c in plan_cells(cfg)[:4]] == ["real_data", "fixed", "fixed", "random_real"]
    metrics = run_sweep(cfg, tmp_path / "sweep")
    rows = read_rows(tmp_path / "sweep" / RESULTS_FILE)
    assert metrics["failed"] == 0, metrics["errors"]
    picks = [load_image_set(tmp_path / "sweep" / f"images-random_real-seed{s}").extra["real_indices"] for s in (0, 1)]
    assert picks[0] != picks[1]  # drawn anew for each seed
    real = [r for r in rows if r["strategy"] == "real_hard"]
    assert len(real) == 2 and all(float(r["lr"]) in (1e-4, 1e-2) and 0 <= float(r["val_accuracy"]) <= 1 for r in real)
    assert {(d["source"], d["strategy"], d["ratio"], d["n"]) for d in metrics["dd_ranking"]} == {("fixed", "random", 1.0, 2)}
    with pytest.raises(ValueError, match="val_images"):
        SweepConfig(sources={"a": "x"}, hard_lrs=(0.01,))
    with pytest.raises(ValueError, match="random_real"):
        SweepConfig(sources={"random_real": "x"}, random_real_ipc=3)


def test_cells_in_two_worker_processes_give_the_rows_of_one_process(tmp_path, digits_teacher_dir):
    """workers 2: the same rows (accuracies bit for bit, a failed cell with its error, per-seed random real
    draws relabelled once each) as the cells one after another; only `seconds` may differ."""
    import dataclasses
    import multiprocessing

    run_realimages(RealImagesConfig(dataset="digits", ipc=5, seed=3), tmp_path / "rr")
    base = dataclasses.replace(_config(tmp_path / "rr", digits_teacher_dir, seeds=(0, 1)),
                               sources={"fixed": str(tmp_path / "rr")}, random_real_ipc=3, rules=())
    run_sweep(base, tmp_path / "serial")
    run_sweep(dataclasses.replace(base, workers=2), tmp_path / "pool")
    serial, pooled = (read_rows(tmp_path / d / RESULTS_FILE) for d in ("serial", "pool"))
    drop = (lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows])
    assert len(serial) == 2 * 2 * 4 and drop(pooled) == drop(serial)
    assert {r["status"] for r in pooled if r["ratio"] == "1000"} == {"failed"}
    assert sorted(p.name for p in (tmp_path / "pool").glob("labels-*")) == \
        ["labels-fixed", "labels-random_real-seed0", "labels-random_real-seed1"]
    assert multiprocessing.active_children() == []  # the pool's workers ended with the sweep


def test_a_cancelled_pooled_sweep_keeps_its_finished_rows_and_ends_its_workers(tmp_path, digits_teacher_dir):
    """SIGTERM (the app's cancel button) once the first ok row is written: the sweep is recorded cancelled, its
    workers end, and a resumed sweep keeps the finished rows verbatim and runs the rest."""
    import dataclasses
    import multiprocessing
    import os
    import signal
    import threading
    import time

    from distill_core.jobs import Cancelled
    from distill_core.runs import read_status

    run_realimages(RealImagesConfig(dataset="digits", ipc=5, seed=0), tmp_path / "rr")
    cfg = dataclasses.replace(_config(tmp_path / "rr", digits_teacher_dir, seeds=(0, 1)), workers=2)
    results, stop = tmp_path / "s" / RESULTS_FILE, threading.Event()

    def cancel_after_first_row():
        while not stop.wait(0.02):
            if results.is_file() and any(r["status"] == "ok" for r in read_rows(results)):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    watcher = threading.Thread(target=cancel_after_first_row, daemon=True)
    watcher.start()
    try:
        with pytest.raises(Cancelled):
            run_sweep(cfg, tmp_path / "s")
    finally:
        stop.set()
        watcher.join()
    assert read_status(tmp_path / "s")["state"] == "cancelled"
    deadline = time.time() + 10
    while multiprocessing.active_children() and time.time() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []
    kept = [r for r in read_rows(results) if r["status"] == "ok"]  # failed cells (1000x) run again on resume
    assert kept and len(read_rows(results)) < 10
    run_sweep(cfg, tmp_path / "s", resume=True)
    again = {(r["strategy"], r["ratio"], r["seed"]): r for r in read_rows(results)}
    assert len(again) == 10 and all(again[(r["strategy"], r["ratio"], r["seed"])] == r for r in kept)
