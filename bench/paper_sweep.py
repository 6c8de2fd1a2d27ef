"""Label pruning at the paper's proportions on Fashion-MNIST or digits (resumable; run it under nohup).

1. Sources (IPC 10, 4,000 synthesis iterations, the final teacher): SRe2L (cross-class, global statistics),
   +C (class-wise, global), LPLD (class-wise, exact class statistics) and LPLD with the reference code's EMA
   class statistics; random real images are drawn anew per seed by the sweep. The SRe2L and LPLD sets are
   seed 0 of bench/iterations.py (the same folders).
2. The sweep `bench/paper_<data>_ipc10.yaml` into runs/paper-<data>-ipc10: E = 300 stored label epochs,
   300 student epochs at every ratio, ratios 1, 10, 40 (random) and first / confidence rules at 40x, DD-Ranking
   references (real-data hard-label student, learning-rate-tuned hard-label students), 3 seeds.
3. Label epochs at a fixed 40x: E in {30, 60, 120, 300} (SRe2L, LPLD, random real; 1x and 40x; 300 student
   epochs) into runs/paper-<data>-E<E>.

    nohup .venv/bin/python bench/paper_sweep.py --data fashion > runs/paper_sweep.log 2>&1 &
    nohup .venv/bin/python bench/paper_sweep.py --data digits > runs/paper_sweep_digits.log 2>&1 &
    .venv/bin/python bench/paper_sweep.py --data digits --only-epochs  # only step 3 (and its two sources)
    .venv/bin/python bench/paper_sweep.py --data fashion --sources sre2l +C   # only these sources of step 1
    .venv/bin/python bench/paper_sweep.py --data digits --table      # markdown tables of what has finished
    nohup .venv/bin/python bench/paper_sweep.py --data fashion --ipc 50 > runs/paper_sweep_ipc50.log 2>&1 &
    (IPC 50: 1x and 40x into runs/paper-fashion-ipc50, then 10x and 100x from bench/paper_fashion_ipc50_more.yaml
    into runs/paper-fashion-ipc50-more, whose label stores are relabelled with the same seed)
    .venv/bin/python bench/paper_sweep.py --data fashion --ipc 50 --similarity  # the sources' within-class similarity

`--similarity` measures the synthetic sources as bench/iterations.py measures its sets (within-class cosine of
the teacher's and an independent LeNet's features, class-BN distance, Fréchet distance; one seed per source, so
the SRe2L - LPLD intervals are bootstraps over classes) and keeps the rows in the results file.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intervals import mean_std, seed_cells, t95  # noqa: E402  (bench/intervals.py)

from distill_core.config import resolve_config  # noqa: E402
from distill_core.labels.sweep import RESULTS_FILE, SweepConfig, read_rows, run_sweep  # noqa: E402
from distill_core.runs import read_json, read_status, write_json_atomic  # noqa: E402

LABEL_EPOCHS = (30, 60, 120, 300)
EPOCH_SOURCES = ("sre2l", "lpld")  # synthetic sources of the label-epochs study (random real is drawn by the sweep)
GROUP_SIZE = 2  # units per forward pass: same images as any G, and an interrupted run keeps every finished pair


def spec(data: str, ipc: int = 10) -> Path:
    return ROOT / f"bench/paper_{data}_ipc{ipc}.yaml"


def main_dir(data: str, ipc: int = 10) -> Path:
    return ROOT / f"runs/paper-{data}-ipc{ipc}"


def more_spec(data: str) -> Path:
    """IPC 50's further ratios (10x, 100x), a sweep of their own beside the main one's 1x and 40x."""
    return ROOT / f"bench/paper_{data}_ipc50_more.yaml"


def more_dir(data: str) -> Path:
    return ROOT / f"runs/paper-{data}-ipc50-more"


def epochs_dir(data: str, epochs: int) -> Path:
    return ROOT / f"runs/paper-{data}-E{epochs}"
SYNTHESIS = {  # source -> (preset, stats_mode)
    "sre2l": ("sre2l", "exact"), "+C": ("+C", "exact"), "lpld": ("lpld", "exact"),
    "lpld_reference_ema": ("lpld", "reference"),
}


def prepare_sources(cfg: SweepConfig, ipc: int = 10, only: tuple[str, ...] | None = None) -> None:
    from distill_core.synthesis.run import run_synthesize
    from distill_core.synthesis.synthesize import SynthesisConfig

    for source, folder in cfg.sources.items():
        if only is not None and source not in only:
            continue
        out = ROOT / folder
        if read_status(out).get("state") == "done":
            continue
        preset, mode = SYNTHESIS[source]
        scfg = SynthesisConfig(teacher=str(ROOT / cfg.teacher), preset=preset, stats_mode=mode, ipc=ipc, iterations=4000,
                               seed=0, device="cpu", group_size=GROUP_SIZE)
        t = time.time()
        run_synthesize(scfg, out, resume=(out / "status.json").is_file())
        print(f"{source}: {time.time() - t:.0f} s", flush=True)


def absolute(cfg: SweepConfig) -> SweepConfig:
    """The spec with its run folders made absolute (so the script runs from anywhere)."""
    sources = {k: str(ROOT / v) for k, v in cfg.sources.items()}
    return dataclasses.replace(cfg, teacher=str(ROOT / cfg.teacher), sources=sources)


def epoch_config(cfg: SweepConfig, epochs: int) -> SweepConfig:
    """The label-epochs study: E stored label epochs, 1x and 40x, 300 student epochs, no hard-label cells."""
    sources = {k: v for k, v in cfg.sources.items() if k in EPOCH_SOURCES}  # random real is drawn per seed
    return dataclasses.replace(cfg, sources=sources, ratios=(1, 40), rules=(), hard_labels=False, real_hard_epochs=0,
                               hard_lrs=(), relabel=dataclasses.replace(cfg.relabel, epochs=epochs))


# ---------------------------------------------------------------------------------------------
# tables


def accuracy_table(rows: list[dict]) -> str:
    cells = seed_cells(rows)
    out = ["| source | labels | actual compression | views / image | images covered | top-1 % (mean ± std) | seeds |",
           "|---|---|---:|---:|---:|---|---:|"]
    for (source, strategy, ratio), by_seed in cells.items():
        accs = [100 * float(r["accuracy"]) for r in by_seed.values()]
        first = next(iter(by_seed.values()))
        setting = "hard labels (tuned lr)" if strategy == "hard_labels" else (
            "real data, hard labels (tuned lr)" if strategy == "real_hard" else f"{strategy} {ratio:g}×")
        num = (lambda k, d: f"{statistics.fmean(float(r[k]) for r in by_seed.values()):.{d}f}" if first.get(k) else "–")
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        out.append(f"| {source} | {setting} | {num('compression', 1)} | {num('views_per_image', 2)} | "
                   f"{num('images_covered', 3)} | {statistics.fmean(accs):.1f} ± {sd:.1f} | {len(accs)} |")
    return "\n".join(out)


def loss_table(rows: list[dict], high: float = 40.0) -> str:
    """Points lost from 1x to `high`x per source: paired over seeds, with the 95% t interval."""
    cells = seed_cells(rows)
    out = [f"| source | {high:g}×: actual compression | views / image | images covered | 1× | {high:g}× "
           f"| loss 1× → {high:g}× (points) [95% CI, paired over seeds] | seeds |", "|---|---:|---:|---:|---|---|---|---:|"]
    for source in dict.fromkeys(k[0] for k in cells):
        a, b = cells.get((source, "random", 1.0), {}), cells.get((source, "random", high), {})
        seeds = sorted(set(a) & set(b))
        if not seeds:
            continue
        xa, xb = [100 * float(a[s]["accuracy"]) for s in seeds], [100 * float(b[s]["accuracy"]) for s in seeds]
        m, lo, hi = t95([x - y for x, y in zip(xa, xb)])
        kept = (lambda k: statistics.fmean(float(b[s][k]) for s in seeds))
        out.append(f"| {source} | {kept('compression'):.1f} | {kept('views_per_image'):.2f} | "
                   f"{kept('images_covered'):.2f} | {mean_std(xa, 1)} | {mean_std(xb, 1)} | "
                   f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}] | {len(seeds)} |")
    return "\n".join(out)


def contrast_row(rows: list[dict], a: str = "sre2l", b: str = "lpld", high: float = 40.0) -> str:
    """`a` against `b`: the difference of their 1x -> `high`x losses and of their `high`x accuracies (b - a),
    each paired over seeds with its 95% t interval (points)."""
    cells = seed_cells(rows)
    acc = (lambda src, ratio, s: 100 * float(cells[(src, "random", ratio)][s]["accuracy"]))
    seeds = sorted(set.intersection(*(set(cells.get((src, "random", r), {})) for src in (a, b) for r in (1.0, high))))
    if len(seeds) < 2:
        return "| – | – | 0 |"
    loss = [(acc(a, 1.0, s) - acc(a, high, s)) - (acc(b, 1.0, s) - acc(b, high, s)) for s in seeds]
    gain = [acc(b, high, s) - acc(a, high, s) for s in seeds]
    fmt = (lambda m, lo, hi: f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]")
    return f"| {fmt(*t95(loss))} | {fmt(*t95(gain))} | {len(seeds)} |"


def ranking_table(metrics: dict) -> str:
    out = ["| source | labels | HLR (pp) | IOR (pp) | LRS | seeds |", "|---|---|---|---|---|---:|"]
    for r in metrics.get("dd_ranking", []):
        out.append(f"| {r['source']} | {r['strategy']} {r['ratio']:g}× "
                   f"| {100 * r['HLR_mean']:.1f} ± {100 * r['HLR_std']:.1f} "
                   f"| {100 * r['IOR_mean']:+.1f} ± {100 * r['IOR_std']:.1f} "
                   f"| {r['LRS_mean']:.3f} ± {r['LRS_std']:.3f} | {r['n']} |")
    return "\n".join(out)


def results_file(data: str, ipc: int = 10) -> Path:
    return ROOT / f"bench/results/paper_sweep_{data}{'' if ipc == 10 else f'_ipc{ipc}'}.json"


def save_results(data: str, ipc: int = 10, **parts) -> None:
    """Merge `parts` (main rows, dd_ranking, epochs rows per E) into bench/results/paper_sweep_<data>[_ipc<ipc>].json,
    so the tables outlive the run folders."""
    saved = read_json(results_file(data, ipc), {})
    for key, value in parts.items():
        saved[key] = value if key != "epochs" else {**saved.get("epochs", {}), **value}
    write_json_atomic(results_file(data, ipc), saved)


SIMILARITY = (("teacher_within", "within-class cosine, teacher features", 3),
              ("independent_within", "within-class cosine, independent LeNet", 3),
              ("class_bn", "class-BN distance", 2), ("fd", "Fréchet distance (teacher features)", 2))


def measure_sources(cfg: SweepConfig, data: str) -> dict[str, dict]:
    """{source: row} of bench/iterations.py's image measures for every finished synthetic source of the spec."""
    import iterations  # bench/iterations.py: the same measures as the iteration study

    return {source: iterations.image_measures(data, Path(folder)) for source, folder in cfg.sources.items()
            if read_status(Path(folder)).get("state") == "done"}


