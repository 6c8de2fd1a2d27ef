"""Fashion-MNIST label size vs accuracy (shrunken CPU protocol; resumable, run it under nohup).

Prepares the image sources (SRe2L cross-class and LPLD class-wise synthesis, random real images)
at IPC 10 and 50 from the Fashion-MNIST ConvNet-BN teacher, then runs one sweep per IPC
(`bench/sweep_fashion_ipc{10,50}.yaml`) into runs/fmnist-sweep-ipc{10,50}. Every finished stage and
cell is kept when the script is started again. Writes bench/results/sweep_fashion.json (summaries).

    nohup .venv/bin/python bench/sweep_fashion.py --ipc 10 > runs/sweep_fashion10.log 2>&1 &
    nohup .venv/bin/python bench/sweep_fashion.py --ipc 50 > runs/sweep_fashion50.log 2>&1 &
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core.config import resolve_config  # noqa: E402
from distill_core.labels.realimages import RealImagesConfig, run_realimages  # noqa: E402
from distill_core.labels.sweep import SweepConfig, run_sweep, summarise  # noqa: E402
from distill_core.runs import read_json, read_status, write_json_atomic  # noqa: E402
from distill_core.synthesis.run import run_synthesize  # noqa: E402
from distill_core.synthesis.synthesize import SynthesisConfig  # noqa: E402

DATASET = "fashion-mnist:/work/shared/data/fashion-mnist"
TEACHER = ROOT / "runs/fmnist-convnet-teacher"
TEACHER_EPOCH = 6  # the teacher run was still training when the sweep started; epoch 6 of 12: 89.9% test
ITERATIONS = {10: 200, 50: 100}  # synthesis steps per image (300 is the default; shrunk for the CPU)


def run_once(job, cfg, run_dir: Path) -> None:
    """Run a stage unless it already finished; resume a half-done one."""
    state = read_status(run_dir).get("state")
    if state == "done":
        return
    job(cfg, run_dir, resume=False, overwrite=True)


def prepare_sources(ipc: int) -> dict[str, str]:
    sources = {}
    for preset in ("sre2l", "lpld"):
        out = ROOT / f"runs/fmnist-{preset}-ipc{ipc}"
        cfg = SynthesisConfig(teacher=str(TEACHER), dataset=DATASET, preset=preset, ipc=ipc, teacher_epoch=TEACHER_EPOCH,
                              iterations=ITERATIONS[ipc], seed=0, device="cpu")
        t = time.time()
        run_once(run_synthesize, cfg, out)
        print(f"{preset} ipc {ipc}: {time.time() - t:.0f} s", flush=True)
        sources[preset] = str(out)
    out = ROOT / f"runs/fmnist-random_real-ipc{ipc}"
    run_once(run_realimages, RealImagesConfig(dataset=DATASET, ipc=ipc, seed=0), out)
    sources["random_real"] = str(out)
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ipc", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--table", action="store_true", help="only print the markdown tables of the results so far")
    args = parser.parse_args()
    if args.table:
        for ipc in args.ipc:
            print(f"IPC {ipc}\n{table(ipc)}\n")
        return
    torch.set_num_threads(1)
    for ipc in args.ipc:
        prepare_sources(ipc)
        for spec in sorted(ROOT.glob(f"bench/sweep_fashion_ipc{ipc}.yaml")) + sorted(
                ROOT.glob(f"bench/sweep_fashion_ipc{ipc}-*.yaml")):
            cfg = resolve_config(SweepConfig, spec)
            name = spec.stem.replace("sweep_fashion_", "")
            run_dir = ROOT / f"runs/fmnist-sweep-{name}"
            t = time.time()
            metrics = run_sweep(cfg, run_dir, resume=run_dir.exists())
            print(f"sweep {name}: {time.time() - t:.0f} s, {metrics['failed']} failed cells", flush=True)
            out = ROOT / "bench/results/sweep_fashion.json"
            results = read_json(out, {}) or {}
            results[name] = {"summary": metrics["summary"], "results_csv": metrics["results_csv"],
                             "spec": str(spec.relative_to(ROOT))}
            write_json_atomic(out, results)




def table(ipc: int) -> str:
    """Markdown table (accuracy % mean +- std over seeds, n seeds) from a sweep's results.csv so far."""
    from distill_core.labels.sweep import read_rows

    rows = summarise([r for d in sorted(ROOT.glob(f"runs/fmnist-sweep-ipc{ipc}")) + sorted(
        ROOT.glob(f"runs/fmnist-sweep-ipc{ipc}-*")) for r in read_rows(d / "results.csv")])
    cols = sorted({(r["strategy"] != "hard_labels", r["strategy"] != "random", r["ratio"], r["strategy"]) for r in rows})
    head = [f"{s} {f:g}x" if s != "hard_labels" else "hard labels" for _, _, f, s in cols]
    lines = ["| source | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for source in ("sre2l", "lpld", "random_real"):
        cells = []
        for _, _, f, s in cols:
            hit = [r for r in rows if r["source"] == source and r["strategy"] == s and r["ratio"] == f]
            cells.append(f"{100 * hit[0]['accuracy_mean']:.1f} ± {100 * hit[0]['accuracy_std']:.1f} "
                         f"({hit[0]['n']})" if hit else "–")
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
