"""The GPU table in one call: recover step, relabelling and students, eager and compiled.

    python bench/gpu.py [--iterations 20] [--group 80] [--cudagraphs] [--peak-tflops 989] [--out PATH]

Needs torch and torchvision only (plus numpy, which torchvision brings), and no data: the teacher
is a torchvision ResNet-18 with random weights (224 px, 1,000 classes), its running statistics are
the global BN targets and random ones the class targets (speed does not depend on their values).

First every compiled path is checked against its eager path on the same inputs (one recover step:
CE and BN terms and the pixel gradient; the relabel logits of one forward pass; one student step:
loss and weight gradients); a failed check marks its rows. Then, each row timed after a warm-up of
the same shape (the warm-up is where compilation happens; its seconds are reported):
  recover   us per image-iteration of `synthesize_units` (views, forward, losses, backward, Adam):
            loop (one class of IPC 10 per pass, eager fp32, as the reference code), sre2l (one mixed
            batch of 100, eager fp32), grouped (G classes per pass, eager bf16 channels-last),
            compiled (the same, torch.compile); --cudagraphs adds compile=reduce-overhead rows
  relabel   views/s of `label_epoch` (on-device crops + flip + CutMix, teacher forward, logits to the host)
  student   images/s of replayed views through `compiled.TrainStep` (forward, KD loss, backward, AdamW)
Each row has its fraction of the GPU's dense bf16 peak (FLOPs counted by FlopCounterMode on the
eager step) and the recover rows their ratio to the loop and to the sre2l batch. Prints the table
and writes bench/results/gpu.json. Without CUDA it runs the same rows on a tiny ConvNet at 16 px
on the CPU, to show the script works (bench/results/gpu_cpu_smoke.json); those numbers mean
nothing and the table says so. Exit status 1 when a check fails, a row fails, or a timed run had
to compile.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core.compiled import TrainStep, held_channels_last  # noqa: E402
from distill_core.data import DatasetInfo  # noqa: E402
from distill_core.labels.relabel import (  # noqa: E402
    RelabelConfig,
    assemble_store,
    draw_epoch,
    label_epoch,
    replay_batch,
    stored_columns,
    teacher_forward,
)
from distill_core.labels.student import kd_loss  # noqa: E402
from distill_core.models import build_model  # noqa: E402
from distill_core.synthesis import bn_stats  # noqa: E402
from distill_core.synthesis import synthesize as syn  # noqa: E402
from distill_core.synthesis.step import RecoverStep  # noqa: E402
from distill_core.teacher import make_optimizer  # noqa: E402

BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0), ("L40S", 362.1))


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one table: the CUDA table or the CPU smoke run."""

    model: str
    model_args: dict
    image_size: int
    classes: int  # classes of the random teacher
    ipc: int
    group: int  # classes per grouped pass
    loop_classes: int  # classes the per-class loop runs (one pass each)
    sre2l_batch: int
    iterations: int
    label_images: int
    label_epochs: int  # timed label epochs (after one warm-up epoch)
    label_batch: int
    per_forward: int  # stored batches per teacher pass
    student_steps: int


