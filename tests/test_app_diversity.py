"""Diversity page: the analysis runs as a background job (progress, cancel), then the diversity table for
several runs, per-class bars and heatmaps, space switch."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from app_support import app_at

from distill_core import runs


def _job(root: Path) -> Path:
    jobs = [p for p in (root / ".analyses").iterdir() if p.name.startswith("diversity-")]
    assert len(jobs) == 1, jobs
    return jobs[0]


def _wait(run_dir: Path, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline and runs.read_status(run_dir)["state"] in ("queued", "running"):
        time.sleep(0.5)
    return runs.read_status(run_dir)["state"]


@pytest.fixture(scope="module")
def diversity_done(demo_root):
    """The page's default runs analysed once, through its button, as the page's background job."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILL_RUNS", str(demo_root))
        at = app_at("app_pages/diversity.py")
        assert not at.table and not at.get("plotly_chart")  # nothing computed in the page
        at.button(key="dv-job-start").click().run()
        job = _job(demo_root)
        assert runs.read_status(job)["state"] in ("queued", "running")
        assert any(job.name in p.proto.text for p in at.get("progress"))
        assert at.button(key="cancel-dv-job")  # the running job can be cancelled from the page
        assert _wait(job) == "done", (job / "job.log").read_text()[-2000:]
    return job


def test_diversity_table_has_one_row_per_chosen_run(app_env, diversity_done):
    at = app_at("app_pages/diversity.py")
    chosen = at.multiselect(key="dv-runs").value
    assert set(chosen) >= {"t-sre2l", "t-lpld"}
    table = at.table[0].value  # a static table: headers for people, numbers rounded
    assert list(table.index) == list(chosen)
    within = table["within-class cos (features)"].astype(float)
    assert ((within > -1) & (within <= 1)).all()
    assert all(c.startswith("[") for c in table["95% interval (classes)"])
    assert len(at.get("plotly_chart")) == 2  # per-class similarity + heatmaps
    assert any(f"`.analyses/{diversity_done.name}`" in c.value for c in at.caption)  # where the numbers come from


def test_recall_is_left_empty_where_it_cannot_be_computed(app_env, diversity_done):
    """IPC 5 leaves too few images per class for k-NN recall (the page's note says so): the table
    used to show recall 1.000 there."""
    at = app_at("app_pages/diversity.py")
    assert any("recall needs" in c.value for c in at.caption)
    real = at.table[1].value
    assert (real["recall"] == "").all() and (real["precision"] != "").all()


def test_switching_to_pixel_space_and_another_run(app_env, diversity_done):
    at = app_at("app_pages/diversity.py")
    at.radio(key="dv-space").set_value("pixels").run()
    at.selectbox(key="dv-heat-run").set_value("t-lpld").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2


def test_compare_reads_the_finished_job_instead_of_computing(app_env, diversity_done):
    from appkit.analysis import analyse_runs

    chosen = runs.load_run(diversity_done).config["runs"]
    assert analyse_runs(chosen) is analyse_runs(chosen)  # the job's Analysis, read once from its folder
    assert analyse_runs(chosen).summary == runs.read_json(diversity_done / "summary.json")["summary"]


def test_a_cancelled_job_says_so_and_can_start_again(app_env, diversity_done):
    at = app_at("app_pages/diversity.py")
    at.multiselect(key="dv-runs").set_value(["t-random_real"]).run()
    at.button(key="dv-job-start").click().run()
    job = next(p for p in (app_env / ".analyses").iterdir() if p.name.startswith("diversity-") and p != diversity_done)
    at.button(key="cancel-dv-job").click().run()
    assert _wait(job, 60) in ("cancelled", "interrupted")  # interrupted: killed before it took the signal
    at.run()
    assert any(w.value.startswith(f"Job {job.name} is ") for w in at.warning)
    assert at.button(key="dv-job-start")  # another try is one click away
    assert not at.table


def test_no_image_sets_offers_the_quick_start(runs_root):
    at = app_at("app_pages/diversity.py")
    assert any("quick start" in i.value for i in at.info)
    assert not at.get("plotly_chart")
