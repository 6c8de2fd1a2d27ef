"""Text dataset distillation on the default text set (four categories of Debian's fortunes):
test accuracy against the number of distilled sentences M, learned against one-hot labels, random
initialisation (a fresh network every outer step and in evaluation), 3 seeds; the same TextCNN
trained on all training sentences and the majority-class rate beside it; a few decoded sentences.
Before the grid, an ablation of the initialisation and step sizes at M = 4 (the diagnosis of why
the earlier defaults did not learn); with fewer sentences than classes, the recall on the classes
no sentence starts as. Shortened CPU protocol (see PROTOCOL).

Cells are `bilevel-text` run folders under --out; a finished cell whose stored config equals the
wanted one is skipped, an interrupted one resumes, so the grid continues where it stopped. Writes
bench/results/bilevel_text.json after every group of seeds and prints the tables.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bilevel_text.py [--out runs/bench-bilevel-text]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core import runs  # noqa: E402
from distill_core.config import dump_yaml  # noqa: E402
from distill_core.synthesis.learned_labels import load_learned_labels  # noqa: E402
from distill_core.synthesis.text import TextBilevelConfig, full_data_accuracy, run_bilevel_text  # noqa: E402
from distill_core.textdata import FORTUNES_CLASSES, load_text_dataset  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bilevel_text.json"
SEEDS = (0, 1, 2)
SIZES = (2, 4, 8, 20)  # 2: fewer sentences than the 4 classes, where only learned labels can reach every class
# init_gain 0.1, init_lr 0.1 and lr 0.1 are TextBilevelConfig's defaults; 1,000 outer steps with the lr
# halved every tenth of the run (the reference: TREC-6 ~1,200 steps, IMDB ~2,400, at batch 1,024)
PROTOCOL = {"outer_steps": 1000, "outer_batch": 256, "lr_halve_every": 100, "inner_steps": 5, "init": "random",
            "eval_nets": 3, "eval_standard_steps": 300, "checkpoint_every": 100, "device": "cpu"}
# the diagnosis: the earlier 200-step protocol at M = 4, one change at a time from the earlier defaults
ABLATION_PROTOCOL = {**PROTOCOL, "outer_steps": 200, "outer_batch": 128, "num_samples": 4}
ABLATION = {
    "earlier defaults: gain 1, step 0.01, lr 0.01": {"init_gain": 1.0, "init_lr": 0.01, "lr": 0.01},
    "gain 0.1": {"init_gain": 0.1, "init_lr": 0.01, "lr": 0.01},
    "step 0.1": {"init_gain": 1.0, "init_lr": 0.1, "lr": 0.01},
    "gain 0.1, step 0.1": {"init_gain": 0.1, "init_lr": 0.1, "lr": 0.01},
    "defaults now: gain 0.1, step 0.1, lr 0.1": {},
}
EVALS = ("learned_steps_fresh_init", "standard_fresh_init")
FULL_EPOCHS = 15


def run_cell(run_dir: Path, cfg: TextBilevelConfig) -> dict:
    """metrics.json of a finished cell with this config, else run (or resume) it."""
    stored = run_dir / "config.yaml"
    same = stored.is_file() and stored.read_text() == dump_yaml(cfg)
    if same and runs.read_status(run_dir).get("state") == "done" and (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    resume = same and (run_dir / "checkpoint.pt").is_file()
    return run_bilevel_text(cfg, run_dir, resume=resume, overwrite=not resume and run_dir.exists())


def first_outer_loss(run_dir: Path) -> float:
    return float((run_dir / "outer_loss.csv").read_text().splitlines()[1].split(",")[1])


def mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "values": values}


def paired_difference(a: list[float], b: list[float]) -> dict:
    """Mean of a - b paired by seed, with its 95% t-interval."""
    d = [x - y for x, y in zip(a, b)]
    half = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
    return {"mean": statistics.fmean(d), "ci95": [statistics.fmean(d) - half, statistics.fmean(d) + half]}


def group(out: Path, name: str, cfgs: list[TextBilevelConfig]) -> dict:
    """One group of seeds: accuracy per evaluation protocol (percent) and the outer loss at steps 1 and last."""
    dirs = [out / f"{name}-s{c.seed}" for c in cfgs]
    metrics = [run_cell(d, c) for d, c in zip(dirs, cfgs)]
    row = {p: mean_std([100 * m["evaluation"][p]["mean"] for m in metrics]) for p in EVALS}
    row["first_outer_loss"] = mean_std([first_outer_loss(d) for d in dirs])
    row["final_outer_loss"] = mean_std([m["final_outer_loss"] for m in metrics])
    row["step_sizes_seed0"] = metrics[0]["step_sizes"]
    return row


def baseline(prior: dict) -> dict:
    """Full-data accuracy (same network, same θ_0 gain, Adam) and the majority-class rate, percent."""
    if len(prior.get("full_data", {}).get("values", [])) == len(SEEDS) and prior.get("full_data_gain") == \
            TextBilevelConfig().init_gain:
        return {k: prior[k] for k in ("full_data", "majority_class", "full_data_gain")}
    cfg = TextBilevelConfig(**PROTOCOL)
    data = load_text_dataset(cfg.dataset, cfg.max_len, cfg.vocab_size, cfg.embed_dim, cfg.embedding, 0)
    counts = torch.bincount(data.test_y)
    full = [100 * full_data_accuracy(cfg, data, FULL_EPOCHS, s) for s in SEEDS]
    return {"full_data": mean_std(full), "majority_class": 100 * float(counts.max() / counts.sum()),
            "full_data_gain": cfg.init_gain}


def absent_class_recall(out: Path, m: int) -> dict:
    """Test recall (%) on the classes no sentence starts as (M below the class count): the learned
    steps on each run's final set from 3 fresh θ_0, learned labels against one-hot, mean ± std over seeds."""
    from distill_core.synthesis.bilevel import init_params, step_sizes, unroll
    from distill_core.synthesis.bilevel_eval import accuracy
    from distill_core.synthesis.bilevel_run import build_network, load_checkpoint

    cfg = TextBilevelConfig(**PROTOCOL, num_samples=m)
    data = load_text_dataset(cfg.dataset, cfg.max_len, cfg.vocab_size, cfg.embed_dim, cfg.embedding, 0)
    test_x, test_y = data.embed(data.test_ids), data.test_y
    absent = test_y >= m
    model = build_network(cfg.model, data.info, cfg.model_args)
    result = {"classes": [data.info.class_names[c] for c in range(m, data.info.num_classes)]}
    for labels in ("learned", "onehot"):
        vals = []
        for seed in SEEDS:
            state = load_checkpoint(out / f"fortunes-{labels}-m{m}-s{seed}")
            g = torch.Generator().manual_seed(seed)
            nets = [unroll(model, init_params(model, g, cfg.init_gain), {}, state.x, state.labels,
                           step_sizes(state.raw_lrs), create_graph=False) for _ in range(cfg.eval_nets)]
            vals.append(statistics.fmean(100 * accuracy(model, t, {}, test_x[absent], test_y[absent]) for t in nets))
        result[labels] = mean_std(vals)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-bilevel-text")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    prior = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    result = {"protocol": PROTOCOL, "ablation_protocol": ABLATION_PROTOCOL, "full_data_epochs": FULL_EPOCHS,
              "seeds": list(SEEDS), **baseline(prior), "ablation": {}, "rows": [], "sentences": {}}
    for i, (label, change) in enumerate(ABLATION.items()):
        cfgs = [TextBilevelConfig(**{**ABLATION_PROTOCOL, **change}, seed=s) for s in SEEDS]
        result["ablation"][label] = {"change": change, **group(args.out, f"ablation{i}-m4", cfgs)}
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for m in SIZES:
        row = {"M": m}
        for labels in ("learned", "onehot"):
            cfgs = [TextBilevelConfig(**PROTOCOL, num_samples=m, learn_labels=labels == "learned", seed=s)
                    for s in SEEDS]
            row[labels] = group(args.out, f"fortunes-{labels}-m{m}", cfgs)
        row["learned_minus_onehot"] = {p: paired_difference(row["learned"][p]["values"], row["onehot"][p]["values"])
                                       for p in EVALS}
        result["rows"].append(row)
        result["sentences"][str(m)] = _sentences(args.out / f"fortunes-learned-m{m}-s0")
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    result["absent_class_recall"] = {str(m): absent_class_recall(args.out, m) for m in SIZES if m < len(FORTUNES_CLASSES)}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)


