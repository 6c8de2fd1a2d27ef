"""Memory of the unrolled bilevel step against the number of inner steps T.

Back-propagating through T unrolled SGD steps keeps every step's activations and parameters: the
autograd graph grows linearly in T. Measured for one outer step (forward through T inner steps on
M synthetic images + the outer loss on a real batch, then backward) of LeNet without BN on
Fashion-MNIST-shaped inputs (random tensors: the shapes, not the values, set the memory):
  saved_mb    bytes autograd saved for backward (unique storages, via saved_tensors_hooks), MiB
  cuda_peak_mb  torch.cuda.max_memory_allocated of the step (CUDA only)
  step_s      wall time of the step
Writes bench/results/bilevel_memory.json.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bilevel_memory.py [--steps 1 2 4 8 16 32] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core.data import DatasetInfo  # noqa: E402
from distill_core.device import resolve_device  # noqa: E402
from distill_core.models import build_model  # noqa: E402
from distill_core.synthesis.bilevel import init_params, outer_loss, raw_from_step_size, step_sizes, unroll  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bilevel_memory.json"


def one_step(model, buffers, theta0, x, labels, raw, real_x, real_y) -> tuple[float, float]:
    """(MiB saved for backward, seconds) of one outer forward + backward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        theta = unroll(model, theta0, buffers, x, labels, step_sizes(raw))
        loss = outer_loss(model, theta, buffers, real_x, real_y)
    loss.backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return sum(seen.values()) / 2**20, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    info = DatasetInfo("fashion-mnist-shape", 10, 1, 28, (0.286,), (0.353,), tuple(str(i) for i in range(10)))
    model = build_model("lenet_nobn", info).to(device)
    buffers = {k: v.to(device) for k, v in model.named_buffers()}
    g = torch.Generator().manual_seed(0)
    theta0 = {k: v.to(device) for k, v in init_params(model, g).items()}
    real_x = torch.rand((args.batch, 1, 28, 28), generator=g).to(device)
    real_y = torch.randint(10, (args.batch,), generator=g).to(device)
    rows = []
    for t in args.steps:
        x = torch.rand((args.samples, 1, 28, 28), generator=g).to(device).requires_grad_(True)
        labels = torch.eye(10)[torch.arange(args.samples) % 10].to(device).requires_grad_(True)
        raw = raw_from_step_size(0.1, t).to(device).requires_grad_(True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        saved, secs = one_step(model, buffers, theta0, x, labels, raw, real_x, real_y)
        row = {"inner_steps": t, "saved_mb": round(saved, 2), "step_s": round(secs, 4)}
        if device.type == "cuda":
            row["cuda_peak_mb"] = round((torch.cuda.max_memory_allocated(device) - base) / 2**20, 2)
        rows.append(row)
        print(row, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"device": str(device), "model": "lenet_nobn", "input": [1, 28, 28],
                                   "samples": args.samples, "outer_batch": args.batch, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
