"""Seconds to embed N points in 2-D with t-SNE and UMAP at the settings the app uses (and t-SNE at
scikit-learn's defaults, UMAP finding its neighbours itself as the app's did before), with 1 and 2
threads, in a fresh process (cold) and in a process that has fitted once already (warm).

    .venv/bin/python bench/embedding_speed.py [--points 2000] [--dims 128] [--threads 1 2]

The points are digits features: the penultimate ConvNet-BN features of the quick start's teacher are
what the app embeds; here, to need no run folder, they are a fixed random projection (seed 0) of the
1,797 digits images to --dims dimensions plus noise, repeated to --points rows (t-SNE's and UMAP's cost
depends on N and D, not on what the numbers mean).

cold: a new Python process, as the app's embedding job is: "wall" is from starting the process to the
end of the fit (interpreter, imports, UMAP's numba kernels read from the cache `dev.py setup` warmed,
the fit), "proc cpu" that process's CPU seconds; "fit" is the fit alone (for UMAP, its import too);
"compiled" counts the app's UMAP kernels numba had to compile instead of loading (0 once the cache is
warm). warm: this process, after one untimed fit, with the picture's trustworthiness at 15 neighbours.
On a shared CPU the wall time includes waiting for a core; the CPU seconds do not.
Prints a table and writes bench/results/embedding_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
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


def umap_own_neighbours(x: np.ndarray, threads: int) -> np.ndarray:
    """The app's UMAP before it gave umap-learn exact neighbours: the same epochs, seed and thread, umap-learn
    finding the neighbours itself (below 4,096 points: its distance function called from Python per pair)."""
    import umap
    from threadpoolctl import threadpool_limits

    embeddings.umap_kernels()  # the same cached kernels, so only the neighbour search differs
    with threadpool_limits(limits=threads):
        return umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=0,
                         n_epochs=embeddings.FAST_UMAP_EPOCHS, n_jobs=1).fit_transform(x)


def fit(x: np.ndarray, method: str, params: dict, threads: int) -> np.ndarray:
    if method == "umap" and params.get("neighbours") == "umap-learn":
        return umap_own_neighbours(x, threads)
    return embeddings.fit_2d(x, method, 0, params, threads)


def timed(fn) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"fit_s": round(time.perf_counter() - start, 2), "cpu_s": round(time.process_time() - cpu, 2)}


def compiled_kernels() -> int | None:
    """UMAP kernels numba compiled in this process instead of loading them (None before any UMAP fit)."""
    if "umap" not in sys.modules:
        return None
    return sum(sum(k.stats.cache_misses.values()) for k in embeddings.umap_kernels().values())


def child(method: str, params: dict, n: int, dims: int, threads: int) -> None:
    """The cold measurement's process: one fit, its timings as a JSON line."""
    x = points(n, dims)
    row = timed(lambda: fit(x, method, params, threads))
    print(json.dumps({**row, "compiled": compiled_kernels()}))


def cold(method: str, params: dict, n: int, dims: int, threads: int) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import embedding_speed as b; "
            f"b.child({method!r}, {params!r}, {n}, {dims}, {threads})")
    start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime
    return {"wall_s": round(time.perf_counter() - start, 2), "process_cpu_s": round(cpu, 2),
            **json.loads(out.strip().splitlines()[-1]), "trustworthiness": None}


def warm(x: np.ndarray, method: str, params: dict, threads: int) -> dict:
    """A second fit in this process, and how faithful its picture is: trustworthiness at 15 neighbours
    (1 = every point's nearest neighbours in 2-D are among its nearest in the features)."""
    from sklearn.manifold import trustworthiness

    fit(x, method, params, threads)
    out = {}
    row = timed(lambda: out.update(xy=fit(x, method, params, threads)))
    return {"wall_s": row["fit_s"], "process_cpu_s": None, **row, "compiled": None,
            "trustworthiness": round(float(trustworthiness(x, out["xy"], n_neighbors=15)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-defaults", action="store_true", help="only the app's settings")
    args = parser.parse_args()
    x = points(args.points, args.dims)
    cases = [("tsne", "app", {}), ("umap", "app", {})]
    if not args.skip_defaults:
        cases.insert(1, ("tsne", "sklearn defaults", {"fast": False}))
        cases.append(("umap", "umap-learn neighbours", {"neighbours": "umap-learn"}))
    rows, load = [], [os.getloadavg()[0]]
    for threads in args.threads:
        for method, setting, params in cases:
            for process in ("cold", "warm"):
                if process == "cold" and setting == "sklearn defaults":
                    continue
                got = cold(method, params, len(x), args.dims, threads) if process == "cold" else \
                    warm(x, method, params, threads)
                rows.append({"method": method, "setting": setting, "threads": threads, "process": process,
                             "n": len(x), **got})
                print(rows[-1], flush=True)
    load.append(os.getloadavg()[0])
    meta = {"points": len(x), "dims": args.dims, "host": platform.node(), "cpus": os.cpu_count(),
            "load_1min": [round(v, 2) for v in load], "command": "bench/embedding_speed.py " + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items()
                if not isinstance(v, bool)), "fast_tsne": embeddings.FAST_TSNE, "umap_epochs": embeddings.FAST_UMAP_EPOCHS}
    print(f"load average {meta['load_1min'][0]} before, {meta['load_1min'][1]} after")
    print(f"{'method':<7} {'setting':<22} {'threads':>7} {'process':>7} {'n':>6} {'wall s':>7} {'proc cpu s':>10} "
          f"{'fit s':>6} {'fit cpu s':>9} {'compiled':>8} {'trust':>6}")
    for r in rows:
        blank = {k: "" if v is None else v for k, v in r.items()}
        print(f"{r['method']:<7} {r['setting']:<22} {r['threads']:>7} {r['process']:>7} {r['n']:>6} {r['wall_s']:>7} "
              f"{blank['process_cpu_s']:>10} {r['fit_s']:>6} {r['cpu_s']:>9} {blank['compiled']:>8} "
              f"{blank['trustworthiness']:>6}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
