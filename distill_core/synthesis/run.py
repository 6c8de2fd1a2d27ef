"""The synthesis run-folder job: `python -m distill_core synthesize` (one process, or one per rank
under torchrun).

A run folder holds images.pt (imageset schema; method = preset), losses.pt (CE and BN term
[units, iterations]) and losses.csv, grids/class_XXXX.png, partial/unit_XXXXX.pt (each finished
unit, written atomically; --resume skips them) and metrics.json. Scale-out, one process per GPU,
units round-robin over ranks:
    torchrun --nproc_per_node=K -m distill_core synthesize --teacher runs/T --preset lpld --run-dir runs/S
"""
from __future__ import annotations

import io
import math
import time
from pathlib import Path

import torch
from torch import nn

from .. import distributed, jobs
from ..data import Dataset, DatasetInfo, ImageSet, load_dataset
from ..device import make_generator, resolve_device
from ..imageset import ImageSetArtifact, save_image_set, tile_images
from ..models import predict_logits
from ..runs import load_tensors, save_tensors, write_bytes_atomic, write_text_atomic
from ..teacher import check_teacher_sanity, load_teacher, teacher_dataset_spec
from .bn_stats import BNStatistics, global_stats, load_or_compute_class_stats
from .live import LiveLosses
from .synthesize import SynthesisConfig, SynthesisResult, UnitResult, assemble, base_seed, plan_units, synthesize_units

PARTIAL_DIR = "partial"
UNIT_SCHEMA = "distill_core.synthesis_unit/1"
LOSSES_SCHEMA = "distill_core.synthesis_losses/1"
CSV_MAX_ROWS_PER_UNIT = 200  # losses.csv keeps every k-th iteration (and the last); losses.pt keeps all


