import os

import pytest
import torch

from distill_core import runs


def test_atomic_write_crash_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    runs.write_json_atomic(path, {"acc": 0.5})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        runs.write_json_atomic(path, {"acc": 0.9})
    assert runs.read_json(path) == {"acc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_crash_inside_serialisation_leaves_old_tensor_file(tmp_path):
    path = tmp_path / "a.pt"
    runs.save_tensors(path, {"x": torch.arange(3)})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        runs.save_tensors(path, {"x": torch.arange(5), "y": Boom()})
    assert torch.equal(runs.load_tensors(path)["x"], torch.arange(3))


def test_load_tensors_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"f": os.getcwd}, path)
    with pytest.raises(ValueError, match="corrupt or not a distill_core artifact"):
        runs.load_tensors(path)


@pytest.mark.parametrize("name", ["../escape", "..", "", "a/../../b"])
def test_run_names_cannot_escape_the_root(tmp_path, name):
    with pytest.raises(ValueError):
        runs.safe_run_name(name, tmp_path)


def test_resolve_run_dir_keeps_bare_names_inside_root(tmp_path):
    assert runs.resolve_run_dir("abc", tmp_path) == (tmp_path / "abc").resolve()
    with pytest.raises(ValueError, match="invalid run name"):
        runs.resolve_run_dir("..", tmp_path)


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "r"
    runs.prepare_run_dir(run)
    (run / "config.yaml").write_text("a: 1\n")
    runs.write_status(run, "done", 1.0)
    with pytest.raises(ValueError, match="--resume.*--overwrite"):
        runs.prepare_run_dir(run)
    assert runs.prepare_run_dir(run, resume=True) == run and (run / "config.yaml").exists()
    runs.prepare_run_dir(run, overwrite=True)
    assert not (run / "config.yaml").exists()
    with pytest.raises(ValueError, match="cannot --resume"):
        runs.prepare_run_dir(tmp_path / "new", resume=True)


def test_status_of_a_dead_process_reads_interrupted(tmp_path):
    runs.write_status(tmp_path, "running", 0.4, "epoch 2")
    assert runs.read_status(tmp_path)["state"] == "running"  # our own pid is alive
    status = runs.read_json(tmp_path / "status.json")
    status["pid"] = 2**22 + 12345  # no such process
    runs.write_json_atomic(tmp_path / "status.json", status)
    assert runs.read_status(tmp_path)["state"] == "interrupted"


def test_list_and_delete_runs(tmp_path):
    for name in ("a", "b"):
        runs.prepare_run_dir(tmp_path / name)
        runs.write_status(tmp_path / name, "done", 1.0)
    (tmp_path / "not-a-run").mkdir()
    assert sorted(r.name for r in runs.list_runs(tmp_path)) == ["a", "b"]
    runs.delete_run(tmp_path / "a", tmp_path)
    assert [r.name for r in runs.list_runs(tmp_path)] == ["b"]
    with pytest.raises(ValueError, match="not a run inside"):
        runs.delete_run(tmp_path.parent, tmp_path)
