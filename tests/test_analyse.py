import math
import time
from pathlib import Path

import pytest
import torch

from distill_core import runs
from distill_core.analysis.features import load_feature_model
from distill_core.analysis.run import AnalyseConfig, analyse_sets, read_analysis, real_subset, run_analyse
from distill_core.cli import main
from distill_core.data import sample_per_class
from distill_core.imageset import ImageSetArtifact, load_image_set, save_image_set


def _make_sets(root: Path, digits, teacher_dir: Path) -> tuple[Path, Path]:
    """A random-real run (IPC 5) and a collapsed run (one real image per class, repeated, plus noise)."""
    g = torch.Generator().manual_seed(0)
    real = sample_per_class(digits.train, 5, g)
    x = real.float_images()
    save_image_set(root / "rr", ImageSetArtifact(x, real.labels, digits.info, "random_real", {"teacher": str(teacher_dir)}))
    alike = x[::5].repeat_interleave(5, 0)
    alike = (alike + 0.3 * torch.rand(alike.shape, generator=g)).clamp(0, 1)
    save_image_set(root / "alike", ImageSetArtifact(alike, real.labels, digits.info, "sre2l", {"teacher": str(teacher_dir)}))
    return root / "rr", root / "alike"


def test_cli_analyse_writes_tables_and_ranks_alike_sets(tmp_path, digits, digits_teacher_dir):
    rr, alike = _make_sets(tmp_path, digits, digits_teacher_dir)
    out = tmp_path / "analysis"
    argv = ["analyse", "--runs", str(rr), str(alike), "--out", str(out), "--max-real-per-class", "40",
            "--embedding", "pca", "--device", "cpu", "--embedding-threads", "1"]
    assert main(argv) == 0
    for name in ("summary.csv", "per_class.csv", "nearest_real.csv", "embedding.csv", "embedding.json",
                 "similarity_matrices.json", "metrics.json"):
        assert (out / name).is_file(), name
    summary = {r["run"]: r for r in runs.read_json(out / "summary.json")["summary"]}
    # random real images are real training images: all flagged as copies, nearest distance 0
    assert summary["rr"]["copies"] == 50 and summary["rr"]["precision"] == 1.0
    # the collapsed set is more alike within a class (features and pixels) and covers less of the data
    assert summary["alike"]["feat_within_mean"] > summary["rr"]["feat_within_mean"]
    assert summary["alike"]["pix_within_mean"] > summary["rr"]["pix_within_mean"]
    assert summary["alike"]["coverage"] < summary["rr"]["coverage"]
    assert summary["alike"]["copies"] < 50
    emb = runs.read_json(out / "embedding.json")
    assert {r["source"] for r in emb["rows"]} == {"real", "rr", "alike"}
    assert emb["rows"][0]["thumb"].startswith("data:image/png;base64,")
    assert list((rr / "analysis").glob("features-*.pt"))  # features cached under each run
    back = read_analysis(out)  # what the app reads: the same numbers as the tables, the matrices as tensors
    assert back.summary == runs.read_json(out / "summary.json")["summary"]
    assert {r["run"] for r in back.per_class} == {"rr", "alike"} and len(back.nearest) == 100
    assert back.matrices["alike"]["features"][0].shape == (5, 5)
    assert [r["id"] for r in back.embedding.rows] == [r["id"] for r in emb["rows"]]
    # re-running in place refreshes the tables, keeps the caches, and accepts a new config
    assert main(argv[:-4] + ["--k", "3", "--embedding", "none", "--device", "cpu"]) == 0
    assert runs.read_json(out / "summary.json")["summary"][0]["k"] == 3
    assert runs.read_status(out)["state"] == "done"


