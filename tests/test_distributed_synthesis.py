"""Class sharding over 2 gloo processes writes one run equal to a single-process run."""
import dataclasses
import multiprocessing
import os
import shutil
import socket

import pytest
import torch

from distill_core import runs
from distill_core.distributed import Shard, shard_from_env
from distill_core.imageset import load_image_set
from distill_core.synthesis.run import load_partials, run_synthesize
from distill_core.synthesis.synthesize import SynthesisConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, cfg: SynthesisConfig, run_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    metrics = run_synthesize(cfg, run_dir)
    assert (metrics != {}) == (rank == 0)  # only rank 0 reports the run's metrics


def test_two_ranks_split_classes_into_one_run_equal_to_one_process(digits_teacher_dir, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(digits_teacher_dir, teacher)  # rank 0 computes the class statistics, rank 1 reads them
    cfg = SynthesisConfig(teacher=str(teacher), preset="lpld", ipc=2, iterations=6, classes=(0, 3, 5, 8, 9),
                          group_size=2, device="cpu")
    ctx = multiprocessing.get_context("fork")
    port, run = _free_port(), tmp_path / "sharded"
    procs = [ctx.Process(target=_rank_main, args=(r, 2, port, cfg, str(run))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert runs.read_status(run)["state"] == "done"
    assert sorted(load_partials(run)) == [0, 3, 5, 8, 9]
    single = tmp_path / "single"
    run_synthesize(dataclasses.replace(cfg, group_size=3), single)
    sharded, alone = load_image_set(run), load_image_set(single)
    assert torch.equal(sharded.labels, alone.labels)
    torch.testing.assert_close(sharded.images, alone.images, atol=1e-5, rtol=0)


def test_shard_assignment_is_round_robin_and_checked(monkeypatch):
    shard = Shard(rank=1, world=3)
    assert [i for i in range(8) if shard.owns(i)] == [1, 4, 7]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK 2"):
        shard_from_env()