def run_synthesize(cfg: SynthesisConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: synthesise into `run_dir` (images.pt, losses.pt/.csv, grids/, metrics). Returns the metrics.

    Finished units are saved at once under partial/ (atomic), so an interrupted run keeps them and
    `--resume` skips them. Under torchrun each rank takes every WORLD_SIZE-th unit; rank 0 owns the
    run record (config, status, metrics) and assembles the final artifacts after a barrier.
    """
    if not cfg.teacher:
        raise ValueError("teacher must name a teacher run folder, e.g. --teacher runs/digits-teacher")
    shard = distributed.shard_from_env()
    distributed.init(shard)
    device = distributed.shard_device(resolve_device(cfg.device), shard)
    try:
        if shard.is_main:
            return jobs.run_stage("synthesize", cfg, run_dir, lambda ctx: _main_rank(cfg, ctx, shard), device,
                                  cfg.seed, resume, overwrite)
        _other_rank(cfg, jobs.JobContext(Path(run_dir), resume, device, lambda p, m: None), shard)
        return {}
    finally:
        distributed.finish(shard)


def _main_rank(cfg: SynthesisConfig, ctx: jobs.JobContext, shard: distributed.Shard) -> dict:
    """Rank 0 (or the only process): check the teacher, make the class statistics the other ranks
    read, synthesise its shard, then assemble every rank's units into the run's artifacts."""
    start = time.perf_counter()
    model, spec, _ = load_teacher(cfg.teacher, cfg.teacher_epoch, ctx.device)
    data = _real_data(cfg, spec.info)
    check_request(cfg, data, ctx.device)
    sanity = check_teacher_sanity(model, data)
    stats, stats_path = global_stats(model), None
    if cfg.statistics == "class":
        ctx.report(0.0, f"class statistics ({cfg.stats_mode})")
        stats, stats_path = load_or_compute_class_stats(cfg.teacher, model, data, cfg.stats_mode, cfg.teacher_epoch,
                                                        cfg.compute_stats, cfg.seed)
    distributed.barrier(shard)  # the class statistics are on disk for the other ranks
    result = _synthesize_shard(cfg, ctx, shard, model, spec.info, stats, data.train)
    distributed.barrier(shard)  # every rank's units are on disk
    metrics = _finish(cfg, ctx.run_dir, model, spec.info, result, stats, stats_path, sanity, time.perf_counter() - start)
    return {**metrics, "ranks": shard.world}  # with ranks > 1, synthesis_s and image_iterations_per_s are rank 0's


def _other_rank(cfg: SynthesisConfig, ctx: jobs.JobContext, shard: distributed.Shard) -> None:
    """Rank > 0: read the class statistics rank 0 saved, synthesise this rank's shard."""
    model, spec, _ = load_teacher(cfg.teacher, cfg.teacher_epoch, ctx.device)
    real = _real_data(cfg, spec.info).train if cfg.init == "real" else None
    distributed.barrier(shard)  # rank 0 has saved the class statistics
    stats = global_stats(model)
    if cfg.statistics == "class":
        stats, _ = load_or_compute_class_stats(cfg.teacher, model, None, cfg.stats_mode, cfg.teacher_epoch, False)
    _synthesize_shard(cfg, ctx, shard, model, spec.info, stats, real)
    distributed.barrier(shard)


def _real_data(cfg: SynthesisConfig, info: DatasetInfo) -> Dataset:
    """The real dataset (config's, else the teacher's); ValueError when its classes differ from the teacher's."""
    data = load_dataset(cfg.dataset or teacher_dataset_spec(cfg.teacher))
    if data.info.num_classes != info.num_classes:
        raise ValueError(f"dataset {data.info.name} has {data.info.num_classes} classes but the teacher "
                         f"{info.num_classes}; pass the teacher's dataset")
    return data


def _synthesize_shard(cfg: SynthesisConfig, ctx: jobs.JobContext, shard: distributed.Shard, model: nn.Module,
                      info: DatasetInfo, stats: BNStatistics, real: ImageSet | None) -> SynthesisResult:
    """This rank's units (`shard.owns` their index), less those a resumed run has saved, each saved
    under partial/ (and its grid PNG) as it finishes."""
    done = load_partials(ctx.run_dir) if ctx.resume else {}
    units = [u for i, u in enumerate(plan_units(cfg, info)) if shard.owns(i) and u.key not in done]

    def on_unit(r: UnitResult) -> None:
        save_partial(ctx.run_dir, r)
        if cfg.batching == "class_wise":
            write_grid(ctx.run_dir / "grids" / f"class_{r.key:04d}.png", r.images)

    report = LiveLosses(ctx.run_dir, ctx.report, fresh=not ctx.resume) if shard.is_main else ctx.report
    return synthesize_units(cfg, model, stats, info, units, ctx.device, base_seed(make_generator(cfg.seed, "cpu")),
                            report, real, on_unit)


def check_request(cfg: SynthesisConfig, data, device: torch.device) -> None:
    """Refuse, before any work, an IPC larger than a class of the real data, or a synthesis whose images
    (pixels, their gradient and Adam's two moments: 16 bytes a value) do not fit in free memory."""
    from ..device import require_memory

    counts = torch.bincount(data.train.labels, minlength=data.info.num_classes)
    classes = [c for c in (range(data.info.num_classes) if cfg.classes is None else cfg.classes)
               if 0 <= c < data.info.num_classes]  # classes out of range are refused by plan_units
    if not classes:
        return
    smallest = min(classes, key=lambda c: int(counts[c]))
    if cfg.ipc > int(counts[smallest]):
        raise ValueError(f"ipc {cfg.ipc} is larger than class {smallest}, which has {int(counts[smallest])} training "
                         "images; a distilled set is smaller than the data: lower ipc")
    info = data.info
    n = cfg.ipc * len(classes)
    require_memory(16 * n * info.channels * info.image_size ** 2, device, f"synthesising {n} images",
                   "lower ipc or synthesise a subset of classes")


def save_partial(run_dir: Path, r: UnitResult) -> None:
    save_tensors(Path(run_dir) / PARTIAL_DIR / f"unit_{r.key:05d}.pt", {
        "schema": UNIT_SCHEMA, "key": r.key, "slots": r.slots, "labels": r.labels, "images": r.images,
        "ce": r.ce, "bn": r.bn,
    })


def load_partials(run_dir: Path) -> dict[int, UnitResult]:
    """Finished units saved in a run folder (a corrupt file raises ValueError naming it)."""
    out = {}
    for path in sorted((Path(run_dir) / PARTIAL_DIR).glob("unit_*.pt")):
        raw = load_tensors(path)
        fields = ("slots", "labels", "images", "ce", "bn")
        if not isinstance(raw, dict) or raw.get("schema") != UNIT_SCHEMA or \
                not all(isinstance(raw.get(k), torch.Tensor) for k in fields) or not isinstance(raw.get("key"), int):
            raise ValueError(f"{path} is not a synthesis unit file ({UNIT_SCHEMA}); delete it and resume")
        out[raw["key"]] = UnitResult(raw["key"], *(raw[k] for k in fields))
    return out


def write_grid(path: Path, images: torch.Tensor, min_tile: int = 64) -> None:
    """PNG of images [n, C, H, W] in [0, 1], up to 10 per row, upscaled (nearest) to >= min_tile px."""
    buf = io.BytesIO()
    tile_images(images, ncol=10, min_tile=min_tile).save(buf, format="PNG")
    write_bytes_atomic(Path(path), buf.getvalue())


def _finish(cfg: SynthesisConfig, run_dir: Path, model: nn.Module, info: DatasetInfo, result: SynthesisResult,
            stats: BNStatistics, stats_path: Path | None, sanity: float, wall_s: float) -> dict:
    units = load_partials(run_dir)
    planned = [u.key for u in plan_units(cfg, info)]
    missing = [k for k in planned if k not in units]
    if missing:
        raise RuntimeError(f"units {missing[:10]} were not synthesised; rerun with --resume")
    results = [units[k] for k in planned]
    images, labels = assemble(results)
    extra = {"teacher": str(cfg.teacher), "teacher_epoch": cfg.teacher_epoch, "ipc": cfg.ipc, "batching": cfg.batching,
             "statistics": cfg.statistics, "stats_mode": cfg.stats_mode, "iterations": cfg.iterations,
             "seed": cfg.seed, "classes": sorted(set(labels.tolist()))}
    save_image_set(run_dir, ImageSetArtifact(images, labels, info, cfg.method, extra))
    _write_losses(run_dir, cfg, results)
    if cfg.batching == "cross_class":
        for c in extra["classes"]:
            write_grid(run_dir / "grids" / f"class_{c:04d}.png", images[labels == c])
    hit = predict_logits(model, images).argmax(1).cpu() == labels
    per_class = {int(c): float(hit[labels == c].float().mean()) for c in extra["classes"]}
    ce_last = torch.stack([r.ce[-1] for r in results])
    bn_last = torch.stack([r.bn[-1] for r in results])
    return {
        "method": cfg.method, "batching": cfg.batching, "statistics": cfg.statistics, "ipc": cfg.ipc,
        "num_images": len(labels), "iterations": cfg.iterations, "teacher": str(cfg.teacher),
        "teacher_test_acc_sample": sanity, "synthetic_acc": float(hit.float().mean()), "per_class_acc": per_class,
        "final_ce": float(ce_last.mean()), "final_bn": float(bn_last.mean()), "group_size": result.group_size,
        "wall_s": wall_s, "synthesis_s": result.wall_s,
        "image_iterations_per_s": result.image_iterations / result.wall_s if result.wall_s > 0 else float("nan"),
        "stats_bytes": stats.nbytes, "stats_path": str(stats_path) if stats_path else None,
    }


def _write_losses(run_dir: Path, cfg: SynthesisConfig, results: list[UnitResult]) -> None:
    ce, bn = torch.stack([r.ce for r in results]), torch.stack([r.bn for r in results])
    kind = "class" if cfg.batching == "class_wise" else "batch"
    save_tensors(run_dir / "losses.pt", {"schema": LOSSES_SCHEMA, "unit_kind": kind,
                                         "keys": [r.key for r in results], "ce": ce, "bn": bn,
                                         "bn_weight": cfg.bn_weight})
    step = max(1, math.ceil(cfg.iterations / CSV_MAX_ROWS_PER_UNIT))
    its = sorted(set(range(0, cfg.iterations, step)) | {cfg.iterations - 1})
    lines = [f"{kind},iteration,ce,bn,loss"]
    for u, r in enumerate(results):
        lines += [f"{r.key},{t + 1},{float(ce[u, t]):.6g},{float(bn[u, t]):.6g},"
                  f"{float(ce[u, t] + cfg.bn_weight * bn[u, t]):.6g}" for t in its]
    write_text_atomic(run_dir / "losses.csv", "\n".join(lines) + "\n")
