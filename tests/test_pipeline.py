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
