"""Synthesis throughput: cross-class batches vs one class per batch (the reference loop) vs grouped class-wise.

    .venv/bin/python bench/synthesis.py [--iterations 20] [--rounds 3] [--threads 1]
        [--digits-teacher runs/digits-teacher] [--fmnist-teacher runs/fmnist-convnet-teacher]

For each teacher (CPU) and, when CUDA is present, a random ResNet-18 at 224 px with 1,000 classes
(IPC 10 and 50, fp32 and bf16), one run times the same recover step three ways:
  cross_class  SRe2L batches (global statistics), batch = the grouped pass's image count
  loop         class-wise, one class (IPC images) per forward pass, as the reference code
  grouped      class-wise, G classes per forward pass (G chosen from memory)
and reports image-iterations/s (images x iterations / wall time, after a 2-iteration warm-up run)
and peak memory. CPU rows run each measurement in a forked child (peak RSS above the child's
post-setup RSS) and repeat the three modes `rounds` times interleaved, keeping the median, so the
ratios hold on a shared machine. Writes bench/results/synthesis.json.

    .venv/bin/python bench/synthesis.py --quality [--seeds 0 1]

instead runs full syntheses with the default config (IPC 10, all classes) for the ladder sre2l, +C,
lpld (exact statistics) and lpld with EMA statistics, and reports the share of synthetic images the
teacher assigns to their own class, the un-augmented class-BN distance (the BN term against each
class's exact statistics, mean over classes), the mean within-class cosine similarity of the
teacher's penultimate features, and wall time. Writes bench/results/synthesis_quality.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from distill_core.data import DatasetInfo, load_dataset
from distill_core.models import ModelSpec
from distill_core.synthesis import bn_stats
from distill_core.synthesis.synthesize import SynthesisConfig, choose_group_size, plan_units, synthesize
from distill_core.teacher import check_teacher_sanity, load_teacher, teacher_dataset_spec

MODES = ("cross_class", "loop", "grouped")
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}
RESNET18_FLOPS = 2 * 1.82e9  # forward multiply-adds x 2 at 224 px


def mode_config(mode: str, teacher: str, ipc: int, iterations: int, group: int, classes, amp: str, device: str):
    common = dict(teacher=teacher, ipc=ipc, iterations=iterations, classes=tuple(classes), amp=amp, device=device)
    if mode == "cross_class":
        return SynthesisConfig(preset="sre2l", batch_size=group * ipc, group_size=1, **common)
    return SynthesisConfig(preset="lpld", group_size=1 if mode == "loop" else group, **common)


def measure(cfg: SynthesisConfig, model, stats, info, device: torch.device) -> tuple[float, float]:
    """(image-iterations/s, peak MiB above the starting point) of one synthesize() call after a warm-up.

    CPU peak = max RSS of the process (warm-up and timed run have the same peak) minus RSS after setup."""
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the warm-up: RSS peaks are sticky
    synthesize(dataclasses.replace(cfg, iterations=2), model, stats, device, gen(), info=info)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = rss_base
    start = time.perf_counter()
    res = synthesize(cfg, model, stats, device, gen(), info=info)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return res.image_iterations / (time.perf_counter() - start), max(peak, 0) / 2**20


def _child(conn, teacher_dir: str, cfg: SynthesisConfig, threads: int) -> None:
    torch.set_num_threads(threads)
    model, spec, _ = load_teacher(teacher_dir, cfg.teacher_epoch)
    stats = bn_stats.load_or_compute_class_stats(teacher_dir, model, None, "exact", cfg.teacher_epoch, False)[0]
    if cfg.statistics == "global":
        stats = bn_stats.global_stats(model)
    conn.send(measure(cfg, model, stats, spec.info, torch.device("cpu")))
    conn.close()


def cpu_rows(name: str, teacher_dir: str, epoch: int | None, ipc: int, iterations: int, rounds: int,
             threads: int) -> list[dict]:
    model, spec, _ = load_teacher(teacher_dir, epoch)
    data = load_dataset(teacher_dataset_spec(teacher_dir))
    bn_stats.load_or_compute_class_stats(teacher_dir, model, data, "exact", epoch)  # cached for the children
    classes = list(range(spec.info.num_classes))
    base = SynthesisConfig(teacher=teacher_dir, ipc=ipc, device="cpu")
    group = choose_group_size(base, model, spec.info, ipc, len(plan_units(base, spec.info)), torch.device("cpu"))
    ctx = multiprocessing.get_context("fork")
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    for _ in range(rounds):
        for mode in MODES:
            cfg = dataclasses.replace(mode_config(mode, teacher_dir, ipc, iterations, group, classes, "off", "cpu"),
                                      teacher_epoch=epoch)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, teacher_dir, cfg, threads))
            proc.start()
            samples[mode].append(recv.recv())
            proc.join()
    rows = []
    for mode in MODES:
        speed = statistics.median(s[0] for s in samples[mode])
        rows.append(dict(dataset=name, model=f"{spec.name} {spec.args}", teacher_epoch=epoch, device="cpu", amp="off",
                         ipc=ipc, mode=mode,
                         group_size=1 if mode == "loop" else group, images_per_pass=ipc * (1 if mode == "loop" else group),
                         img_it_per_s=speed, peak_mib=max(s[1] for s in samples[mode]),
                         samples=[s[0] for s in samples[mode]]))
    return _ratios(rows)


def cuda_rows(iterations: int) -> list[dict]:
    if not torch.cuda.is_available():
        return [dict(dataset="imagenet-1k (random)", model="tv_resnet18 224px", device="cuda", note="CUDA: not available")]
    device = torch.device("cuda")
    k = 1000
    info = DatasetInfo("imagenet-random", k, 3, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                       tuple(str(i) for i in range(k)), True)
    torch.manual_seed(0)
    model = ModelSpec("tv_resnet18", info, {}).build().to(device).eval()
    glob = bn_stats.global_stats(model)
    cls = bn_stats.BNStatistics(glob.layers, [torch.randn(k, m.shape[1]) * 0.1 for m in glob.mean],
                                [torch.rand(k, v.shape[1]) + 0.5 for v in glob.var], "class", "exact", torch.ones(k))
    name = torch.cuda.get_device_name(device)
    peak = next((v for key, v in BF16_PEAK.items() if key in name), None)
    rows = []
    for ipc in (10, 50):
        for amp in ("off", "bf16"):
            base = SynthesisConfig(teacher="random", ipc=ipc, amp=amp, device="cuda")
            group = choose_group_size(base, model, info, ipc, k, device)
            block = []
            for mode in MODES:
                classes = range(min(group, 8) if mode == "loop" else group)
                cfg = mode_config(mode, "random", ipc, iterations, group, classes, amp, "cuda")
                speed, mem = measure(cfg, model, glob if mode == "cross_class" else cls, info, device)
                block.append(dict(dataset="imagenet-1k (random)", model="tv_resnet18 224px", device=name, amp=amp,
                                  ipc=ipc, mode=mode, group_size=1 if mode == "loop" else group,
                                  images_per_pass=ipc * (1 if mode == "loop" else group), img_it_per_s=speed,
                                  peak_mib=mem, us_per_img_it=1e6 / speed,
                                  bf16_peak_fraction=speed * 2 * RESNET18_FLOPS / peak if peak else None))
            rows += _ratios(block)
    return rows


LADDER = (("sre2l", "exact"), ("+C", "exact"), ("lpld", "exact"), ("lpld", "reference"), ("lpld", "ema_unbiased"))


GRID = [dict(lr=lr, bn_weight=a, crop_scale=c) for lr in (0.1, 0.25) for a in (0.01, 0.1) for c in ((0.08, 1.0), (0.5, 1.0))]


def quality_rows(name: str, teacher_dir: str, epoch: int | None, ipc: int, seeds: list[int], threads: int,
                 ladder=LADDER, variants: list[dict] = ({},)) -> list[dict]:
    from distill_core.models import predict_logits
    from distill_core.synthesis.hooks import BNInputCapture
    from distill_core.synthesis.synthesize import group_bn_loss

    torch.set_num_threads(threads)
    model, spec, _ = load_teacher(teacher_dir, epoch)
    data = load_dataset(teacher_dataset_spec(teacher_dir))
    exact, _ = bn_stats.load_or_compute_class_stats(teacher_dir, model, data, "exact", epoch)
    teacher_acc = check_teacher_sanity(model, data, sample=len(data.test))
    rows = []
    for (preset, mode), variant, seed in itertools.product(ladder, variants, seeds):
        stats = bn_stats.load_or_compute_class_stats(teacher_dir, model, data, mode, epoch)[0]
        cfg = SynthesisConfig(teacher=teacher_dir, teacher_epoch=epoch, preset=preset, stats_mode=mode, ipc=ipc,
                              seed=seed, device="cpu", **variant)
        start = time.perf_counter()
        res = synthesize(cfg, model, stats if cfg.statistics == "class" else bn_stats.global_stats(model),
                         torch.device("cpu"), torch.Generator().manual_seed(seed), info=spec.info)
        wall = time.perf_counter() - start
        acc = float((predict_logits(model, res.images).argmax(1) == res.labels).float().mean())
        k = spec.info.num_classes
        with torch.no_grad(), BNInputCapture(model) as cap:
            feats = model.features(res.images)
            dist = group_bn_loss(cap.captured(), exact.mean, exact.var, k, cfg.first_bn_multiplier).mean()
        f = torch.nn.functional.normalize(feats, dim=1).view(k, ipc, -1)
        sim = f @ f.transpose(1, 2)
        within = float((sim.sum((1, 2)) - ipc).mean() / (ipc * (ipc - 1)))
        rows.append(dict(dataset=name, model=f"{spec.name} {spec.args}", teacher_epoch=epoch,
                         teacher_test_acc=teacher_acc, preset=preset, stats_mode=mode if cfg.statistics == "class" else "-",
                         seed=seed, ipc=ipc, iterations=cfg.iterations, lr=cfg.lr, bn_weight=cfg.bn_weight,
                         crop_scale=list(cfg.crop_scale), synthetic_acc=acc, class_bn_distance=float(dist),
                         within_class_cosine=within, wall_s=wall, stats_bytes=stats.nbytes,
                         var_vs_exact=float(torch.stack([(v / e.clamp(min=1e-12)).mean()
                                                         for v, e in zip(stats.var, exact.var)]).mean())
                         if cfg.statistics == "class" else None))
        print(f"{name:14s} {preset:6s} {rows[-1]['stats_mode']:6s} seed {seed} lr {cfg.lr} alpha {cfg.bn_weight} "
              f"crop {tuple(cfg.crop_scale)}  teacher acc {acc:.3f}  "
              f"class-BN dist {float(dist):7.3f}  within-class cos {within:.3f}  {wall:6.1f} s", flush=True)
    return rows


def _ratios(rows: list[dict]) -> list[dict]:
    by = {r["mode"]: r["img_it_per_s"] for r in rows}
    for r in rows:
        r["vs_cross_class"] = r["img_it_per_s"] / by["cross_class"]
        r["vs_loop"] = r["img_it_per_s"] / by["loop"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per measurement (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats on CPU, median kept (default 3)")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per measurement (default 1)")
    parser.add_argument("--digits-teacher", default="runs/digits-teacher")
    parser.add_argument("--fmnist-teacher", default="runs/fmnist-convnet-teacher")
    parser.add_argument("--fmnist-epoch", type=int, default=None, help="teacher checkpoint epoch (default: final)")
    parser.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"], help="which CPU teachers")
    parser.add_argument("--cuda-iterations", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/synthesis[_quality].json")
    parser.add_argument("--quality", action="store_true", help="full syntheses: teacher accuracy, BN distance, similarity")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--grid", action="store_true", help="with --quality: sre2l and lpld over the lr x alpha x "
                                                             "crop-scale grid used to tune the small-image defaults")
    args = parser.parse_args()
    teachers = [(n, t, e) for n, t, e in (("digits", args.digits_teacher, None),
                                          ("fashion-mnist", args.fmnist_teacher, args.fmnist_epoch)) if n in args.datasets]
    if args.quality:
        rows = []
        for name, teacher, epoch in teachers:
            if args.grid:
                rows += quality_rows(name, teacher, epoch, args.ipc, args.seeds, args.threads,
                                     (("sre2l", "exact"), ("lpld", "exact")), GRID)
            else:
                rows += quality_rows(name, teacher, epoch, args.ipc, args.seeds, args.threads)
        out = args.out or Path(__file__).parent / "results" / "synthesis_quality.json"
        out.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__, "rows": rows}, indent=2) + "\n")
        print(f"wrote {out}")
        return
    args.out = args.out or Path(__file__).parent / "results" / "synthesis.json"
    rows = []
    for name, teacher, epoch in teachers:
        rows += cpu_rows(name, teacher, epoch, args.ipc, args.iterations, args.rounds, args.threads)
    rows += cuda_rows(args.cuda_iterations)
    _print(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"host": platform.node(), "cpu": platform.processor(), "torch": torch.__version__,
                                    "threads": args.threads, "iterations": args.iterations, "rounds": args.rounds,
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


def _print(rows: list[dict]) -> None:
    print(f"{'dataset':22s} {'device':10s} {'amp':4s} {'ipc':>3s} {'mode':11s} {'G':>4s} {'img/pass':>8s} "
          f"{'img-it/s':>10s} {'peak MiB':>9s} {'vs cross':>8s} {'vs loop':>8s}")
    for r in rows:
        if "note" in r:
            print(f"{r['dataset']:22s} {r.get('device', ''):10s} {r['note']}")
            continue
        print(f"{r['dataset']:22s} {r['device'][:10]:10s} {r['amp']:4s} {r['ipc']:3d} {r['mode']:11s} "
              f"{r['group_size']:4d} {r['images_per_pass']:8d} {r['img_it_per_s']:10.0f} {r['peak_mib']:9.1f} "
              f"{r['vs_cross_class']:8.2f} {r['vs_loop']:8.2f}")


if __name__ == "__main__":
    main()
