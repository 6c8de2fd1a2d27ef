"""Home page: description, runs table, quick start (launch + re-attach)."""
from __future__ import annotations

import subprocess
import sys
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


# A job that writes status.json as fast as it can: its progress climbs one percent with every write (and
# starts over at 99%), so two separate reads of its status, one for the job panel and one for the runs
# table, would show different numbers.
FAST_JOB = """
import sys, time
from pathlib import Path
from distill_core import runs
run_dir = Path(sys.argv[1])
for step in range(30_000):
    runs.write_status(run_dir, "running", (step % 100) / 100, f"step {step}", stage="pipeline")
    time.sleep(0.001)
"""


def _panel_and_row(at, name: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """(state, percent) in the job panel's bar and in the runs table's row of run `name`."""
    bar = next(p for p in at.get("progress") if name in p.proto.text)
    _, state, pct, _ = [part.strip() for part in bar.proto.text.split("·", 3)]
    row = at.dataframe[0].value.set_index("run").loc[name]
    return (state, int(pct.rstrip("%"))), (row["state"], int(row["progress"]))


def test_runs_table_and_job_panel_show_the_same_state_and_progress(runs_root):
    run_dir = runs_root / "quickstart-0101-000000"
    run_dir.mkdir()
    job = subprocess.Popen([sys.executable, "-c", FAST_JOB, str(run_dir)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and runs.read_status(run_dir)["state"] != "running":
            time.sleep(0.05)
        seen = set()
        for _ in range(4):  # each run of the page reads the job at another moment
            panel, row = _panel_and_row(app_at("app_pages/home.py"), run_dir.name)
            assert panel == row and panel[0] == "running"
            seen.add(panel[1])
        assert len(seen) > 1  # the job really moved between the page's runs
    finally:
        job.kill()
        job.wait()
