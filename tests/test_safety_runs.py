"""Run folders that cannot hurt the user: --overwrite, the run lock, tolerant listing, one-line CLI errors.

Every test puts files a user made beside or inside the target and checks them byte for byte after,
and checks that the command's message is one line without a traceback.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill_core import jobs, runs
from distill_core.cli import main
from distill_core.runlock import RunLock

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ["teacher", "--model-args", "width=8,depth=2", "--epochs", "1", "--device", "cpu"]


def _user_files(folder: Path) -> dict[str, str]:
    """A thesis and a data folder, as a user would keep them; returns {relative path: sha256}."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("\\documentclass{article}\n")
    (folder / "data" / "scores.csv").write_bytes(os.urandom(256))
    return _digest(folder)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[")]  # [stage] progress lines
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def _make_run(run_dir: Path) -> None:
    runs.prepare_run_dir(run_dir)
    runs.write_json_atomic(run_dir / "provenance.json", runs.provenance("cpu", 0, "teacher"))
    runs.write_status(run_dir, "done", 1.0, "finished", stage="teacher")


# ---------------------------------------------------------------------------------------------
# --overwrite deletes only a run that is not running


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    before = _user_files(tmp_path / "paper")
    assert main(TEACHER + ["--run-dir", str(tmp_path / "paper"), "--overwrite"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "not a distill_core run" in line and str(tmp_path / "paper") in line
    assert _digest(tmp_path / "paper") == before


def test_overwrite_through_child_dotdot_refuses_the_parent(tmp_path, capsys):
    parent = tmp_path / "project"
    before = _user_files(parent)
    _make_run(parent / "child")
    before = _digest(parent)
    assert main(TEACHER + ["--run-dir", str(parent / "child" / ".."), "--overwrite"]) == 2
    assert "not a distill_core run" in _one_line_error(capsys.readouterr().err)
    assert _digest(parent) == before


def test_overwrite_refuses_the_working_folder_and_the_runs_root_even_when_they_look_like_runs(
        tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    _make_run(work)
    before = _user_files(work)
    monkeypatch.chdir(work / "data")
    assert main(TEACHER + ["--run-dir", "..", "--overwrite"]) == 2
    assert "current working folder or one of its parents" in _one_line_error(capsys.readouterr().err)
    root = tmp_path / "runs"
    _make_run(root)
    monkeypatch.setenv("DISTILL_RUNS", str(root))
    assert main(TEACHER + ["--run-dir", str(root), "--overwrite"]) == 2
    assert "the runs root" in _one_line_error(capsys.readouterr().err)
    assert _digest(work) == before and (root / "status.json").is_file()


def test_overwrite_refuses_a_link_and_keeps_its_target(tmp_path, capsys):
    _make_run(tmp_path / "real")
    before = _digest(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert main(TEACHER + ["--run-dir", str(tmp_path / "link"), "--overwrite"]) == 2
    assert "symbolic link" in _one_line_error(capsys.readouterr().err)
    assert _digest(tmp_path / "real") == before


def test_overwrite_of_a_finished_run_replaces_it(tmp_path, capsys):
    run_dir = tmp_path / "t"
    assert main(TEACHER + ["--run-dir", str(run_dir)]) == 0
    (run_dir / "extra.pt").write_bytes(b"old artifact")
    assert main(TEACHER + ["--run-dir", str(run_dir), "--overwrite"]) == 0
    assert not (run_dir / "extra.pt").exists() and runs.read_status(run_dir)["state"] == "done"


def test_analyse_overwrite_refuses_a_user_folder(tmp_path, capsys):
    before = _user_files(tmp_path / "out")
    code = main(["analyse", "--runs", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), "--overwrite"])
    assert code == 2
    assert "not an analysis run" in _one_line_error(capsys.readouterr().err)
    assert _digest(tmp_path / "out") == before


def test_runs_delete_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    before = _user_files(tmp_path / "notes")
    assert main(["runs", "delete", "notes", "--root", str(tmp_path)]) == 2
    assert "not a distill_core run" in _one_line_error(capsys.readouterr().err)
    assert _digest(tmp_path / "notes") == before


# ---------------------------------------------------------------------------------------------
# the lock: one job per folder; a killed job's lock is recovered


def test_a_second_job_into_a_locked_run_is_refused_and_a_stale_lock_recovered(tmp_path, capsys):
    run_dir = tmp_path / "busy"
    _make_run(run_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from distill_core.runlock import RunLock; "
                               "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)",
         str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _digest(run_dir)
        for flags in (["--resume"], ["--overwrite"]):
            assert main(TEACHER + ["--run-dir", str(run_dir), *flags]) == 2
            line = _one_line_error(capsys.readouterr().err)
            assert f"in use by pid {holder.pid}" in line
        with pytest.raises(ValueError, match=f"in use by pid {holder.pid}"):
            jobs.launch(TEACHER + ["--run-dir", str(run_dir), "--overwrite"], run_dir)
        assert _digest(run_dir) == before  # the running job's files and status are untouched
    finally:
        holder.kill()
        holder.wait()
    assert runs.lock_holder(run_dir) is None  # the kernel dropped the dead holder's lock
    assert main(TEACHER + ["--run-dir", str(run_dir), "--overwrite"]) == 0
    assert f"recovered the stale lock of pid {holder.pid}" in capsys.readouterr().err
    assert not (run_dir / runs.LOCK_FILE).exists()


def test_the_app_shows_a_refused_launch(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    run_dir = tmp_path / "runs" / "busy"
    _make_run(run_dir)
    monkeypatch.setenv("DISTILL_TEST_RUN", str(run_dir))

    def page():
        import os
        from pathlib import Path

        from appkit import jobs_ui
        from distill_core.runlock import RunLock

        lock = RunLock(Path(os.environ["DISTILL_TEST_RUN"])).acquire()
        jobs_ui.launch(["teacher", "--run-dir", os.environ["DISTILL_TEST_RUN"], "--overwrite"],
                       Path(os.environ["DISTILL_TEST_RUN"]))
        lock.release()

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Not started" in at.error[0].value and "in use by pid" in at.error[0].value


# ---------------------------------------------------------------------------------------------
# tolerant listing


def _broken_runs(root: Path) -> None:
    for name, files in {
        "bad-yaml": {"config.yaml": "dataset: [digits\n  : : :\n", "status.json": '{"state": "done"}'},
        "status-list": {"status.json": "[1, 2, 3]"},
        "bad-json": {"status.json": "{\"state\": ", "config.yaml": "ipc: 3\n"},
        "yaml-list": {"config.yaml": "- 1\n- 2\n", "status.json": '{"state": "done", "progress": "x"}'},
        "metrics-binary": {"status.json": '{"state": "done"}', "metrics.json": "\x00\xff\xfe"},
    }.items():
        (root / name).mkdir(parents=True)
        for f, text in files.items():
            (root / name / f).write_text(text, errors="surrogateescape")


def test_damaged_runs_list_as_unreadable_with_the_reason(tmp_path, capsys):
    _broken_runs(tmp_path)
    _make_run(tmp_path / "good")
    listed = {r.name: r for r in runs.list_runs(tmp_path)}
    assert set(listed) == {"bad-yaml", "status-list", "bad-json", "yaml-list", "metrics-binary", "good"}
    assert listed["good"].state == "done"
    for name in ("bad-yaml", "status-list", "bad-json", "yaml-list", "metrics-binary"):
        assert listed[name].state == "unreadable" and listed[name].message, name
    assert "config.yaml" in listed["bad-yaml"].message and "list" in listed["status-list"].message
    assert main(["runs", "list", "--root", str(tmp_path)]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(listed) and " done " in lines["good"]
    assert all(lines[n].split()[2] == "unreadable" for n in listed if n != "good")
    assert main(["runs", "show", "status-list", "--root", str(tmp_path)]) == 0


@pytest.mark.parametrize("page", ["app_pages/home.py", "app_pages/data_teacher.py", "app_pages/synthesize.py",
                                  "app_pages/compare.py", "app_pages/soft_labels.py", "app_pages/diversity.py"])
def test_pages_load_beside_damaged_runs(runs_root, page):
    from app_support import app_at

    _broken_runs(runs_root)
    at = app_at(page)  # asserts no exception
    if page == "app_pages/home.py":
        table = at.dataframe[0].value.set_index("run")
        assert (table.loc[["bad-yaml", "status-list"], "state"] == "unreadable").all()


def test_runs_list_escapes_control_characters(tmp_path, capsys):
    name = "evil\x1b[2J\x07name"  # made by hand: distill_core itself refuses such names
    (tmp_path / name).mkdir()
    runs.write_status(tmp_path / name, "failed", 0.5, "boom\x1b]0;title\x07\nsecond line", stage="teacher")
    assert main(["runs", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and out.count("\n") == 1
    assert "evil\\x1b[2J\\x07name" in out


# ---------------------------------------------------------------------------------------------
# CLI: every failure is one line, exit 2


def test_a_long_run_name_is_refused_before_anything_is_written(tmp_path, capsys):
    assert main(TEACHER + ["--run-dir", str(tmp_path / ("n" * 300))]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "300 bytes long" in line and f"at most {runs.MAX_RUN_NAME}" in line
    assert list(tmp_path.iterdir()) == []
    assert main(TEACHER + ["--run-dir", str(tmp_path / "a\x1bb")]) == 2
    assert "control characters" in _one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("code,hint", [(errno.ENOSPC, "free some space"), (errno.EACCES, "folder you can write"),
                                       (errno.ENAMETOOLONG, "shorter --run-dir")])
def test_os_errors_become_one_line_with_what_to_change(tmp_path, monkeypatch, capsys, code, hint):
    from distill_core import teacher

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / "t" / "teacher.pt"))

    monkeypatch.setattr(teacher, "save_checkpoint", fail)
    assert main(TEACHER + ["--run-dir", str(tmp_path / "t")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert os.strerror(code) in line and hint in line and "teacher.pt" in line
    status = runs.read_status(tmp_path / "t")
    assert status["state"] == "failed" and "Traceback" in status["traceback"]  # the traceback stays on disk


def test_nan_loss_and_runtime_errors_become_one_line(tmp_path, monkeypatch, capsys):
    assert main(TEACHER + ["--lr", "1e30", "--run-dir", str(tmp_path / "nan")]) == 2
    assert "lower lr" in _one_line_error(capsys.readouterr().err)
    from distill_core import teacher

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nsee the documentation for details")

    monkeypatch.setattr(teacher, "train_teacher", oom)
    assert main(TEACHER + ["--run-dir", str(tmp_path / "oom")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "out of memory" in line and "lower the batch size" in line


def test_a_full_disk_fails_in_one_line_and_leaves_no_half_file(tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        before = _user_files(disk)
        code = main(["teacher", "--model-args", "width=32,depth=3", "--epochs", "8", "--device", "cpu",
                     "--run-dir", str(disk / "t")])
        assert code == 2
        line = _one_line_error(capsys.readouterr().err)
        assert "No space left on device" in line and "free some space" in line
        assert _digest(disk) | before == _digest(disk)  # the user's files are intact
        assert not list((disk / "t").rglob("*.tmp"))  # no temporary file left behind
        from distill_core.teacher import list_epoch_checkpoints, load_teacher

        for epoch in list_epoch_checkpoints(disk / "t"):  # every checkpoint that exists loads
            load_teacher(disk / "t", epoch)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_the_lock_names_its_holder_and_leaves_no_file(tmp_path):
    for _ in range(2):  # acquiring again after a release works
        with RunLock(tmp_path):
            assert runs.lock_holder(tmp_path).startswith(f"pid {os.getpid()} on host ")
        assert runs.lock_holder(tmp_path) is None and not (tmp_path / runs.LOCK_FILE).exists()


@dataclasses.dataclass
class _ProbeConfig:
    ipc: int = 500


@pytest.mark.parametrize("outcome", ["failed", "done"])
def test_a_sigterm_while_the_outcome_is_written_still_records_it(tmp_path, monkeypatch, outcome):
    """A worker pool ends its workers with SIGTERM the moment one of them fails; a signal landing while
    another job writes its own outcome must not leave a `running` status behind the process: the outcome
    is recorded, then the job raises Cancelled, and the previous SIGTERM handler is back."""
    import signal

    import torch

    def body(ctx):
        if outcome == "failed":
            raise ValueError("ipc 500 is more than the class holds")
        return {"acc": 0.5}

    real_write = runs.write_status

    def write_status(run_dir, state, *args, **kwargs):
        if state == outcome:
            os.kill(os.getpid(), signal.SIGTERM)  # lands inside the write, as the pool's terminate() can
        return real_write(run_dir, state, *args, **kwargs)

    def outside_the_job(signum, frame):  # the handler before the job (the default one would end pytest)
        raise AssertionError("SIGTERM reached the handler outside the job")

    monkeypatch.setattr(runs, "write_status", write_status)
    before = signal.signal(signal.SIGTERM, outside_the_job)
    try:
        with pytest.raises(jobs.Cancelled):
            jobs.run_stage("probe", _ProbeConfig(), tmp_path / "run", body, torch.device("cpu"), seed=0)
        assert signal.getsignal(signal.SIGTERM) is outside_the_job
    finally:
        signal.signal(signal.SIGTERM, before)
    assert runs.read_status(tmp_path / "run")["state"] == outcome
    assert (tmp_path / "run" / "metrics.json").is_file() == (outcome == "done")
