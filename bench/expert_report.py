"""Tables, fits and the frontier PNG of the expert-label study (bench/expert_study.sh) for BENCHMARKS.md.

    .venv/bin/python bench/expert_report.py [--runs runs] [--boots 500]

Reads the study's run folders that exist, copies their results.csv to bench/results/expert_*.csv,
writes bench/results/expert_study.json (summaries, best expert per IPC, power-law fits with
bootstrap intervals and residuals, frontiers, FKD vs fixed labels), prints the Markdown tables, and
renders the digits frontier to assets/expert_frontier.png (Plotly + kaleido, the page's figure).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from distill_core.analysis.scaling import configurations, fit_groups, pareto_frontier, read_study_rows
from distill_core.labels.expert_sweep import summarise
from distill_core.labels.sweep import read_rows
from distill_core.labels.sweep import summarise as summarise_fkd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STUDIES = {  # name in bench/results -> run folders (-s1, -s2: the same spec run one seed per process)
    "fashion_epochs": ("expert-fmnist-epochs", "expert-fmnist-epochs50"),
    "digits_epochs": ("expert-digits-epochs", "expert-digits-epochs50", "expert-digits-epochs50-s1",
                      "expert-digits-epochs50-s2"),
    "digits_structure": ("expert-digits-structure", "expert-digits-structure-s1", "expert-digits-structure-s2"),
    "digits_topk": ("expert-digits-topk",),
    "fashion_structure": ("expert-fmnist-structure", "expert-fmnist-structure-s1", "expert-fmnist-structure-s2"),
    "fashion_scaling": ("expert-fmnist-scaling",),
}


def pm(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def epoch_table(summary: list[dict]) -> str:
    rows = [r for r in summary if r["transform"] == "none"]
    ipcs = sorted({r["ipc"] for r in rows})
    best = {ipc: max((r for r in rows if r["ipc"] == ipc), key=lambda r: r["accuracy_mean"])["checkpoint_epoch"]
            for ipc in ipcs}
    lines = ["| expert epoch | expert's own acc (%) | " + " | ".join(f"IPC {i}" for i in ipcs) + " |",
             "|---|---|" + "---|" * len(ipcs)]
    for epoch in sorted({r["checkpoint_epoch"] for r in rows}):
        cells = []
        for ipc in ipcs:
            hit = [r for r in rows if r["ipc"] == ipc and r["checkpoint_epoch"] == epoch]
            text = f"{pm(hit[0]['accuracy_mean'], hit[0]['accuracy_std'])} (n={hit[0]['n']})" if hit else "–"
            cells.append(f"**{text}**" if hit and best[ipc] == epoch else text)
        acc = next(r["expert_test_acc"] for r in rows if r["checkpoint_epoch"] == epoch)
        lines.append(f"| {epoch} | {100 * acc:.1f} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("best expert epoch: " + ", ".join(f"IPC {i} → {e}" for i, e in best.items()))
    return "\n".join(lines)


def structure_table(summary: list[dict]) -> str:
    def get(t, k=0):
        hit = [r for r in summary if r["transform"] == t and r["transform_arg"] == k]
        if not hit:
            return "–"
        return pm(hit[0]["accuracy_mean"], hit[0]["accuracy_std"]) + (f" (n={hit[0]['n']})" if hit[0]["n"] < 3 else "")

    ks = sorted({r["transform_arg"] for r in summary if r["transform"] == "swap"})
    tk = sorted({r["transform_arg"] for r in summary if r["transform"] == "topk"})
    lines = ["| swap k | " + " | ".join(map(str, ks)) + " |", "|---|" + "---|" * len(ks),
             "| acc (%) | " + " | ".join(get("swap", k) for k in ks) + " |", "",
             "| top-k k | " + " | ".join(map(str, tk)) + " | all (none) |", "|---|" + "---|" * (len(tk) + 1),
             "| acc (%) | " + " | ".join(get("topk", k) for k in tk) + f" | {get('none')} |", "",
             f"full labels {get('none')}; hard labels (top-0) {get('topk', 0)}; shuffled non-top "
             f"{get('shuffle_nontop')}; uniform non-top {get('uniform_nontop')}"]
    return "\n".join(lines)


def zero_shot_table(summary: list[dict], chance: float) -> str:
    lines = ["| removal | class | removed class acc (%) | overall acc (%) | chance (%) |", "|---|---|---|---|---|"]
    for r in summary:
        if r["transform"] in ("drop_class", "zero_class"):
            lines.append(f"| {r['transform']} | {r['transform_arg']} | "
                         f"{pm(r['removed_class_acc_mean'], r['removed_class_acc_std'])} | "
                         f"{pm(r['accuracy_mean'], r['accuracy_std'])} | {100 * chance:.1f} |")
    return "\n".join(lines)


def fit_table(fits: dict) -> str:
    lines = ["| configuration | a | b | c | RMSE (points) | residual per IPC (points) |", "|---|---|---|---|---|---|"]
    refused = [name for name, f in fits.items() if "error" in f]
    for name, f in fits.items():
        if "error" in f:
            continue
        ci = {k: f"{f['params'][k]:.3f} [{f['intervals'][k][0]:.3f}, {f['intervals'][k][1]:.3f}]" for k in "abc"}
        res = ", ".join(f"{r['ipc']}: {100 * r['residual']:+.1f}" for r in f["residuals"])
        lines.append(f"| {name} | {ci['a']} | {ci['b']} | {ci['c']} | {100 * f['rmse']:.2f} ({f['points']}) | {res} |")
    if refused:
        lines.append(f"\nnot fitted (fewer distinct IPCs than the 3 parameters): {', '.join(refused)}")
    return "\n".join(lines)


def frontier_table(front: list[dict]) -> str:
    lines = ["| IPC | configuration | acc (%) | image bytes | label bytes | total bytes |", "|---|---|---|---|---|---|"]
    lines += [f"| {c['ipc']} | {c['config']} | {pm(c['accuracy_mean'], c['accuracy_std'])} | {c['image_bytes']:,} | "
              f"{c['label_bytes']:,} | {c['total_bytes']:,} |" for c in front]
    return "\n".join(lines)


def fkd_comparison(runs: Path) -> dict | None:
    """Fixed expert labels (3 student seeds) vs FKD at 1x / 40x on the same images (IPC 10, seed 0)."""
    fixed = [json.loads(p.read_text()) for p in sorted(runs.glob("fmnist10k-rr-ipc10-expert24-s*/metrics.json"))]
    fkd_csv = runs / "expert-fmnist-fkd" / "results.csv"
    if not fixed or not fkd_csv.is_file():
        return None
    out = []
    hard = [json.loads(p.read_text()) for p in sorted(runs.glob("fmnist10k-rr-ipc10-hard-s*/metrics.json"))]
    for name, ms in (("hard labels (class index, int16)", hard), ("fixed expert (epoch 24), 1 label per image", fixed)):
        if not ms:
            continue
        accs = [m["accuracy"] for m in ms]
        num_images = ms[0]["image_bytes"] // (28 * 28)
        out.append({"labels": name, "n": len(accs), "accuracy_mean": statistics.fmean(accs),
                    "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "label_bytes": ms[0].get("label_bytes", 2 * num_images), "image_bytes": ms[0]["image_bytes"]})
    for r in summarise_fkd(read_rows(fkd_csv)):
        out.append({"labels": f"FKD per-view relabelling, {r['ratio']:g}x", "n": r["n"],
                    "accuracy_mean": r["accuracy_mean"], "accuracy_std": r["accuracy_std"],
                    "label_bytes": int(r["label_bytes"]), "image_bytes": r["image_bytes"]})
    shutil.copyfile(fkd_csv, RESULTS / "expert_fashion_fkd.csv")
    return {"rows": out}


def fkd_table(comp: dict) -> str:
    hard = next((r for r in comp["rows"] if r["labels"].startswith("hard")), None)
    lines = ["| labels | acc (%) | label bytes | gain over hard labels (points) | gain per kB of labels |",
             "|---|---|---|---|---|"]
    for r in comp["rows"]:
        gain = 100 * (r["accuracy_mean"] - hard["accuracy_mean"]) if hard else None
        per_kb = "–" if gain is None or r is hard else f"{gain / (r['label_bytes'] / 1000):.2f}"
        lines.append(f"| {r['labels']} | {pm(r['accuracy_mean'], r['accuracy_std'])} (n={r['n']}) | "
                     f"{r['label_bytes']:,} | {'–' if gain is None else f'{gain:+.1f}'} | {per_kb} |")
    return "\n".join(lines)


def frontier_png(rows: list[dict], path: Path) -> str:
    from appkit import figures
    from appkit.expert_figures import frontier_fig
    from appkit.report import figure_bytes

    fig = figures.style(frontier_fig(rows), height=560)
    try:
        path.write_bytes(figure_bytes(fig, "png"))
    except RuntimeError as exc:
        return f"frontier PNG not written: {exc}"
    return f"wrote {path.relative_to(ROOT)}"


OUT: list[str] = []


def emit(text: str) -> None:
    """Print a table or line and keep it for bench/results/expert_tables.md."""
    OUT.append(text)
    print(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs", help="folder holding the study's runs")
    p.add_argument("--boots", type=int, default=500, help="bootstrap refits per scaling fit")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    report, loaded = {}, {}
    for name, dirs in STUDIES.items():
        csvs = [args.runs / d / "results.csv" for d in dirs if (args.runs / d / "results.csv").is_file()]
        if not csvs:
            continue
        rows = read_study_rows(csvs)
        loaded[name] = rows
        for i, c in enumerate(csvs):
            shutil.copyfile(c, RESULTS / f"expert_{name}{'' if i == 0 else f'_{i + 1}'}.csv")
        summary = summarise(rows)
        report[name] = {"summary": summary, "cells": len(rows)}
        emit(f"\n## {name} ({len(rows)} cells)\n")
        if name.endswith(("epochs", "scaling")):
            emit(epoch_table(summary))
        else:
            emit(structure_table(summary))
            if any(r["transform"] in ("drop_class", "zero_class") for r in summary):
                emit("\n" + zero_shot_table(summary, float(rows[0]["chance"])))
    for name, parts in (("digits", ("digits_epochs", "digits_structure", "digits_topk")),
                        ("fashion", ("fashion_epochs", "fashion_scaling", "fashion_structure"))):
        rows = [r for part in parts for r in loaded.get(part, []) if r["transform"] in ("none", "topk")]
        if not rows:
            continue
        fits = fit_groups(rows, args.boots)
        front = pareto_frontier(configurations(rows))
        report[f"{name}_scaling"] = {"form": "acc = a - b * IPC^(-c)", "fits": fits, "frontier": front}
        emit(f"\n## {name}: scaling fits (95% bootstrap intervals, {args.boots} refits)\n\n{fit_table(fits)}")
        emit(f"\n## {name}: Pareto frontier (accuracy vs images + labels bytes)\n\n{frontier_table(front)}")
        if name == "digits":
            emit(frontier_png(rows, ROOT / "assets" / "expert_frontier.png"))
    comp = fkd_comparison(args.runs)
    if comp:
        report["fashion_fkd_vs_fixed"] = comp
        emit(f"\n## Fashion-MNIST IPC 10: fixed expert labels vs FKD\n\n{fkd_table(comp)}")
    (RESULTS / "expert_study.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (RESULTS / "expert_tables.md").write_text("\n".join(OUT) + "\n")
    emit(f"\nwrote {RESULTS / 'expert_study.json'} and expert_tables.md")


if __name__ == "__main__":
    main()
