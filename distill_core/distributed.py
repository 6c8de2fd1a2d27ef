"""Sharding work over processes started by `torchrun` (torch.distributed), one device each.

Class-wise synthesis is embarrassingly parallel over its statistics groups: rank r of W processes
takes the groups with index % W == r and every rank writes its finished groups into the same run
folder. Ranks only need barriers (no tensors cross processes), so the process group always uses the
gloo backend, which works on CPU and beside CUDA alike. Outside torchrun (no WORLD_SIZE, or 1) all
of this is a no-op for a single process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Whether work item `index` belongs to this rank (round robin)."""
        return index % self.world == self.rank


def shard_from_env() -> Shard:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world}")
    rank = int(os.environ.get("RANK", "0"))
    if not 0 <= rank < world:
        raise ValueError(f"RANK {rank} is outside WORLD_SIZE {world}")
    return Shard(rank, world, int(os.environ.get("LOCAL_RANK", str(rank))))


def init(shard: Shard, timeout_s: float = 24 * 3600) -> None:
    """Join the process group (gloo; MASTER_ADDR/MASTER_PORT from the environment) when world > 1.

    The long default timeout lets a barrier wait for the slowest rank of a long synthesis.
    """
    if shard.world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world, timeout=timedelta(seconds=timeout_s))


def barrier(shard: Shard) -> None:
    if shard.world > 1 and dist.is_initialized():
        dist.barrier()


def finish(shard: Shard) -> None:
    if shard.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def shard_device(device: torch.device, shard: Shard) -> torch.device:
    """cuda:LOCAL_RANK for a sharded CUDA run (one GPU per process); other devices unchanged."""
    if device.type == "cuda" and shard.world > 1 and device.index is None:
        return torch.device("cuda", shard.local_rank % max(torch.cuda.device_count(), 1))
    return device