def test_analyse_starts_in_a_folder_the_launcher_prepared(tmp_path, digits, digits_teacher_dir):
    """The app launches `analyse --out DIR` through jobs.launch, which writes job.log and a queued
    status first: that folder is a new analysis, not one to resume."""
    rr, _ = _make_sets(tmp_path, digits, digits_teacher_dir)
    out = tmp_path / "launched"
    out.mkdir()
    (out / "job.log").write_text("")
    runs.write_status(out, "queued", 0.0, "starting")
    run_analyse(AnalyseConfig(runs=(str(rr),), device="cpu", embedding="none", max_real_per_class=20), out)
    assert runs.read_status(out)["state"] == "done"
    assert (out / "summary.csv").is_file()


def test_an_embedding_job_reports_tsne_iterations_and_cancels_mid_fit(tmp_path, digits, digits_teacher_dir):
    """The app's t-SNE job: status.json follows the fit iteration by iteration, and cancel stops the fit."""
    from distill_core import jobs

    rr, alike = _make_sets(tmp_path, digits, digits_teacher_dir)
    out = tmp_path / "tsne-job"
    jobs.launch(["analyse", "--runs", str(rr), str(alike), "--run-dir", str(out), "--embedding", "tsne",
                 "--device", "cpu", "--embedding-threads", "1", "--no-thumbnails"], out)
    deadline, seen = time.time() + 180, []
    while time.time() < deadline and not any(m.startswith("t-SNE iteration") for m in seen):
        status = runs.read_status(out)
        assert status["state"] in ("queued", "running"), (status, jobs.log_tail(out))
        seen.append(status.get("message", ""))
        time.sleep(0.1)
    at = runs.read_status(out)["progress"]
    assert jobs.cancel(out)
    while time.time() < deadline and runs.read_status(out)["state"] == "running":
        time.sleep(0.1)
    status = runs.read_status(out)
    assert status["state"] == "cancelled", (status, jobs.log_tail(out))
    assert 0.4 <= at <= status["progress"] < 1.0  # t-SNE's share of the bar, stopped inside it
    assert not (out / "analysis.pt").exists()


def test_read_analysis_names_a_folder_without_one(tmp_path):
    with pytest.raises(ValueError, match="holds no analysis.pt"):
        read_analysis(tmp_path)


def test_analyse_refuses_foreign_out_folder_and_missing_teacher(tmp_path, digits, digits_teacher_dir):
    rr, _ = _make_sets(tmp_path, digits, digits_teacher_dir)
    with pytest.raises(ValueError, match="not an analysis folder"):
        run_analyse(AnalyseConfig(runs=(str(rr),), device="cpu", embedding="none"), rr)
    art = load_image_set(rr)
    save_image_set(tmp_path / "orphan", ImageSetArtifact(art.images, art.labels, art.info, "random_real", {}))
    with pytest.raises(ValueError, match="--feature-model"):
        run_analyse(AnalyseConfig(runs=(str(tmp_path / "orphan"),), device="cpu", embedding="none"), tmp_path / "o")


def test_analyse_sets_refuses_other_image_sizes(digits, digits_teacher_dir):
    fm = load_feature_model(digits_teacher_dir)
    big = ImageSetArtifact(torch.rand(4, 1, 16, 16), torch.tensor([0, 0, 1, 1]), digits.info, "sre2l")
    with pytest.raises(ValueError, match="separately"):
        analyse_sets({"big": big}, digits.train, fm, AnalyseConfig(embedding="none"))


def test_real_subset_is_class_balanced_and_seeded(digits):
    sub, idx = real_subset(digits.train, 7, seed=1)
    assert torch.bincount(sub.labels).tolist() == [7] * 10
    assert torch.equal(digits.train.labels[idx], sub.labels)
    assert torch.equal(real_subset(digits.train, 7, seed=1)[1], idx)
    assert not torch.equal(real_subset(digits.train, 7, seed=2)[1], idx)


def test_config_validation():
    with pytest.raises(ValueError, match="copy_ratio"):
        AnalyseConfig(copy_ratio=1.5)
    with pytest.raises(ValueError, match="embedding"):
        AnalyseConfig(embedding="mds")
    assert math.isfinite(AnalyseConfig().copy_ratio)
