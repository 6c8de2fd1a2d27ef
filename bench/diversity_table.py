"""Within-class similarity and diversity of sre2l / +C / lpld / random-real image sets (issue table).

    .venv/bin/python bench/diversity_table.py --group digits:10 --group digits:50 \\
        --feature-model teacher=runs/digits-teacher --feature-model lenet=runs/digits-lenet [--real SPEC]

For each --group TAG:IPC it analyses the runs runs/an-TAG-{sre2l,plusC,lpld,real}-ipcIPC (those that
exist, or the folders given with --source TAG:IPC:KEY=path) together with each feature model,
through the same `run_analyse` job as
`python -m distill_core analyse` (tables land in runs/an-TAG-ipcIPC-analysis-NAME/), and prints one
markdown table row per (group, feature model, run). Appends to bench/results/analysis_table.json.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from distill_core.analysis.run import AnalyseConfig, run_analyse

RESULTS = Path(__file__).resolve().parent / "results" / "analysis_table.json"
SOURCES = (("sre2l", "sre2l"), ("+C", "plusC"), ("lpld", "lpld"), ("random real", "real"))


def fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def analyse_group(tag: str, ipc: int, fm_name: str, fm_path: str, real: str, root: Path,
                  overrides: dict[tuple[str, int, str], Path]) -> list[dict]:
    runs = [(label, overrides.get((tag, ipc, key), root / f"an-{tag}-{key}-ipc{ipc}")) for label, key in SOURCES]
    runs = [(label, r) for label, r in runs if (r / "images.pt").is_file()]
    if not runs:
        return []
    cfg = AnalyseConfig(runs=tuple(str(r) for _, r in runs), feature_model=fm_path, real=real, embedding="none",
                        device="cpu")
    metrics = run_analyse(cfg, root / f"an-{tag}-ipc{ipc}-analysis-{fm_name}")
    labels = {r.name: label for label, r in runs}
    return [{"group": tag, "ipc": ipc, "feature_model": fm_name, "source": labels[row["run"]], **row}
            for row in metrics["summary"]]


def print_rows(rows: list[dict]) -> None:
    print("| data | IPC | features | source | within feat (mean ± std) | between feat | within pix (mean ± std) "
          "| between pix | FD | FD/class | precision | recall | density | coverage | copies |")
    print("|---|---:|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['group']} | {r['ipc']} | {r['feature_model']} | {r['source']} | "
              f"{fmt(r['feat_within_mean'])} ± {fmt(r['feat_within_std'])} | {fmt(r['feat_between_mean'])} | "
              f"{fmt(r['pix_within_mean'])} ± {fmt(r['pix_within_std'])} | {fmt(r['pix_between_mean'])} | "
              f"{fmt(r['fd'], 2)} | {fmt(r['fd_class_mean'], 2)} | {fmt(r['precision'], 2)} | {fmt(r['recall'], 2)} | "
              f"{fmt(r['density'], 2)} | {fmt(r['coverage'], 2)} | {r['copies']}/{r['n_images']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", action="append", required=True, help="TAG:IPC, e.g. digits:10")
    parser.add_argument("--feature-model", action="append", required=True, help="NAME=run folder")
    parser.add_argument("--real", default="", help="dataset spec of the real data ('' = the feature model's)")
    parser.add_argument("--source", action="append", default=[],
                        help="TAG:IPC:KEY=run folder, a run made elsewhere (KEY: sre2l, plusC, lpld, real)")
    parser.add_argument("--root", type=Path, default=Path("runs"))
    args = parser.parse_args()
    overrides = {}
    for item in args.source:
        key, path = item.split("=", 1)
        tag, ipc, name = key.split(":")
        overrides[(tag, int(ipc), name)] = Path(path)
    torch.set_num_threads(1)
    rows = []
    for group in args.group:
        tag, ipc = group.rsplit(":", 1)
        for item in args.feature_model:
            name, path = item.split("=", 1)
            rows += analyse_group(tag, int(ipc), name, path, args.real, args.root, overrides)
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    keys = {(r["group"], r["ipc"], r["feature_model"], r["source"]) for r in rows}
    merged = [r for r in old if (r["group"], r["ipc"], r["feature_model"], r["source"]) not in keys] + rows
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    print_rows(rows)


if __name__ == "__main__":
    main()
