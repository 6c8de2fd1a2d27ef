"""Home page: description, runs table, quick start (launch + re-attach)."""
from __future__ import annotations

import time

from app_support import app_at

from distill_core import jobs, runs


def test_home_without_runs_offers_the_quick_start(runs_root):
    at = app_at("app_pages/home.py")
    assert at.title[0].value == "Soft-label dataset distillation"
    assert any("No runs yet" in i.value for i in at.info)
    assert not at.dataframe


def test_home_lists_runs_with_kind_and_method(app_env):
    at = app_at("app_pages/home.py")
    table = at.dataframe[0].value
    names = set(table["run"])
    assert {"t", "t-sre2l", "t-lpld", "t-random_real", "t-sweep"} <= names
    by_name = table.set_index("run")
    assert by_name.loc["t-lpld", "method"] == "lpld"
    assert by_name.loc["t", "kind"] == "teacher"
    assert by_name.loc["t", "accuracy"] > 50


def test_quick_start_launches_a_job_that_the_page_reattaches_to(runs_root):
    at = app_at("app_pages/home.py")
    at.button(key="quickstart").click().run()
    started = [p for p in runs_root.iterdir() if p.name.startswith("quickstart-")]
    assert len(started) == 1, list(runs_root.iterdir())
    run_dir = started[0]
    try:
        assert runs.read_status(run_dir)["state"] in ("queued", "running")
        fresh = app_at("app_pages/home.py")  # a reload finds the job on disk
        bars = [p.text for p in fresh.get("progress")]
        assert any(run_dir.name in text for text in bars), bars
        assert fresh.button(key="quickstart").disabled
    finally:
        deadline = time.time() + 30
        while time.time() < deadline and not jobs.cancel(run_dir) and runs.read_status(run_dir)["state"] == "queued":
            time.sleep(0.5)
        while time.time() < deadline and runs.read_status(run_dir)["state"] in ("queued", "running"):
            time.sleep(0.5)
