"""Seconds to embed N points in 2-D with t-SNE and UMAP, at the settings the app uses and at the libraries'
defaults, with 1 and 2 threads.

    .venv/bin/python bench/embedding_speed.py [--points 2000] [--dims 128] [--threads 1 2]

The points are digits features: the penultimate ConvNet-BN features of the quick start's teacher are
what the app embeds; here, to need no run folder, they are a fixed random projection (seed 0) of the
1,797 digits images to --dims dimensions plus noise, repeated to --points rows (t-SNE's and UMAP's cost
depends on N and D, not on what the numbers mean). UMAP's first fit in a process compiles numba
kernels; it is timed separately (`umap first`), then the fit is timed again. Each row reports wall
seconds and this process's CPU seconds (on a shared CPU the wall time includes waiting). Prints a
table and writes bench/results/embedding_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from distill_core.analysis import embeddings

RESULTS = Path(__file__).resolve().parent / "results" / "embedding_speed.json"


def points(n: int, dims: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0
    rng = np.random.default_rng(0)
    proj = rng.standard_normal((x.shape[1], dims)).astype(np.float32)
    reps = -(-n // len(x))
    base = np.concatenate([x] * reps)[:n] @ proj
    return (base + 0.05 * rng.standard_normal(base.shape)).astype(np.float32)


def timed(fn) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"seconds": round(time.perf_counter() - start, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-defaults", action="store_true", help="only the app's settings")
    args = parser.parse_args()
    x = points(args.points, args.dims)
    rows = []
    cases = [("tsne", "app", {}), ("umap", "app", {})]
    if not args.skip_defaults:
        cases.insert(1, ("tsne", "sklearn defaults", {"fast": False}))
    for threads in args.threads:
        for method, setting, params in cases:
            if method == "umap" and not any(r["method"] == "umap first" for r in rows):
                rows.append({"method": "umap first", "setting": setting, "threads": threads, "n": len(x),
                             **timed(lambda: embeddings.fit_2d(x, "umap", 0, params, threads))})
            rows.append({"method": method, "setting": setting, "threads": threads, "n": len(x),
                         **timed(lambda: embeddings.fit_2d(x, method, 0, params, threads))})
            print(rows[-1], flush=True)
    meta = {"points": len(x), "dims": args.dims, "host": platform.node(), "cpus": os.cpu_count(),
            "load_1min": os.getloadavg()[0], "command": "bench/embedding_speed.py " + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items()
                if not isinstance(v, bool)), "fast_tsne": embeddings.FAST_TSNE}
    print(f"{'method':<11} {'setting':<17} {'threads':>7} {'n':>6} {'wall s':>7} {'cpu s':>7}")
    for r in rows:
        print(f"{r['method']:<11} {r['setting']:<17} {r['threads']:>7} {r['n']:>6} {r['seconds']:>7} {r['cpu_seconds']:>7}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