CUDA = Scale("tv_resnet18", {}, 224, 1000, 10, 80, 8, 100, 20, 2048, 10, 128, 8, 40)
CPU = Scale("convnet", {"width": 16, "depth": 3}, 16, 10, 2, 5, 2, 10, 2, 48, 2, 8, 2, 4)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of fn(), the device drained before and after."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def graphs_compiled() -> int:
    """Graphs TorchDynamo has compiled in this process (a timed run must add none)."""
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def timed_run(warm_up: Callable[[], object], run: Callable[[], object], device: torch.device) -> dict:
    """warm-up then the timed run: their seconds, the timed run's peak GiB (CUDA) and graphs it compiled."""
    warm = timed(warm_up, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = graphs_compiled()
    seconds = timed(run, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"seconds": seconds, "warmup_s": warm, "peak_gib": peak, "compiled_while_timed": graphs_compiled() - before}


def random_teacher(scale: Scale, device: torch.device, seed: int = 0):
    """(teacher in eval mode, info, global statistics, class statistics) with random weights and targets."""
    info = DatasetInfo("random", scale.classes, 3, scale.image_size, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                       tuple(str(i) for i in range(scale.classes)), True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = build_model(scale.model, info, **scale.model_args).to(device).eval()
        glob = bn_stats.global_stats(teacher)
        cls = bn_stats.BNStatistics(glob.layers, [torch.randn(scale.classes, m.shape[1]) * 0.1 for m in glob.mean],
                                    [torch.rand(scale.classes, v.shape[1]) + 0.5 for v in glob.var], "class", "exact",
                                    torch.ones(scale.classes))
    return teacher, info, glob, cls


# ---------------------------------------------------------------------------------------------
# recover step


def recover_configs(scale: Scale, iterations: int, group: int, cudagraphs: bool) -> dict[str, syn.SynthesisConfig]:
    common = dict(teacher="random", ipc=scale.ipc, iterations=iterations, lr=0.25, bn_weight=0.01,
                  crop_scale=(0.08, 1.0), device="auto")
    grouped = dict(preset="lpld", group_size=group, classes=tuple(range(group)), amp="bf16", channels_last=True)
    out = {
        "loop (eager fp32)": syn.SynthesisConfig(preset="lpld", group_size=1, classes=tuple(range(scale.loop_classes)),
                                                 **common),
        f"sre2l batch {scale.sre2l_batch} (eager fp32)": syn.SynthesisConfig(
            preset="sre2l", batch_size=scale.sre2l_batch, group_size=1, **{**common, "ipc": 1},
            classes=tuple(range(scale.sre2l_batch))),
        f"grouped G={group} (eager bf16 channels-last)": syn.SynthesisConfig(**grouped, **common),
        f"grouped G={group} (compiled bf16 channels-last)": syn.SynthesisConfig(**grouped, compile="default", **common),
    }
    if cudagraphs:
        out[f"grouped G={group} (compiled + CUDA graphs)"] = syn.SynthesisConfig(**grouped, compile="reduce-overhead",
                                                                                 **common)
        out["loop (compiled bf16 + CUDA graphs)"] = dataclasses.replace(
            out["loop (eager fp32)"], amp="bf16", channels_last=True, compile="reduce-overhead")
    return out


def time_recover(cfg: syn.SynthesisConfig, teacher, info, stats, device) -> dict:
    """us per image-iteration of one synthesize_units call, after a 3-iteration warm-up of the same shapes."""
    units = syn.plan_units(cfg, info)
    images = sum(len(u.slots) for u in units)
    t = timed_run(lambda: syn.synthesize_units(dataclasses.replace(cfg, iterations=3), teacher, stats, info, units,
                                               device, 0),
                  lambda: syn.synthesize_units(cfg, teacher, stats, info, units, device, 0), device)
    return {"images": images, "us_per_image_iteration": 1e6 * t.pop("seconds") / (images * cfg.iterations)} | t


def recover_inputs(cfg: syn.SynthesisConfig, stats, info, device, seed: int = 0):
    """z and the other arguments of `recover_losses` for one iteration of cfg's first pass."""
    g = torch.Generator().manual_seed(seed)
    classes, n = cfg.classes, cfg.ipc
    m = len(classes) * n
    z = torch.randn(m, 3, info.image_size, info.image_size, generator=g).to(device).requires_grad_(True)
    boxes = torch.tensor([[0.1, 0.05, 0.9, 0.85]]).repeat(m, 1)
    drawn = (boxes.to(device), (torch.rand(m, generator=g) < 0.5).to(device),
             torch.randint(-4, 5, (m, 2), generator=g).to(device))
    rows = torch.tensor(classes if cfg.statistics == "class" else [0] * len(classes))
    mean = torch.tensor(info.mean).view(1, -1, 1, 1).to(device)
    std = torch.tensor(info.std).view(1, -1, 1, 1).to(device)
    return z, (drawn, torch.tensor(classes).repeat_interleave(n).to(device), [t[rows].to(device) for t in stats.mean],
               [t[rows].to(device) for t in stats.var], mean, std, cfg)


def recover_step(cfg: syn.SynthesisConfig, teacher, stats, info, device):
    """(CE [G], BN [G], pixel gradient) of one recover step with cfg's compile/layout/precision."""
    z, args = recover_inputs(cfg, stats, info, device)
    flags = [p.requires_grad for p in teacher.parameters()]
    teacher.requires_grad_(False)
    try:
        with RecoverStep(teacher, syn.recover_losses, device, cfg.compile, cfg.channels_last) as step:
            ce, bn = step.losses(z, *args)
            (grad,) = torch.autograd.grad((ce + cfg.bn_weight * bn).sum(), z)
    finally:
        for p, f in zip(teacher.parameters(), flags):
            p.requires_grad_(f)
    return ce.detach(), bn.detach(), grad


def check_recover(cfg: syn.SynthesisConfig, teacher, stats, info, device) -> dict:
    """Compiled vs eager (same precision and layout) on one step: losses and the gradient's direction."""
    eager = recover_step(dataclasses.replace(cfg, compile="off"), teacher, stats, info, device)
    fast = recover_step(cfg, teacher, stats, info, device)
    loss_rel = max(float(((f - e).abs() / e.abs().clamp(min=1e-6)).max()) for f, e in zip(fast[:2], eager[:2]))
    cosine = float(torch.nn.functional.cosine_similarity(fast[2].flatten(), eager[2].flatten(), dim=0))
    tol = 2e-2 if cfg.amp == "bf16" else 1e-3
    return {"what": f"recover step {cfg.compile} vs eager ({cfg.amp})", "loss_max_rel_diff": loss_rel,
            "grad_cosine": cosine, "ok": loss_rel < tol and cosine > 0.99}


def recover_flops(cfg: syn.SynthesisConfig, teacher, stats, info, device) -> float:
    """FLOPs of one image-iteration (forward + backward to the pixels), counted on the eager step."""
    with FlopCounterMode(display=False) as counter:
        recover_step(dataclasses.replace(cfg, compile="off"), teacher, stats, info, device)
    return counter.get_total_flops() / (len(cfg.classes) * cfg.ipc)


# ---------------------------------------------------------------------------------------------
# relabel and student


def relabel_configs(scale: Scale) -> dict[str, RelabelConfig]:
    base = RelabelConfig(batch_size=scale.label_batch, batches_per_forward=scale.per_forward, crop_scale=(0.08, 1.0))
    return {"eager fp32": base, "eager bf16 channels-last": dataclasses.replace(base, amp="bf16", channels_last=True),
            "compiled fp32 channels-last": dataclasses.replace(base, compile="default", channels_last=True),
            "compiled bf16 channels-last": dataclasses.replace(base, amp="bf16", compile="default", channels_last=True)}


def time_relabel(cfg: RelabelConfig, teacher, images, epochs: int, device) -> tuple[dict, list]:
    """views/s of `epochs` label epochs after one warm-up epoch; also the stored columns (for the student)."""
    gen = torch.Generator(device=device).manual_seed(0)
    cols = []
    with torch.no_grad(), teacher_forward(teacher, cfg, device) as forward:
        def run(k: int) -> None:
            for e in range(k):
                draws = draw_epoch(len(images), images.shape[-1], cfg, gen, True)
                cols.append(stored_columns(label_epoch(forward, images, draws, e, cfg.batches_per_forward), cfg,
                                           teacher.head.out_features))
        t = timed_run(lambda: run(1), lambda: run(epochs), device)
    return {"views": epochs * len(images), "views_per_s": epochs * len(images) / t.pop("seconds")} | t, cols


def check_relabel(cfg: RelabelConfig, teacher, images, device) -> dict:
    """Compiled vs eager logits of one forward pass of k x B views (same precision)."""
    views = images[: cfg.batch_size * cfg.batches_per_forward]
    outs = []
    for c in (dataclasses.replace(cfg, compile="off"), cfg):
        with torch.no_grad(), teacher_forward(teacher, c, device) as forward:
            outs.append(forward(views))
    rel = float((outs[1] - outs[0]).abs().max() / outs[0].abs().max().clamp(min=1e-6))
    top1 = float((outs[1].argmax(1) == outs[0].argmax(1)).float().mean())
    tol = 2e-2 if cfg.amp == "bf16" else 1e-3
    return {"what": f"relabel logits compiled vs eager ({cfg.amp})", "max_rel_diff": rel, "top1_agreement": top1,
            "ok": rel < tol}


def student_step(model, cfg: RelabelConfig, device) -> TrainStep:
    opt = make_optimizer("adamw", model.parameters(), 1e-3, 0.01)
    return TrainStep(model, opt, lambda out, t: kd_loss(out, t, 20.0, False), device, cfg.amp, cfg.compile,
                     cfg.channels_last)


def time_student(cfg: RelabelConfig, scale: Scale, info, store, images, device) -> dict:
    """images/s of `scale.student_steps` replayed training steps after 3 warm-up steps."""
    model = build_model(scale.model, info, **scale.model_args).to(device).train()
    with held_channels_last(model, cfg.channels_last):
        step = student_step(model, cfg, device)
        batches = [b % store.num_batches for b in range(scale.student_steps)]

        def run(ids: list[int]) -> None:
            for b in ids:
                step(*replay_batch(store, images, b))
        t = timed_run(lambda: run(batches[:3]), lambda: run(batches), device)
    n = sum(int(store.batch_len[b]) for b in batches)
    return {"images": n, "images_per_s": n / t.pop("seconds")} | t


def check_student(cfg: RelabelConfig, scale: Scale, info, store, images, device) -> dict:
    """Compiled vs eager: the loss and the weight gradients of one step from the same initial weights."""
    start = build_model(scale.model, info, **scale.model_args).to(device).train()
    views, target = replay_batch(store, images, 0)
    results = []
    for c in (dataclasses.replace(cfg, compile="off"), cfg):
        model = copy.deepcopy(start)
        with held_channels_last(model, c.channels_last):
            loss = student_step(model, c, device)(views, target)
            grads = torch.cat([p.grad.flatten().float() for p in model.parameters()])
        results.append((float(loss), grads))
    (le, ge), (lf, gf) = results
    rel = abs(lf - le) / max(abs(le), 1e-6)
    cosine = float(torch.nn.functional.cosine_similarity(gf, ge, dim=0))
    tol = 2e-2 if cfg.amp == "bf16" else 1e-3
    return {"what": f"student step compiled vs eager ({cfg.amp})", "loss_rel_diff": rel, "grad_cosine": cosine,
            "ok": rel < tol and cosine > 0.99}


def forward_flops(model, x: torch.Tensor, backward: bool) -> float:
    """FLOPs per sample of model(x) (and its full backward when `backward`)."""
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.float().sum().backward()
    return counter.get_total_flops() / len(x)


# ---------------------------------------------------------------------------------------------
# the table


def guarded(row: dict, fn: Callable[[], dict]) -> dict:
    """The row with fn()'s numbers, or with the error that stopped it (reported, and the exit status is 1)."""
    try:
        return row | fn()
    except Exception as exc:  # noqa: BLE001 - not hidden: printed in the table, kept in the JSON, exit status 1;
        # one row's failure (a compiler error, out of memory) must not cost the other rows of a scarce GPU run
        return row | {"error": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def recover_section(scale: Scale, args, device, peak: float | None) -> tuple[list[dict], list[dict]]:
    teacher, info, glob, cls = random_teacher(scale, device)
    cfgs = recover_configs(scale, args.iterations or scale.iterations, args.group or scale.group, args.cudagraphs)
    stats_of = {name: glob if c.statistics == "global" else cls for name, c in cfgs.items()}
    checks = [guarded({"what": f"recover {name}"}, lambda c=c, s=stats_of[name]: check_recover(c, teacher, s, info,
                                                                                              device))
              for name, c in cfgs.items() if c.compile != "off"]
    flops = recover_flops(next(iter(cfgs.values())), teacher, cls, info, device)
    rows = [guarded({"section": "recover", "row": name, "amp": c.amp, "compile": c.compile},
                    lambda c=c, s=stats_of[name]: time_recover(c, teacher, info, s, device)) for name, c in cfgs.items()]
    loop, sre2l = rows[0].get("us_per_image_iteration"), rows[1].get("us_per_image_iteration")
    for r in rows:
        us = r.get("us_per_image_iteration")
        if us:
            r |= {"vs_loop": loop / us if loop else None, "vs_sre2l": sre2l / us if sre2l else None,
                  "flops_per_item": flops, "bf16_peak_fraction": flops / (us * 1e-6) / peak if peak else None,
                  "imagenet_ipc10_4000_it_min": 10_000 * 4000 * us * 1e-6 / 60 if device.type == "cuda" else None}
    return rows, checks


def labels_section(scale: Scale, args, device, peak: float | None) -> tuple[list[dict], list[dict]]:
    teacher, info, _, _ = random_teacher(scale, device)
    g = torch.Generator().manual_seed(1)
    images = torch.rand(scale.label_images, 3, scale.image_size, scale.image_size, generator=g).to(device)
    cfgs = relabel_configs(scale)
    checks = [guarded({"what": f"relabel {name}"}, lambda c=c: check_relabel(c, teacher, images, device))
              for name, c in cfgs.items() if c.compile != "off"]
    x = images[: scale.label_batch]
    with torch.no_grad():
        label_flops = forward_flops(teacher, x, backward=False)
    rows, stored = [], None
    for name, c in cfgs.items():
        kept = {}

        def run(c=c, kept=kept):
            out, kept["cols"] = time_relabel(c, teacher, images, scale.label_epochs, device)
            return out
        rows.append(guarded({"section": "relabel", "row": name, "amp": c.amp, "compile": c.compile}, run))
        stored = stored or kept.get("cols")
    if stored is None:
        return rows, checks
    store = assemble_store(stored, dataclasses.replace(cfgs["eager fp32"], epochs=len(stored)), "random",
                           len(images), scale.classes, scale.image_size)
    checks += [guarded({"what": f"student {name}"}, lambda c=c: check_student(c, scale, info, store, images, device))
               for name, c in cfgs.items() if c.compile != "off"]
    student = build_model(scale.model, info, **scale.model_args).to(device).train()
    train_flops = forward_flops(student, x, backward=True)
    for name, c in cfgs.items():
        rows.append(guarded({"section": "student", "row": name, "amp": c.amp, "compile": c.compile},
                            lambda c=c: time_student(c, scale, info, store, images, device)))
    for r in rows:
        rate = r.get("views_per_s") or r.get("images_per_s")
        flops = label_flops if r["section"] == "relabel" else train_flops
        if rate:
            r |= {"flops_per_item": flops, "bf16_peak_fraction": rate * flops / peak if peak else None}
    return rows, checks


TARGETS = (("recover", "us_per_image_iteration", min, 40.0, "us per image-iteration <="),
           ("recover", "vs_loop", max, 50.0, "x the per-class loop >="),
           ("recover", "vs_sre2l", max, 6.0, "x the SRe2L batch >="),
           ("recover", "imagenet_ipc10_4000_it_min", min, 30.0, "min for ImageNet-1K IPC 10 x 4,000 iterations <="),
           ("relabel", "views_per_s", max, 30_000.0, "views/s >="),
           ("student", "images_per_s", max, 15_000.0, "images/s >="))


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets against the best row of each section (CUDA only)."""
    out = []
    for section, key, best, bound, text in TARGETS:
        candidates = [r for r in rows if r["section"] == section and r.get(key) is not None]
        if not candidates:
            continue
        r = best(candidates, key=lambda r: r[key])
        met = r[key] <= bound if best is min else r[key] >= bound
        out.append({"target": f"{section}: {text} {bound:g}", "best_row": r["row"], "value": r[key], "met": met})
    return out


def bf16_peak(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override * 1e12, f"{override} TFLOP/s (--peak-tflops)"
    if device.type != "cuda":
        return None, "no GPU"
    name = torch.cuda.get_device_name(device)
    for key, tflops in BF16_PEAK_TFLOPS:
        if key in name:
            return tflops * 1e12, f"{tflops} TFLOP/s dense bf16 ({key} data sheet)"
    return None, f"unknown for {name}: pass --peak-tflops"


def print_table(result: dict) -> None:
    print(f"device: {result['device']}; torch {result['torch']}; bf16 peak: {result['peak']}")
    if result["smoke"]:
        print("CUDA is not available: a CPU smoke run of every row at toy sizes; its numbers mean nothing")
    for c in result["checks"]:
        detail = ", ".join(f"{k} {v:.3g}" for k, v in c.items() if isinstance(v, float))
        print(f"check  {'ok  ' if c.get('ok') else 'FAIL'}  {c['what']}: {detail or c.get('error')}")
    print(f"\n{'section':8s} {'row':48s} {'rate':>12s} {'unit':>13s} {'vs loop':>8s} {'vs sre2l':>8s} "
          f"{'peak frac':>9s} {'warm-up s':>9s} {'GiB':>6s}")
    for r in result["rows"]:
        if "error" in r:
            print(f"{r['section']:8s} {r['row']:48s} ERROR {r['error']}")
            continue
        rate, unit = next((r[k], u) for k, u in (("us_per_image_iteration", "us/img-it"), ("views_per_s", "views/s"),
                                                 ("images_per_s", "images/s")) if k in r)
        cells = [f"{r[k]:8.2f}" if r.get(k) is not None else f"{'-':>8s}" for k in ("vs_loop", "vs_sre2l")]
        frac = f"{r['bf16_peak_fraction']:9.3f}" if r.get("bf16_peak_fraction") is not None else f"{'-':>9s}"
        gib = f"{r['peak_gib']:6.1f}" if r.get("peak_gib") is not None else f"{'-':>6s}"
        late = f"  ({r['compiled_while_timed']} graphs compiled while timed)" if r["compiled_while_timed"] else ""
        print(f"{r['section']:8s} {r['row']:48s} {rate:12.1f} {unit:>13s} {cells[0]} {cells[1]} {frac} "
              f"{r['warmup_s']:9.1f} {gib}{late}")
    for t in result["targets"]:
        print(f"target {'met    ' if t['met'] else 'NOT met'}  {t['target']}: {t['value']:.4g} ({t['best_row']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=None, help="timed recover iterations (default 20; CPU 2)")
    parser.add_argument("--group", type=int, default=None, help="classes per grouped pass G (default 80; CPU 5)")
    parser.add_argument("--cudagraphs", action="store_true", help="add compile=reduce-overhead recover rows (CUDA)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the GPU, TFLOP/s")
    parser.add_argument("--out", type=Path, default=None,
                        help="default bench/results/gpu.json (CUDA) or bench/results/gpu_cpu_smoke.json")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device, scale = (torch.device("cuda"), CUDA) if cuda else (torch.device("cpu"), CPU)
    if args.cudagraphs and not cuda:
        parser.error("--cudagraphs needs CUDA")
    args.out = args.out or ROOT / "bench" / "results" / ("gpu.json" if cuda else "gpu_cpu_smoke.json")
    peak, peak_note = bf16_peak(device, args.peak_tflops)
    start = time.perf_counter()
    rec_rows, rec_checks = recover_section(scale, args, device, peak)
    lab_rows, lab_checks = labels_section(scale, args, device, peak)
    result = {"device": torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.processor() or 'unknown'})",
              "torch": torch.__version__, "cuda": torch.version.cuda, "smoke": not cuda, "peak": peak_note,
              "scale": dataclasses.asdict(scale), "checks": rec_checks + lab_checks, "rows": rec_rows + lab_rows,
              "targets": targets(rec_rows + lab_rows) if cuda else [], "wall_s": time.perf_counter() - start}
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_s']:.0f} s)")
    failed = [c for c in result["checks"] if not c.get("ok")] + \
        [r for r in result["rows"] if "error" in r or r.get("compiled_while_timed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
