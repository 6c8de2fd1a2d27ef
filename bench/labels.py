"""Soft-label throughput and storage: on-device batched replay vs a per-sample torchvision pipeline.

Measures, on one machine in one run (ratios are what matter on a shared CPU):
  - augmentation only: views/s of random-resized crop + flip + CutMix,
  - relabel: views/s including the teacher forward pass,
  - student: images/s of a training step (views + forward + backward + AdamW) fed by replay,
and prints label bytes per configuration (storage_estimate). CUDA rows are measured when a GPU is
visible, otherwise printed as "CUDA: not available". Writes bench/results/labels.json.

    .venv/bin/python bench/labels.py [--views 2000] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import functional as TF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core import augment  # noqa: E402
from distill_core.data import load_dataset  # noqa: E402
from distill_core.labels.relabel import storage_estimate  # noqa: E402
from distill_core.models import build_model  # noqa: E402

SCALE = (0.25, 1.0)


def ondevice_views(images: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """One batch of views the library's way: parameters sampled for the batch, one grid_sample."""
    idx = torch.randint(0, len(images), (batch,), generator=g, device=g.device)
    boxes = augment.sample_resized_crops(batch, SCALE, generator=g)
    flips = augment.sample_flips(batch, 0.5, g)
    mix = augment.sample_mix("cutmix", batch, images.shape[-1], 1.0, g)
    return augment.apply_views(images[idx], boxes, flips, mix)


def per_sample_views(images: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """The same augmentation per sample with torchvision (crop+resize, flip), then CutMix on the batch."""
    size = images.shape[-1]
    crop = RandomResizedCrop(size, scale=SCALE, antialias=True)
    out = []
    for i in torch.randint(0, len(images), (batch,), generator=g).tolist():
        top, left, h, w = crop.get_params(images[i], crop.scale, crop.ratio)
        view = TF.resized_crop(images[i], top, left, h, w, [size, size], antialias=True)
        if torch.rand(1, generator=g) < 0.5:
            view = TF.hflip(view)
        out.append(view)
    views = torch.stack(out).to(images.device)
    return augment.apply_mix(views, augment.sample_mix("cutmix", batch, size, 1.0, torch.Generator().manual_seed(0)))


def timed(fn, n_views: int, batch: int) -> float:
    """Views (or images) per second of `fn()` producing `batch` items, over n_views items."""
    fn()  # warm-up
    steps = max(1, n_views // batch)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def measure(device: torch.device, n_views: int, batch: int) -> list[dict]:
    data = load_dataset("fashion-mnist:/work/shared/data/fashion-mnist")
    images = data.train.float_images()[:1000]
    dev_images = images.to(device)
    g_dev, g_cpu = torch.Generator(device=device).manual_seed(0), torch.Generator().manual_seed(0)
    teacher = build_model("convnet", data.info, width=64, depth=3).to(device).eval()
    student = build_model("convnet", data.info, width=32, depth=3).to(device).train()
    opt = torch.optim.AdamW(student.parameters(), 1e-3)

    def relabel_step(make):
        with torch.no_grad():
            teacher(make())

    def student_step(make):
        views = make()
        with torch.no_grad():
            target = torch.randn(len(views), 10, device=device)
        loss = F.kl_div(F.log_softmax(student(views), 1), F.softmax(target, 1), reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()

    ours = lambda: ondevice_views(dev_images, batch, g_dev)  # noqa: E731
    theirs = lambda: per_sample_views(images, batch, g_cpu).to(device)  # noqa: E731
    rows = []
    for what, run in (("augment views/s", lambda m: m()), ("relabel views/s", relabel_step),
                      ("student images/s", student_step)):
        a = timed(lambda: run(ours), n_views, batch)
        b = timed(lambda: run(theirs), n_views, batch)
        rows.append({"device": device.type, "measure": what, "on_device_replay": a, "per_sample_torchvision": b,
                     "ratio": a / b, "batch": batch, "views": n_views})
    return rows


def storage_rows() -> list[dict]:
    """Label bytes per configuration: Fashion-MNIST sweep settings and the paper's ImageNet-1K ones."""
    configs = [("Fashion-MNIST IPC10 (E 30, B 20)", 100, 10, 30, 20), ("Fashion-MNIST IPC50 (E 10, B 50)", 500, 10, 10, 50),
               ("ImageNet-1K IPC10 (E 300, B 128)", 10_000, 1000, 300, 128),
               ("ImageNet-1K IPC200 (E 300, B 128)", 200_000, 1000, 300, 128)]
    rows = []
    for name, n, c, e, b in configs:
        for factor in (1, 10, 40):
            for value_bytes, topk in ((2, 0), (4, 0), (2, 5)):
                est = storage_estimate(n, c, e, b, 1 - 1 / factor, value_bytes, topk)
                rows.append({"config": name, "compression": factor, "values": f"fp{8 * value_bytes}",
                             "topk": topk, "bytes": est["bytes"], "kept_batches": est["kept_batches"],
                             "paper_formula_bytes": est["paper_formula_bytes"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=2000, help="views timed per measurement")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = measure(torch.device("cpu"), args.views, args.batch)
    if torch.cuda.is_available():
        rows += measure(torch.device("cuda"), 20 * args.views, 4 * args.batch)
    else:
        rows.append({"device": "cuda", "measure": "CUDA: not available"})
    print(f"{'device':6s} {'measure':18s} {'on-device replay':>17s} {'per-sample tv':>14s} {'ratio':>6s}")
    for r in rows:
        if "ratio" in r:
            print(f"{r['device']:6s} {r['measure']:18s} {r['on_device_replay']:17.0f} "
                  f"{r['per_sample_torchvision']:14.0f} {r['ratio']:6.1f}")
        else:
            print(f"{r['device']:6s} {r['measure']}")
    storage = storage_rows()
    print(f"\n{'configuration':36s} {'x':>4s} {'values':>6s} {'topk':>4s} {'label bytes':>16s}")
    for s in storage:
        print(f"{s['config']:36s} {s['compression']:4d} {s['values']:>6s} {s['topk']:4d} {s['bytes']:16,d}")
    out = ROOT / "bench/results/labels.json"
    out.write_text(json.dumps({"threads": args.threads, "throughput": rows, "storage": storage}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
