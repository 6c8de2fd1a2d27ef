"""Time of each analysis for 100, 1,000 and 10,000 images, and UMAP's first (numba-compiling) call.

    .venv/bin/python bench/analysis.py [--data fashion-mnist:/dir] [--feature-model runs/T]
                                       [--sizes 100 1000 10000] [--threads 2]

The analysed set is N Fashion-MNIST training images (N per row); the real reference is 500 real
images per class (5,000, the `analyse` default) for features, Fréchet and k-NN measures, and the
whole 60,000-image training set for the pixel nearest-image search. Features come from
--feature-model (a teacher run) or, without one, an untrained ConvNet-BN width 64 depth 3 (the same
compute). A warm-up pass at 100 images runs before the timed rows. UMAP of 5,000 points is timed first in the process
(numba JIT compile; numba's on-disk
cache may shorten it after an earlier run) and then twice more. Embedding fits use 1 OpenMP thread
(see embeddings.fit_2d). Prints a table and writes bench/results/analysis.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from distill_core.analysis import diversity, embeddings, similarity
from distill_core.analysis.features import extract_features, load_feature_model, wrap_model
from distill_core.analysis.run import real_subset
from distill_core.data import load_dataset
from distill_core.models import ModelSpec

RESULTS = Path(__file__).resolve().parent / "results" / "analysis.json"


def timed(fn: Callable[[], object]) -> tuple[dict, object]:
    """Run fn; return ({"seconds": wall, "cpu_seconds": this process's CPU time}, its output).

    With one thread, CPU seconds are what the wall time would be on an idle core: on a CPU shared
    with other jobs they are the comparable number."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}, out


def umap_calls(feats: torch.Tensor, repeats: int = 2) -> list[dict]:
    """Times of the first UMAP fit in this process and of `repeats` later ones (5,000 points)."""
    x = feats[:5000].numpy()
    return [timed(lambda: embeddings.fit_2d(x, "umap", seed=0, params={}, threads=1))[0] for _ in range(1 + repeats)]


def rows_for_size(n: int, fm, x_all, y_all, real_feats, real_labels, tsne_max: int) -> list[dict]:
    x, y = x_all[:n], y_all[:n]
    rows = []

    def add(name: str, fn: Callable[[], object]) -> object:
        sec, out = timed(fn)
        rows.append({"analysis": name, "n": n, **sec})
        return out

    feats = add("features (ConvNet-BN w64, penultimate)", lambda: extract_features(fm, x))
    add("within/between-class similarity, features", lambda: similarity.class_similarity(feats, y))
    add("within/between-class similarity, pixels", lambda: similarity.class_similarity(x, y))
    add("Fréchet distance overall (vs 5,000 real)", lambda: diversity.frechet_distance(feats, real_feats))
    add("PRDC overall, k=5 (vs 5,000 real)", lambda: diversity.prdc(real_feats, feats, 5))
    add("diversity per class + overall (FD + PRDC)", lambda: diversity.diversity(feats, y, real_feats, real_labels, 5))
    add("nearest real image, pixels (vs 60,000)", lambda: diversity.nearest_real(x, x_all))
    for method in ("pca", "tsne", "umap"):
        if method == "tsne" and n > tsne_max:
            rows.append({"analysis": "embedding tsne", "n": n, "seconds": None, "cpu_seconds": None,
                         "note": f"skipped above {tsne_max}"})
            continue
        add(f"embedding {method}", lambda: embeddings.fit_2d(feats.numpy(), method, 0, {}, threads=1))
    add("thumbnails (PNG data URIs)", lambda: [embeddings.thumbnail_uri(img) for img in x])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist", help="dataset spec with >= 10,000 training images")
    parser.add_argument("--feature-model", default="", help="teacher run folder; default an untrained ConvNet-BN")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--tsne-max", type=int, default=10000, help="skip t-SNE above this many points")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    if args.feature_model:
        fm = load_feature_model(args.feature_model)
    else:
        spec = ModelSpec("convnet", data.info, {"width": 64, "depth": 3})
        fm = wrap_model(spec.build().eval(), spec, "untrained convnet w64")
    x_all, y_all = data.train.float_images(), data.train.labels
    perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
    sub, _ = real_subset(data.train, 500, seed=0)
    real_feats = extract_features(fm, sub.float_images())
    umap_first = umap_calls(extract_features(fm, x_all[perm[:5000]]))
    rows_for_size(100, fm, x_all[perm], y_all[perm], real_feats, sub.labels, 100)  # warm-up (lazy library loads)
    report = {
        "device": "cpu", "cuda": "not available" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "threads": args.threads, "host": platform.node(), "load_average_start": os.getloadavg(),
        "data": data.info.name, "feature_model": fm.source,
        "umap_5000": {"first_call": umap_first[0], "later_calls": umap_first[1:]}, "rows": [],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:  # results are written after each size, so a cut-off run keeps the finished ones
        report["rows"] += rows_for_size(n, fm, x_all[perm], y_all[perm], real_feats, sub.labels, args.tsne_max)
        report["load_average_end"] = os.getloadavg()
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report, args.sizes)


def print_table(report: dict, sizes: list[int]) -> None:
    """Markdown table: CPU seconds (wall seconds) per analysis and size."""
    names = list(dict.fromkeys(r["analysis"] for r in report["rows"]))
    rows = {(r["analysis"], r["n"]): r for r in report["rows"]}

    def cell(r: dict | None) -> str:
        if r is None or r["seconds"] is None:
            return "skipped"
        return f"{r['cpu_seconds']:.3f} ({r['seconds']:.2f})"

    print(f"| analysis: CPU s (wall s), {report['threads']} thread | " + " | ".join(f"{n:,} images" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name in names:
        print(f"| {name} | " + " | ".join(cell(rows.get((name, n))) for n in sizes) + " |")
    print("| CUDA | " + " | ".join("not available" for _ in sizes) + " |")
    u = report["umap_5000"]
    first = u["first_call"]
    print(f"\nUMAP 5,000 points: first call {first['cpu_seconds']:.1f} CPU s ({first['seconds']:.1f} wall), "
          "later calls " + ", ".join(f"{c['cpu_seconds']:.1f} CPU s ({c['seconds']:.1f} wall)" for c in u["later_calls"]))


if __name__ == "__main__":
    main()