def similarity_table(rows: dict[str, dict], a: str = "sre2l", b: str = "lpld") -> str:
    """Each metric of sources a and b (one image set each) and a − b with a bootstrap 95% interval over classes."""
    from distill_core.analysis.bootstrap import paired_difference

    if not {a, b} <= set(rows):
        return ""
    lines = [f"| metric | {a} | {b} | {a} − {b} [bootstrap 95% over classes] |", "|---|---:|---:|---|"]
    for key, label, d in SIMILARITY:
        cell = "–"
        if key + "_per_class" in rows[a]:
            per_class = [dict(enumerate(rows[s][key + "_per_class"])) for s in (a, b)]
            iv = paired_difference(*per_class)
            cell = f"{iv.mean:+.{d}f} [{iv.low:+.{d}f}, {iv.high:+.{d}f}]"
        lines.append(f"| {label} | {rows[a][key]:.{d}f} | {rows[b][key]:.{d}f} | {cell} |")
    return "\n".join(lines)


def tables(data: str, ipc: int = 10) -> str:
    """Markdown tables from bench/results/paper_sweep_<data>[_ipc<ipc>].json, with rows of run folders still going."""
    saved = read_json(results_file(data, ipc), {})
    rows = read_rows(main_dir(data, ipc) / RESULTS_FILE) or saved.get("main", [])
    if ipc == 50:
        rows = rows + (read_rows(more_dir(data) / RESULTS_FILE) or saved.get("more", []))
    ranking = read_json(main_dir(data, ipc) / "metrics.json", {}).get("dd_ranking") or saved.get("dd_ranking", [])
    parts = []
    if rows:
        highs = sorted({float(r["ratio"]) for r in rows if r["strategy"] == "random" and float(r["ratio"]) >= 40})
        pairs = [(a, b) for a, b in (("sre2l", "+C"), ("sre2l", "lpld"), ("+C", "lpld"), ("random_real", "lpld"))
                 if {a, b} <= {r["source"] for r in rows}]
        parts += [f"## {data} IPC {ipc}, E = 300", accuracy_table(rows)]
        for high in highs:
            contrast = [f"| A against B | A's loss − B's loss, 1× → {high:g}× (points) [95% CI] "
                        f"| B − A at {high:g}× (points) [95% CI] | seeds |", "|---|---|---|---:|"]
            contrast += [f"| {a} against {b} {contrast_row(rows, a, b, high)}" for a, b in pairs]
            parts += ["", loss_table(rows, high), "", *contrast]
        parts += ["", ranking_table({"dd_ranking": ranking})]
    if saved.get("similarity"):
        parts += ["", f"## {data} IPC {ipc}: the sources' images", similarity_table(saved["similarity"])]
    contrast = ["| E | SRe2L loss − LPLD loss, 1× → 40× (points) [95% CI] | LPLD − SRe2L at 40× (points) [95% CI] | seeds |",
                "|---:|---|---|---:|"]
    for e in LABEL_EPOCHS if ipc == 10 else ():
        rows_e = read_rows(epochs_dir(data, e) / RESULTS_FILE) or saved.get("epochs", {}).get(str(e), [])
        if rows_e:
            parts += ["", f"## {data} E = {e}", loss_table(rows_e)]
            contrast.append(f"| {e} {contrast_row(rows_e)}")
    if len(contrast) > 2:
        parts += ["", f"## {data}: SRe2L against LPLD at each E (paired over seeds)", *contrast]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("fashion", "digits"), default="fashion")
    parser.add_argument("--ipc", type=int, choices=(10, 50), default=10,
                        help="IPC of the sources and the sweep (bench/paper_<data>_ipc<ipc>.yaml); the label-epochs "
                             "study runs at IPC 10 only")
    parser.add_argument("--table", action="store_true", help="only print the tables of what has finished")
    parser.add_argument("--similarity", action="store_true",
                        help="only measure the finished synthetic sources (within-class similarity, class-BN, FD)")
    parser.add_argument("--skip-epochs", action="store_true", help="stop after the main sweep")
    parser.add_argument("--sources", nargs="+", metavar="NAME", choices=sorted(SYNTHESIS),
                        help="only synthesise these sources and stop (two such processes fill two cores)")
    parser.add_argument("--only-epochs", action="store_true",
                        help="only the label-epochs study (synthesises only the sources it uses, skips the main sweep)")
    args = parser.parse_args()
    if args.table:
        print(tables(args.data, args.ipc))
        return
    torch.set_num_threads(1)
    cfg = absolute(resolve_config(SweepConfig, spec(args.data, args.ipc)))
    if args.sources:
        prepare_sources(cfg, args.ipc, tuple(args.sources))
        return
    if args.similarity:
        save_results(args.data, args.ipc, similarity=measure_sources(cfg, args.data))
        print(tables(args.data, args.ipc))
        return
    prepare_sources(cfg, args.ipc, EPOCH_SOURCES if args.only_epochs else None)
    if not args.only_epochs:
        main_run = main_dir(args.data, args.ipc)
        t = time.time()
        metrics = run_sweep(cfg, main_run, resume=main_run.exists())
        print(f"main sweep: {time.time() - t:.0f} s, {metrics['failed']} failed cells", flush=True)
        save_results(args.data, args.ipc, main=read_rows(main_run / RESULTS_FILE),
                     dd_ranking=metrics.get("dd_ranking", []))
        if args.ipc == 50:
            more = absolute(resolve_config(SweepConfig, more_spec(args.data)))
            t = time.time()
            m = run_sweep(more, more_dir(args.data), resume=more_dir(args.data).exists())
            print(f"10x and 100x: {time.time() - t:.0f} s, {m['failed']} failed cells", flush=True)
            save_results(args.data, args.ipc, more=read_rows(more_dir(args.data) / RESULTS_FILE))
    if args.skip_epochs or args.ipc != 10:
        return
    for e in sorted(LABEL_EPOCHS, reverse=True):
        run_dir = epochs_dir(args.data, e)
        t = time.time()
        m = run_sweep(epoch_config(cfg, e), run_dir, resume=run_dir.exists())
        print(f"E {e}: {time.time() - t:.0f} s, {m['failed']} failed cells", flush=True)
        save_results(args.data, epochs={str(e): read_rows(run_dir / RESULTS_FILE)})
    print(tables(args.data))


if __name__ == "__main__":
    main()
