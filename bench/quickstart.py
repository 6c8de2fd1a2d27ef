"""The app's quick start (`python -m distill_core pipeline --dataset digits`, its defaults): wall time with its
syntheses and sweep cells one after another (workers 1) and two at once (workers 2), alternating, in fresh
folders, then what Home shows of it: within-class similarity with 95% bootstrap intervals over classes and
the paired LPLD - SRe2L difference, and student accuracy (mean ± std over the 3 seeds) with the points lost
from 1x to 40x (paired over seeds, 95% t interval).

    .venv/bin/python bench/quickstart.py [--repeat 2]

Each run is a new process, as the app's button starts it, so torch's import and the worker processes' start
are included. Prints the tables and writes bench/results/quickstart.json (every run's wall seconds, the load
average before and after, the sweep rows, which must agree between runs and settings, and the similarity).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "quickstart.json"
sys.path.insert(0, str(ROOT / "bench"))

from intervals import mean_std, seed_cells, t95  # noqa: E402  (bench/intervals.py)


def one_run(workers: int, folder: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "distill_core", "pipeline", "--dataset", "digits", "--workers", str(workers),
                    "--run-dir", str(folder / "qs")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(folder / "qs-sweep" / "results.csv", newline="") as fh:
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]
    return {"workers": workers, "wall_s": round(wall, 2), "folder": str(folder), "rows": rows}


def similarity(folder: Path) -> dict:
    """Home's headline numbers: mean within-class cosine of the teacher's features per set, its 95% bootstrap
    interval over classes, and the paired LPLD - SRe2L interval (the library's analysis, as the app calls it)."""
    from distill_core.analysis.bootstrap import mean_interval, paired_difference
    from distill_core.analysis.run import AnalyseConfig, analyse_runs

    runs = [str(folder / f"qs-{name}") for name in ("sre2l", "lpld", "random_real")]
    result = analyse_runs(AnalyseConfig(runs=tuple(runs), embedding="none", device="cpu"), "cpu",
                          folder / "real-cache")
    per = {r["method"]: {c["class"]: c["feat_within"] for c in result.per_class if c["run"] == r["run"]}
           for r in result.summary}
    out = {m: {"mean": statistics.fmean(v.values()), **_bounds(mean_interval(list(v.values())))}
           for m, v in per.items()}
    d = paired_difference(per["lpld"], per["sre2l"])
    out["lpld - sre2l"] = {"mean": d.mean, **_bounds(d), "classes": d.n}
    return out


def _bounds(iv) -> dict:
    return {"low": iv.low, "high": iv.high}


def accuracy_table(rows: list[dict]) -> str:
    cells = {k: {s: 100 * float(r["accuracy"]) for s, r in by_seed.items()} for k, by_seed in seed_cells(rows).items()}
    out = ["| source | hard labels | 1× | 40× | points lost 1× → 40× [95% CI, paired over seeds] |",
           "|---|---|---|---|---|"]
    for source in dict.fromkeys(k[0] for k in cells):
        hard = cells.get((source, "hard_labels", 0.0)) or cells.get((source, "real_hard", 0.0), {})
        one, forty = cells.get((source, "random", 1.0), {}), cells.get((source, "random", 40.0), {})
        seeds = sorted(set(one) & set(forty))
        lost = "–"
        if len(seeds) > 1:
            m, lo, hi = t95([one[s] - forty[s] for s in seeds])
            lost = f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
        cols = [mean_std(list(c.values()), 1) if c else "" for c in (hard, one, forty)]
        out.append(f"| {source} | {' | '.join(cols)} | {lost if one else ''} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting, alternating")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = []
    for _ in range(args.repeat):
        for workers in (1, 2):
            runs.append(one_run(workers, Path(tempfile.mkdtemp(prefix=f"quickstart-w{workers}-"))))
            print({k: v for k, v in runs[-1].items() if k != "rows"}, flush=True)
    load_after = os.getloadavg()[0]
    same = all(r["rows"] == runs[0]["rows"] for r in runs)
    table = ["| syntheses and sweep cells | wall s (median) | wall s (each run) |", "|---|---:|---|"]
    for workers in (1, 2):
        walls = [r["wall_s"] for r in runs if r["workers"] == workers]
        table.append(f"| {'one after another' if workers == 1 else 'two at once'} (workers {workers}) | "
                     f"{statistics.median(walls):.1f} | {', '.join(f'{w:.1f}' for w in walls)} |")
    sim = similarity(Path(runs[-1]["folder"]))
    sim_table = ["| set | within-class cosine (teacher features) [95% bootstrap CI over classes] |", "|---|---|"]
    sim_table += [f"| {m} | {v['mean']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}] |" if m == "lpld - sre2l" else
                  f"| {m} | {v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}] |" for m, v in sim.items()]
    print("\n".join(table))
    print(f"sweep rows identical across runs and settings: {same}; load average {load_before:.2f} before, "
          f"{load_after:.2f} after, {os.cpu_count()} CPUs\n")
    print("\n".join(sim_table) + "\n")
    print(accuracy_table(runs[0]["rows"]))
    RESULTS.write_text(json.dumps({"meta": {"command": f"bench/quickstart.py --repeat {args.repeat}",
                                            "cpus": os.cpu_count(), "load_1min": [round(load_before, 2),
                                                                                   round(load_after, 2)],
                                            "rows_identical": same},
                                   "runs": [{k: v for k, v in r.items() if k not in ("rows", "folder")} for r in runs],
                                   "similarity": sim, "sweep_rows": runs[0]["rows"]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
