"""Learned soft labels (bilevel) against the number of outer steps: does the gap to the paper close
with the steps the shortened grid (bench/bilevel.py, 500 outer steps) leaves out?

Digits, LeNet without BN, fixed initialisation, T = 3 inner steps, outer batch 256, initial step size
0.1, the outer lr halved four times over the run (every steps / 4), 3 seeds. Each cell is one
`bilevel` run folder under --out (finished cells are skipped; an interrupted one resumes from its
outer-step checkpoint). The table (mean ± std over seeds of the learned steps from the θ_0 the set
was learned for, the paper's fixed-init number) goes to bench/results/bilevel_steps.json.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bilevel_steps.py --cells 10:learned:4000 5:learned:4000 \
        10:onehot:4000 5:onehot:4000 10:learned:16000
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bilevel_steps.json"
SEEDS = (0, 1, 2)


def run_dir(out: Path, m: int, labels: str, steps: int, seed: int) -> Path:
    return out / f"digits-m{m}-{labels}-fixed-steps{steps}-s{seed}"


def run_cell(out: Path, m: int, labels: str, steps: int, seed: int) -> dict:
    d = run_dir(out, m, labels, steps, seed)
    if not (d / "metrics.json").is_file():
        cmd = [sys.executable, "-m", "distill_core", "bilevel", "--dataset", "digits", "--num-samples", str(m),
               "--outer-steps", str(steps), "--outer-batch", "256", "--init-lr", "0.1",
               "--lr-halve-every", str(steps // 4), "--init", "fixed", "--seed", str(seed), "--device", "cpu",
               "--run-dir", str(d)]
        cmd += ["--no-learn-labels"] if labels == "onehot" else []
        cmd += ["--resume"] if d.is_dir() else []
        subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads((d / "metrics.json").read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", nargs="+", default=["10:learned:4000", "5:learned:4000"], help="M:labels:outer_steps")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bilevel-long")
    args = p.parse_args()
    rows = []
    for spec in args.cells:
        m, labels, steps = spec.split(":")
        ms = [run_cell(args.out, int(m), labels, int(steps), s) for s in SEEDS]
        accs = [100 * x["accuracy"] for x in ms]
        rows.append({"M": int(m), "labels": labels, "outer_steps": int(steps), "seeds": len(accs),
                     "accuracy_mean": statistics.fmean(accs), "accuracy_std": statistics.stdev(accs),
                     "values": accs, "final_outer_loss": statistics.fmean(x["final_outer_loss"] for x in ms),
                     "wall_s_mean": statistics.fmean(x["wall_s"] for x in ms)})
        print(f"M {m:>2} {labels:7s} {steps:>6} steps: {rows[-1]['accuracy_mean']:.1f} ± {rows[-1]['accuracy_std']:.1f} "
              f"(outer loss {rows[-1]['final_outer_loss']:.2f}, {rows[-1]['wall_s_mean']:.0f} s a run)", flush=True)
    RESULTS.write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
