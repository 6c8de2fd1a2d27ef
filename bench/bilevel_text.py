"""Text dataset distillation: test accuracy against the number of distilled sentences M on the default
text set (four categories of Debian's fortunes), learned labels, random initialisation (fresh
networks every outer step and in evaluation), 3 seeds; the same TextCNN trained on all training
sentences beside it; a few decoded sentences. Shortened CPU protocol (see PROTOCOL).

Cells are `bilevel-text` run folders under --out; finished ones are skipped (resumable). Writes
bench/results/bilevel_text.json and prints the table.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bilevel_text.py [--out runs/bench-bilevel-text]
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
from distill_core.synthesis.text import TextBilevelConfig, full_data_accuracy, run_bilevel_text  # noqa: E402
from distill_core.textdata import load_text_dataset  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bilevel_text.json"
SEEDS = (0, 1, 2)
SIZES = (2, 4, 8)
PROTOCOL = {"outer_steps": 200, "outer_batch": 128, "init_lr": 0.01, "lr_halve_every": 100, "inner_steps": 5,
            "init": "random", "eval_nets": 3, "eval_standard_steps": 300, "checkpoint_every": 50, "device": "cpu"}
FULL_EPOCHS = 15


def done(run_dir: Path) -> dict | None:
    if runs.read_status(run_dir).get("state") == "done" and (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-bilevel-text")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    prior = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    full = prior.get("full_data", {}).get("values", [])
    if len(full) < len(SEEDS):
        cfg = TextBilevelConfig(**PROTOCOL)
        data = load_text_dataset(cfg.dataset, cfg.max_len, cfg.vocab_size, cfg.embed_dim, cfg.embedding, 0)
        full = [100 * full_data_accuracy(cfg, data, FULL_EPOCHS, s) for s in SEEDS]
        counts = torch.bincount(data.test_y)
        prior["majority_class"] = 100 * float(counts.max() / counts.sum())
    result = {"protocol": PROTOCOL, "full_data_epochs": FULL_EPOCHS, "seeds": list(SEEDS),
              "majority_class": prior.get("majority_class"),
              "full_data": {"mean": statistics.fmean(full), "std": statistics.pstdev(full), "values": full},
              "rows": [], "sentences": {}}
    for m in SIZES:
        metrics = []
        for seed in SEEDS:
            run_dir = args.out / f"fortunes-m{m}-s{seed}"
            got = done(run_dir)
            if got is None:
                resume = (run_dir / "checkpoint.pt").is_file()
                got = run_bilevel_text(TextBilevelConfig(**PROTOCOL, num_samples=m, seed=seed), run_dir,
                                       resume=resume, overwrite=not resume and run_dir.exists())
            metrics.append(got)
        row = {"M": m}
        for p in ("learned_steps_fresh_init", "standard_fresh_init"):
            vals = [100 * x["evaluation"][p]["mean"] for x in metrics]
            row[p] = {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals)}
        result["rows"].append(row)
        result["sentences"][str(m)] = list(zip(_labels(args.out / f"fortunes-m{m}-s0"), metrics[0]["sentences"]))
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"full data: {result['full_data']['mean']:.1f} ± {result['full_data']['std']:.1f}  "
          f"(majority class {result['majority_class']:.1f})")
    print("| M sentences | learned steps, fresh inits | standard schedule, fresh inits |")
    print("|---|---|---|")
    for r in result["rows"]:
        a, b = r["learned_steps_fresh_init"], r["standard_fresh_init"]
        print(f"| {r['M']} | {a['mean']:.1f} ± {a['std']:.1f} | {b['mean']:.1f} ± {b['std']:.1f} |")


def _labels(run_dir: Path) -> list[str]:
    lines = (run_dir / "sentences.csv").read_text().splitlines()[1:]
    return [line.split(",")[1] for line in lines]


if __name__ == "__main__":
    main()
