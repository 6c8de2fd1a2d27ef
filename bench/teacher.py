"""Teacher training throughput (images/s) per dataset, model and device.

    .venv/bin/python bench/teacher.py [--steps 30] [--threads 2]

Times `steps` optimisation steps (forward, backward, SGD, on-device augmentation) after 3 warm-up
steps, for each (dataset, model, width) row, on CPU and, when present, CUDA (fp32 and bf16).
Prints a table and writes bench/results/teacher.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from distill_core.data import load_dataset
from distill_core.device import autocast, make_generator
from distill_core.models import ModelSpec
from distill_core.teacher import augment_batch, make_optimizer

ROWS = [  # dataset, model, model args, batch size
    ("digits", "convnet", {"width": 64, "depth": 3}, 128),
    ("digits", "convnet", {"width": 32, "depth": 3}, 128),
    ("fashion-mnist", "convnet", {"width": 64, "depth": 3}, 128),
    ("fashion-mnist", "convnet", {"width": 32, "depth": 3}, 128),
    ("fashion-mnist", "resnet18", {}, 128),
]


def images_per_second(dataset, model_name, args, batch, device, amp, steps) -> float:
    spec = ModelSpec(model_name, dataset.info, args)
    model = spec.build(seed=0).to(device).train()
    opt = make_optimizer("sgd", model.parameters(), 0.05, 5e-4)
    gen = make_generator(0, device)
    x_all = dataset.train.float_images(device)[: batch * 8]
    y_all = dataset.train.labels.to(device)[: batch * 8]

    def step(i: int) -> None:
        idx = torch.arange(i * batch, (i + 1) * batch, device=device) % len(y_all)
        x = augment_batch(x_all[idx], dataset.info, gen)
        with autocast(device, amp):
            loss = F.cross_entropy(model(x).float(), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per row (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "teacher.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [(torch.device("cpu"), "off")]
    if torch.cuda.is_available():
        devices += [(torch.device("cuda"), "off"), (torch.device("cuda"), "bf16")]
    results = []
    print(f"{'dataset':14s} {'model':10s} {'args':22s} {'device':6s} {'amp':5s} {'img/s':>10s}")
    for name, model_name, margs, batch in ROWS:
        try:
            dataset = load_dataset(name)
        except ValueError as exc:
            print(f"{name:14s} skipped: {exc}")
            continue
        for device, amp in devices:
            ips = images_per_second(dataset, model_name, margs, batch, device, amp, args.steps)
            results.append({"dataset": name, "model": model_name, "args": margs, "batch": batch,
                            "device": str(device), "amp": amp, "images_per_s": round(ips, 1)})
            print(f"{name:14s} {model_name:10s} {json.dumps(margs):22s} {device.type:6s} {amp:5s} {ips:10.1f}")
    if not torch.cuda.is_available():
        print("CUDA: not available on this machine")
    meta = {"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "steps": args.steps}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
