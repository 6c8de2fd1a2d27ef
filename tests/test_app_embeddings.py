"""Embeddings page: PCA at once, t-SNE on request; the figure's ids map back to images."""
from __future__ import annotations

import time

import yaml
from app_support import app_at

from appkit import figures
from appkit.analysis import analyse_runs
from distill_core import runs


def test_pca_is_drawn_at_once_with_a_gallery_hint(app_env):
    at = app_at("app_pages/embeddings.py")
    assert at.radio(key="em-method").value == "pca"
    assert at.get("plotly_chart")
    assert any("Select points" in c.value for c in at.caption)


def test_tsne_runs_as_a_background_job_then_draws(app_env):
    at = app_at("app_pages/embeddings.py")
    at.select_slider(key="em-max").set_value(1000).run()
    at.radio(key="em-method").set_value("tsne").run()
    assert not at.get("plotly_chart")
    at.button(key="em-job-start").click().run()
    jobs = [p for p in (app_env / ".analyses").iterdir() if p.name.startswith("tsne-")]
    assert len(jobs) == 1
    request = yaml.safe_load((jobs[0].parent / ".requests" / f"{jobs[0].name}.yaml").read_text())
    assert request["embedding_threads"] == 1  # one thread: 17x faster than two on a loaded 2-core CPU
    deadline = time.time() + 240
    while time.time() < deadline and runs.read_status(jobs[0])["state"] in ("queued", "running"):
        time.sleep(0.5)
    assert runs.read_status(jobs[0])["state"] == "done", jobs_log(jobs[0])
    at = app_at("app_pages/embeddings.py")  # a fresh session re-attaches to the finished job
    at.select_slider(key="em-max").set_value(1000).run()
    at.radio(key="em-method").set_value("tsne").run()
    assert at.get("plotly_chart")
    assert any("fitted by the background job" in c.value for c in at.caption)


def jobs_log(run_dir) -> str:
    return (run_dir / "job.log").read_text()[-2000:] if (run_dir / "job.log").is_file() else "no log"


def test_scatter_customdata_ids_are_the_rows_global_ids(app_env):
    result = analyse_runs([str(app_env / "t-lpld"), str(app_env / "t-sre2l")], embedding="pca", max_points=1000)
    rows = result.embedding.rows
    fig = figures.embedding_scatter(rows, "class")
    ids = [c[0] for tr in fig.data if tr.customdata is not None for c in tr.customdata]
    assert sorted(ids) == sorted(r["id"] for r in rows)
    synthetic = {r["source"] for r in rows} - {"real"}
    assert synthetic == {"t-lpld", "t-sre2l"}
