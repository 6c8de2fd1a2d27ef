"""The one-call pipeline on digits with tiny settings: child runs, summary, progress."""
from distill_core.pipeline import PipelineConfig, child_dir, run_pipeline
from distill_core.runs import read_json, read_status


def test_pipeline_end_to_end(tmp_path):
    run_dir = tmp_path / "quick"
    cfg = PipelineConfig(dataset="digits", ipc=2, teacher_args={"width": 16, "depth": 2}, teacher_epochs=3,
                         synth_iterations=4, label_epochs=4, label_batch_size=10, ratios=(1, 4), hard_epochs=2,
                         real_hard_epochs=1, seeds=(0, 1), student_args={"width": 8, "depth": 2}, device="cpu")
    metrics = run_pipeline(cfg, run_dir)
    for name in ("teacher", "sre2l", "lpld", "random_real", "sweep"):
        assert read_status(child_dir(run_dir, name))["state"] == "done"
        assert metrics["children"][name] == str(child_dir(run_dir, name))
    status = read_status(run_dir)
    assert status["state"] == "done" and status["progress"] == 1.0
    assert read_json(run_dir / "metrics.json")["children"] == metrics["children"]
    results = {(r["source"], r["strategy"], r["ratio"]) for r in metrics["results"]}
    assert results == {(s, k, f) for s in ("sre2l", "lpld", "random_real")
                       for k, f in (("hard_labels", 0.0), ("random", 1.0), ("random", 4.0))} | {
                           ("real_data", "real_hard", 0.0)}
    assert {r["n"] for r in metrics["results"]} == {2}  # every cell for both seeds: mean ± std
    ranked = {(r["source"], r["strategy"], r["ratio"], r["n"]) for r in metrics["dd_ranking"]}
    assert ranked == {(s, "random", f, 2) for s in ("sre2l", "lpld") for f in (1.0, 4.0)}
    assert metrics["failed_cells"] == 0
    # resume keeps finished children (their config files are untouched)
    before = (child_dir(run_dir, "teacher") / "config.yaml").stat().st_mtime_ns
    run_pipeline(cfg, run_dir, resume=True)
    assert (child_dir(run_dir, "teacher") / "config.yaml").stat().st_mtime_ns == before


def _tiny(**kw) -> PipelineConfig:
    return PipelineConfig(**{"dataset": "digits", "ipc": 2, **kw}, teacher_args={"width": 16, "depth": 2}, teacher_epochs=2,
                          synth_iterations=6, label_epochs=4, label_batch_size=10, ratios=(1, 4), hard_labels=False,
                          real_hard_epochs=0, seeds=(0,), student_args={"width": 8, "depth": 2}, device="cpu")


def test_syntheses_in_two_processes_make_the_images_of_one_process(tmp_path):
    """workers 2 synthesises SRe2L and LPLD at once: the same images and sweep rows as one after another."""
    import multiprocessing

    import torch

    from distill_core.imageset import load_image_set
    from distill_core.labels.sweep import RESULTS_FILE, read_rows

    for workers in (1, 2):
        run_pipeline(_tiny(workers=workers), tmp_path / f"w{workers}")
    for preset in ("sre2l", "lpld"):
        one, two = (load_image_set(child_dir(tmp_path / f"w{w}", preset)) for w in (1, 2))
        assert torch.equal(one.images, two.images) and torch.equal(one.labels, two.labels)
    rows = [[{k: v for k, v in r.items() if k != "seconds"} for r in read_rows(child_dir(tmp_path / f"w{w}", "sweep")
                                                                               / RESULTS_FILE)] for w in (1, 2)]
    assert len(rows[0]) == 3 * 2 and rows[0] == rows[1]  # sre2l, lpld, random real at 1x and 4x
    assert multiprocessing.active_children() == []


def test_a_synthesis_failing_in_a_worker_fails_the_pipeline_with_its_error(tmp_path):
    """IPC 500 is more than a digits class holds: the workers' ValueError is the pipeline's error, and the
    workers end (a worker whose synthesis the pool's SIGTERM cancelled exits instead of waiting on)."""
    import multiprocessing

    import pytest

    with pytest.raises(ValueError, match="IPC|ipc"):
        run_pipeline(_tiny(workers=2, ipc=500), tmp_path / "p")
    status = read_status(tmp_path / "p")
    assert status["state"] == "failed" and "500" in status["error"]
    states = {read_status(child_dir(tmp_path / "p", preset))["state"] for preset in ("sre2l", "lpld")}
    # the other one failed too, or stopped with the pool (cancelled; no status at all had its job not begun),
    # and never stays `running` behind a dead worker (read back as interrupted)
    assert "failed" in states and states <= {"failed", "cancelled", "unknown"}
    assert multiprocessing.active_children() == []
