"""Label epochs sharded over 2 gloo processes write the same label files as one process."""
import multiprocessing
import os
import socket

import pytest
import torch

from distill_core import runs
from distill_core.labels.realimages import RealImagesConfig, run_realimages
from distill_core.labels.relabel import EPOCHS_DIR, LOGITS_FILE, PARAMS_FILE, RelabelConfig, load_store
from distill_core.labels.relabel_run import run_relabel_job


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, cfg: RelabelConfig, run_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    metrics = run_relabel_job(cfg, run_dir)
    assert (metrics.get("ranks") == world) == (rank == 0)  # only rank 0 reports the run's metrics


def _launch(world: int, cfg: RelabelConfig, run_dir) -> list[int]:
    """Run the job in `world` forked processes (world 1: one process, no process group) and wait."""
    ctx, port = multiprocessing.get_context("fork"), _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, cfg, str(run_dir))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    return [p.exitcode for p in procs]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    path = tmp_path_factory.mktemp("relabel-shards") / "real"
    run_realimages(RealImagesConfig(dataset="digits", ipc=3, seed=0), path)
    return path


def _tensors(run_dir) -> dict:
    return {name: runs.load_tensors(run_dir / name) for name in (PARAMS_FILE, LOGITS_FILE)}


def _assert_same(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    else:
        assert a == b


def test_two_ranks_write_the_label_files_of_one_process(images, digits_teacher_dir, tmp_path):
    """5 label epochs (rank 0 labels 0, 2, 4; rank 1 labels 1, 3), CutMix, flips off for digits."""
    cfg = RelabelConfig(images=str(images), teacher=str(digits_teacher_dir), epochs=5, batch_size=8,
                        crop_scale=(0.25, 1.0), seed=4, device="cpu")
    assert _launch(2, cfg, tmp_path / "sharded") == [0, 0]
    assert _launch(1, cfg, tmp_path / "single") == [0]
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    assert runs.read_status(sharded)["state"] == "done" and not (sharded / EPOCHS_DIR).exists()
    _assert_same(_tensors(sharded), _tensors(single))
    store = load_store(sharded)
    assert store.batch_epoch.unique().tolist() == [0, 1, 2, 3, 4]
    assert runs.read_json(sharded / "metrics.json", {})["ranks"] == 2


def _disk_full(*args):
    raise OSError("disk full")


def test_a_resumed_run_keeps_the_epochs_other_ranks_saved(images, digits_teacher_dir, tmp_path, monkeypatch,
                                                          one_thread):
    """A run that failed with epochs 1 and 3 on disk (what a killed 2-rank run can leave): one process
    labels only 0, 2 and 4 and writes the store of an uninterrupted run."""
    from distill_core.labels import relabel_run

    cfg = RelabelConfig(images=str(images), teacher=str(digits_teacher_dir), epochs=5, batch_size=8,
                        crop_scale=(0.25, 1.0), seed=4, device="cpu")
    full, killed = tmp_path / "full", tmp_path / "killed"
    run_relabel_job(cfg, full)
    with monkeypatch.context() as m:
        m.setattr(relabel_run, "save_store", _disk_full)
        with pytest.raises(OSError, match="disk full"):
            run_relabel_job(cfg, killed)
    for e in (0, 2, 4):
        (killed / EPOCHS_DIR / f"epoch_{e:05d}.pt").unlink()
    labelled = []
    original = relabel_run.save_label_epoch
    monkeypatch.setattr(relabel_run, "save_label_epoch", lambda run, e, *a: (labelled.append(e), original(run, e, *a)))
    metrics = run_relabel_job(cfg, killed, resume=True)
    assert labelled == [0, 2, 4] and metrics["resumed_after_epoch"] == 2
    _assert_same(_tensors(killed), _tensors(full))
    assert not (killed / EPOCHS_DIR).exists()
