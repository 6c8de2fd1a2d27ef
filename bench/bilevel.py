"""Learned soft labels (bilevel): accuracy of M learned samples, learned vs one-hot labels, fixed vs
random initialisation, 3 seeds, on digits and Fashion-MNIST (shortened CPU protocol).

Each cell is one `bilevel` run folder under --out; finished cells are skipped, so an interrupted
grid continues where it stopped. After every cell the table (mean ± std over seeds of each
evaluation protocol) is rewritten to bench/results/bilevel.json and printed.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bilevel.py --grid digits fashion [--out runs/bench-bilevel]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core import runs  # noqa: E402
from distill_core.synthesis.bilevel import BilevelConfig  # noqa: E402
from distill_core.synthesis.bilevel_run import run_bilevel  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bilevel.json"
SEEDS = (0, 1, 2)
# the shortened protocol per dataset (the reference: ~20k outer steps at batch 1024, init_lr 0.01)
PROTOCOL = {
    "digits": {"dataset": "digits", "outer_steps": 500, "outer_batch": 256, "init_lr": 0.1, "lr_halve_every": 125},
    "fashion": {"dataset": "fashion-mnist", "outer_steps": 150, "outer_batch": 64, "init_lr": 0.1,
                "lr_halve_every": 50},
}
COMMON = {"inner_steps": 3, "eval_nets": 3, "eval_standard_steps": 300, "checkpoint_every": 50, "device": "cpu"}
PROTOCOLS = ("learned_steps_same_init", "learned_steps_fresh_init", "standard_fresh_init")


def cells(grid: str):
    for m in (10, 5):
        for learn in (True, False):
            for init in ("fixed", "random"):
                for seed in SEEDS:
                    name = f"{grid}-m{m}-{'learned' if learn else 'onehot'}-{init}-s{seed}"
                    yield name, BilevelConfig(**PROTOCOL[grid], **COMMON, num_samples=m, learn_labels=learn,
                                              init=init, seed=seed)


def finished(run_dir: Path) -> dict | None:
    if runs.read_status(run_dir).get("state") == "done" and (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    return None


def run_cell(run_dir: Path, cfg: BilevelConfig) -> dict:
    if (metrics := finished(run_dir)) is not None:
        return metrics
    resume = (run_dir / "checkpoint.pt").is_file()
    return run_bilevel(cfg, run_dir, resume=resume, overwrite=not resume and run_dir.exists())


def table(out: Path, grids: list[str]) -> list[dict]:
    """Rows (dataset, M, labels, init) with mean ± std over the finished seeds of every protocol."""
    rows = []
    for grid in grids:
        groups: dict[tuple, list[dict]] = {}
        for name, cfg in cells(grid):
            metrics = finished(out / name)
            if metrics is not None:
                key = (grid, cfg.num_samples, "learned" if cfg.learn_labels else "onehot", cfg.init)
                groups.setdefault(key, []).append(metrics)
        for (g, m, labels, init), ms in groups.items():
            row = {"dataset": g, "M": m, "labels": labels, "init": init, "seeds": len(ms),
                   "final_outer_loss": statistics.fmean(x["final_outer_loss"] for x in ms)}
            for p in PROTOCOLS:
                vals = [100 * x["evaluation"][p]["mean"] for x in ms if p in x["evaluation"]]
                if vals:
                    row[p] = {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0}
            rows.append(row)
    return rows


def label_summary(out: Path, grid: str) -> dict | None:
    """What the labels of M = 5 (fewer samples than classes) learned, fixed init: the seed-0 matrix and,
    over seeds, the mean weight each sample puts on the 5 classes without a sample of their own
    against the mean off-diagonal weight on the classes that have one."""
    from distill_core.synthesis.learned_labels import load_learned_labels

    absent, present, matrix = [], [], None
    for seed in SEEDS:
        run_dir = out / f"{grid}-m5-learned-fixed-s{seed}"
        if finished(run_dir) is None:
            continue
        labels = load_learned_labels(run_dir).labels
        m, c = labels.shape
        own = torch.zeros_like(labels, dtype=torch.bool)
        own[torch.arange(m), torch.arange(m) % c] = True
        has_sample = torch.zeros(c, dtype=torch.bool)
        has_sample[:m] = True
        absent.append(float(labels[:, ~has_sample].mean()))
        present.append(float(labels[:, has_sample][~own[:, has_sample]].mean()))
        if matrix is None:
            matrix = [[round(float(v), 2) for v in row] for row in labels]
    if not absent:
        return None
    return {"seed0_labels": matrix, "recall_on_classes_without_a_sample": absent_class_recall(out, grid),
            "mean_weight_on_classes_without_a_sample": statistics.fmean(absent),
            "mean_off_diagonal_weight_on_classes_with_a_sample": statistics.fmean(present), "seeds": len(absent)}


def absent_class_recall(out: Path, grid: str) -> dict:
    """Test recall (%) on the 5 classes that have no sample, M = 5, fixed init, from each run's final
    checkpoint (θ_0 and the learned set): learned labels against one-hot, mean ± std over seeds."""
    from distill_core.data import load_dataset
    from distill_core.synthesis.bilevel import step_sizes, unroll
    from distill_core.synthesis.bilevel_eval import accuracy
    from distill_core.synthesis.bilevel_run import build_network, load_checkpoint

    data = load_dataset(PROTOCOL[grid]["dataset"])
    test_x, test_y = data.test.float_images(), data.test.labels
    absent = test_y >= 5
    result = {}
    for labels in ("learned", "onehot"):
        vals = []
        for seed in SEEDS:
            run_dir = out / f"{grid}-m5-{labels}-fixed-s{seed}"
            if finished(run_dir) is None:
                continue
            state = load_checkpoint(run_dir)
            model = build_network("lenet_nobn", data.info, {})
            buffers = dict(model.named_buffers())
            theta = unroll(model, state.theta0, buffers, state.x, state.labels, step_sizes(state.raw_lrs),
                           create_graph=False)
            vals.append(100 * accuracy(model, theta, buffers, test_x[absent], test_y[absent]))
        if vals:
            result[labels] = {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals), "seeds": len(vals)}
    return result


def fmt(row: dict, p: str) -> str:
    return f"{row[p]['mean']:.1f} ± {row[p]['std']:.1f}" if p in row else "-"


def write(out: Path, grids: list[str]) -> None:
    rows = table(out, grids)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"protocol": {g: {**PROTOCOL[g], **COMMON} for g in grids}, "seeds": list(SEEDS),
                                   "rows": rows, "labels_m5": {g: label_summary(out, g) for g in grids}},
                                  indent=2) + "\n")
    print("| dataset | M | labels | init | learned steps, same init | learned steps, fresh inits | "
          "standard schedule, fresh inits | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['M']} | {r['labels']} | {r['init']} | {fmt(r, PROTOCOLS[0])} | "
              f"{fmt(r, PROTOCOLS[1])} | {fmt(r, PROTOCOLS[2])} | {r['seeds']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", nargs="+", choices=tuple(PROTOCOL), default=["digits"])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-bilevel")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for grid in args.grid:
        for name, cfg in cells(grid):
            run_cell(args.out / name, cfg)
            write(args.out, args.grid)


if __name__ == "__main__":
    main()