def _sentences(run_dir: Path) -> list[dict]:
    """The decoded sentences of one run with their learned label vectors."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    learned = load_learned_labels(run_dir)
    names = learned.class_names
    return [{"label": names[int(vec.argmax())], "text": text, "label_vector": [round(float(v), 3) for v in vec]}
            for text, vec in zip(metrics["sentences"], learned.labels)]


def _pm(d: dict) -> str:
    return f"{d['mean']:.1f} ± {d['std']:.1f}"


def print_tables(result: dict) -> None:
    print(f"full data: {_pm(result['full_data'])}  (majority class {result['majority_class']:.1f})\n")
    print("| M = 4, 200 outer steps | outer loss, step 1 | outer loss, step 200 | learned steps, fresh inits |")
    print("|---|---|---|---|")
    for label, r in result["ablation"].items():
        print(f"| {label} | {r['first_outer_loss']['mean']:.2f} | {r['final_outer_loss']['mean']:.2f} | "
              f"{_pm(r['learned_steps_fresh_init'])} |")
    print("\n| M | labels | learned steps, fresh inits | standard schedule, fresh inits | final outer loss |")
    print("|---|---|---|---|---|")
    for row in result["rows"]:
        for labels in ("learned", "onehot"):
            r = row[labels]
            print(f"| {row['M']} | {labels} | {_pm(r['learned_steps_fresh_init'])} | {_pm(r['standard_fresh_init'])} "
                  f"| {r['final_outer_loss']['mean']:.3f} |")
        d = row["learned_minus_onehot"]["learned_steps_fresh_init"]
        print(f"| {row['M']} | learned − one-hot (paired) | {d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}] "
              "| | |")
    for m, r in result["absent_class_recall"].items():
        print(f"\nM = {m}: test recall on {', '.join(r['classes'])} (no sentence starts as them): "
              f"learned {_pm(r['learned'])}, one-hot {_pm(r['onehot'])}")


if __name__ == "__main__":
    main()
