"""The relabel run-folder job: `python -m distill_core relabel` (one process, or one per rank under
torchrun), sharded over label epochs like synthesis is over classes.

Rank r of W labels the epochs e with e % W == r and saves each under label_epochs/ as it finishes
(atomic). A rank walks the epochs in order with one generator seeded by `cfg.seed` and only draws
the view parameters of epochs it does not own (`relabel.label_epochs`), so every epoch gets the
draws a single process would make and W processes write the same store as one. Rank 0 owns the run
record, and after a barrier assembles every epoch into label_params.pt + label_logits.pt. --resume
skips the epochs already saved, whatever W wrote them.

    torchrun --nproc_per_node=K -m distill_core relabel --images runs/S --teacher runs/T --run-dir runs/L
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import distributed, jobs
from ..device import make_generator, require_memory, resolve_device
from ..imageset import ImageSetArtifact, load_image_set
from ..runs import remove_partial
from .relabel import (
    EPOCHS_DIR,
    VALUE_DTYPES,
    VIEW_META_BYTES,
    RelabelConfig,
    assemble_store,
    label_epochs,
    load_checked_teacher,
    load_label_epochs,
    logit_bytes_per_view,
    save_label_epoch,
    save_store,
    saved_label_epochs,
    store_metrics,
)


def run_relabel_job(cfg: RelabelConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: relabel `cfg.images` with `cfg.teacher` into `run_dir`; returns the metrics (rank 0; {} elsewhere)."""
    if not cfg.images or not cfg.teacher:
        raise ValueError("relabel needs --images (an image run) and --teacher (a teacher run)")
    shard = distributed.shard_from_env()
    distributed.init(shard)
    device = distributed.shard_device(resolve_device(cfg.device), shard)
    try:
        if shard.is_main:
            return jobs.run_stage("relabel", cfg, run_dir, lambda ctx: _main_rank(cfg, ctx, shard), device, cfg.seed,
                                  resume, overwrite)
        _other_rank(cfg, Path(run_dir), resume, device, shard)
        return {}
    finally:
        distributed.finish(shard)


def _inputs(cfg: RelabelConfig, device: torch.device) -> tuple[ImageSetArtifact, torch.nn.Module, dict]:
    """The image set, the checked teacher and its checkpoint; refuses a store too large for memory."""
    art = load_image_set(cfg.images)
    teacher, spec, ckpt = load_checked_teacher(cfg.teacher, cfg.teacher_epoch, art.info, device)
    n, c = len(art.images), spec.info.num_classes
    per_view = VIEW_META_BYTES + logit_bytes_per_view(c, VALUE_DTYPES[cfg.value_dtype].itemsize, cfg.topk)
    require_memory(n * cfg.epochs * per_view * 2, "cpu",
                   f"relabeling {n} images for {cfg.epochs} label epochs", "lower epochs (or relabel fewer images)")
    return art, teacher, ckpt


def _main_rank(cfg: RelabelConfig, ctx: jobs.JobContext, shard: distributed.Shard) -> dict:
    """Rank 0 (or the only process): label its epochs, then assemble every rank's into the store."""
    art, teacher, ckpt = _inputs(cfg, ctx.device)
    found = load_label_epochs(ctx.run_dir, art.checksum) if ctx.resume else {}
    if found:
        ctx.report(len(found) / cfg.epochs, f"resuming: {len(found)}/{cfg.epochs} label epochs were saved")
    distributed.barrier(shard)  # the run folder is set up (an --overwrite has cleared it) for the other ranks
    mine = _label_shard(cfg, ctx.run_dir, art, teacher, ctx.device, shard, set(found), ctx.report)
    distributed.barrier(shard)  # every rank's epochs are on disk
    chunks = found | mine
    chunks |= load_label_epochs(ctx.run_dir, art.checksum, set(range(cfg.epochs)) - set(chunks))
    store = assemble_store([chunks[e] for e in range(cfg.epochs)], cfg, art.checksum, len(art.images),
                           teacher.head.out_features, art.images.shape[-1])
    epoch = ckpt.get("epoch") if cfg.teacher_epoch is None else cfg.teacher_epoch
    store.extra.update(teacher=str(cfg.teacher), teacher_epoch=epoch)
    on_disk = save_store(ctx.run_dir, store)
    remove_partial(ctx.run_dir, EPOCHS_DIR)
    return store_metrics(store) | {"bytes_on_disk": on_disk, "images": str(cfg.images), "teacher": str(cfg.teacher),
                                   "teacher_test_acc": ckpt.get("test_acc"), "resumed_after_epoch": len(found),
                                   "ranks": shard.world}


def _other_rank(cfg: RelabelConfig, run_dir: Path, resume: bool, device: torch.device,
                shard: distributed.Shard) -> None:
    """Rank > 0: label this rank's epochs once rank 0 has set up the run folder."""
    art, teacher, _ = _inputs(cfg, device)
    distributed.barrier(shard)
    saved = saved_label_epochs(run_dir) if resume else set()
    _label_shard(cfg, run_dir, art, teacher, device, shard, saved, lambda p, m: None)
    distributed.barrier(shard)


def _label_shard(cfg: RelabelConfig, run_dir: Path, art: ImageSetArtifact, teacher: torch.nn.Module,
                 device: torch.device, shard: distributed.Shard, saved: set[int], report: jobs.ProgressFn
                 ) -> dict[int, dict[str, torch.Tensor]]:
    """Label the epochs this rank owns and has not saved, saving each at once; returns their columns."""
    todo = {e for e in range(cfg.epochs) if shard.owns(e) and e not in saved}
    done: dict[int, dict[str, torch.Tensor]] = {}
    mine = len([e for e in range(cfg.epochs) if shard.owns(e)])

    def keep(epoch: int, cols: dict[str, torch.Tensor]) -> None:
        save_label_epoch(run_dir, epoch, cols, art.checksum)
        done[epoch] = cols
        finished = mine - len(todo) + len(done)
        ranks = f" ({finished}/{mine} of rank {shard.rank}'s)" if shard.world > 1 else ""
        report(finished / max(mine, 1), f"label epoch {epoch + 1}/{cfg.epochs}{ranks}")

    label_epochs(teacher, art.images.to(device), cfg, make_generator(cfg.seed, device), art.info.flip, 0,
                 todo.__contains__, keep)
    return done
